"""The README's "Local mode" block, run line by line as written, in order, by a shell in a
fresh folder, with the environment `make demo` made on PATH (what `source
.venv/bin/activate` does). Only the examples' budgets are smaller (fewer trials and
steps, smaller datasets), so the walk takes minutes, not the half hour the full examples
take; every command, file name and hand-off between them is the README's own."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.readme import local_path
from tunix_rt.api.trial import SweepResult
from tunix_rt.contract.exits import ExitCode

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
# What each example keeps of its budget in the walk (the rest of the file is as committed).
SMALLER: dict[str, dict[str, Any]] = {
    "examples/sweep-smoke.yaml": {
        # One trial: the walk checks the hand-offs (run, show, promote, rehearsal), not the
        # search; each trial of the demo's model is a JAX start and a compile of its own.
        "maxTrials": 1,
        "maxConcurrentTrials": 1,
        "budget": {"smokeSteps": 20},
        "trainer": {"maxSteps": 20, "dataset": {"trainSize": 128, "evalSize": 16}},
    },
    "examples/sweep-python.yaml": {"budget": {"smokeSteps": 20}},
}


def shrink(spec: dict[str, Any], changes: dict[str, Any]) -> None:
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(spec.get(key), dict):
            shrink(spec[key], value)
        else:
            spec[key] = value


def fresh_folder(tmp_path: Path) -> Path:
    """The files the block names, as in a clone (examples smaller, see SMALLER)."""
    work = tmp_path / "clone"
    shutil.copytree(ROOT / "examples" / "python-trainer", work / "examples" / "python-trainer",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    for name, changes in SMALLER.items():
        doc = yaml.safe_load((ROOT / name).read_text())
        shrink(doc["spec"], changes)
        (work / name).write_text(yaml.safe_dump(doc, sort_keys=False))
    return work


def shell(line: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", line], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=1500, check=False)  # fmt: skip


@pytest.mark.slow
def test_the_readme_local_path_runs_in_order(tmp_path: Path) -> None:
    lines = local_path()
    assert [line.split()[:3] for line in lines[:4]] == [
        ["tunix-rt", "sweep", "run"],
        ["tunix-rt", "sweep", "show"],
        ["tunix-rt", "promote", "runs/local/sweep-smoke"],
        ["tunix-rt", "rehearsal", "run"],
    ], lines
    named = {w for line in lines for w in line.split() if w.startswith("examples/")}
    assert named <= set(SMALLER), f"the walk does not know {named - set(SMALLER)}"
    work = fresh_folder(tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env |= {
        "PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
        "VIRTUAL_ENV": str(VENV_BIN.parent),
        "RAY_USAGE_STATS_ENABLED": "0",
        "COLUMNS": "200",
    }
    outputs = []
    for line in lines:
        done = shell(line, work, env)
        outputs.append(done.stdout)
        assert done.returncode == ExitCode.OK, (
            f"$ {line}\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
        )

    sweep_run, show, promote, rehearsal, python_sweep = outputs
    smoke = read_summary(work / "runs" / "local" / "sweep-smoke")
    assert smoke.phase.value == "Succeeded" and smoke.best_trial_id is not None
    assert smoke.best_trial_id in sweep_run and smoke.best_trial_id in show
    # promote wrote both files the README names, and says the README's next command.
    assert (work / "best.yaml").is_file() and (work / "best-rehearsal.yaml").is_file()
    assert "tunix-rt rehearsal run best-rehearsal.yaml" in " ".join(promote.split())
    # The rehearsal of that trial left its evidence bundle with a score.
    summaries = list((work / "runs").rglob("eval_summary.json"))
    scores = [json.loads(p.read_text()).get("primary_score") for p in summaries]
    assert any(isinstance(s, float) for s in scores), summaries
    assert "primary_score" in rehearsal
    python = read_summary(work / "runs" / "local" / "python-trainer")
    assert python.phase.value == "Succeeded" and len(python.trials) == 4
    assert python.best_trial_id is not None and python.best_trial_id in python_sweep


def read_summary(folder: Path) -> SweepResult:
    return SweepResult.model_validate_json((folder / "summary.json").read_text())
