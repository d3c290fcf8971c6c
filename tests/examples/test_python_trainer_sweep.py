"""The README's python-backend command, end to end: ``tunix-rt sweep run
examples/sweep-python.yaml`` with the example package on PYTHONPATH runs the user's
trainer in every trial on a local Ray; the searched user parameters appear under their
own names, the score follows them, and ``promote`` carries them into userParams."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tunix_rt.api.rehearsal import Rehearsal
from tunix_rt.api.trial import SweepResult, TrialResult, TrialState
from tunix_rt.cli import app
from tunix_rt.evidence import verify_zip

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "examples" / "sweep-python.yaml"
PACKAGE = ROOT / "examples" / "python-trainer"


def test_the_python_trainer_example_sweep_runs_the_example_package(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    env = dict(subprocess_env)
    env["PYTHONPATH"] = os.pathsep.join([str(PACKAGE), env.get("PYTHONPATH", "")])
    storage = tmp_path / "runs"
    exe = Path(sys.executable).with_name("tunix-rt")
    run = [str(exe), "sweep", "run", str(SPEC), "--no-live", "--storage", f"file://{storage}"]
    out = subprocess.run(run, env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
    folder = storage / "local" / "python-trainer"
    logs = sorted((folder / "logs").glob("driver-*.log"))
    assert out.returncode == 0, (
        out.stdout[-3000:] + out.stderr[-2000:] + (logs[-1].read_text()[-4000:] if logs else "")
    )

    trials = [
        TrialResult.model_validate_json(p.read_text()) for p in (folder / "trials").glob("*.json")
    ]
    assert len(trials) == 4
    assert all(t.state is TrialState.SUCCEEDED and t.backend == "python" for t in trials)
    # The user's names, as searched; every combination of the grid once.
    assert {(t.params["step_size"], t.params["feature_set"]) for t in trials} == {
        (0.03, "signed"),
        (0.03, "unsigned"),
        (0.3, "signed"),
        (0.3, "unsigned"),
    }
    for trial in trials:
        assert trial.model_source is not None and trial.model_source["name"] == "linear-arith"
        assert trial.model_source["config"]["feature_set"] == trial.params["feature_set"]
        assert trial.steps == 100 and "loss" in trial.metrics
    scores = {(t.params["step_size"], t.params["feature_set"]): t.primary_score for t in trials}
    assert len(set(scores.values())) == 4, scores
    assert scores[(0.3, "signed")] == max(scores.values()) > 0.5

    summary = SweepResult.model_validate_json((folder / "summary.json").read_text())
    assert summary.best_params == {"step_size": 0.3, "feature_set": "signed"}
    (bundle,) = sorted((folder / "evidence" / "submission").glob("*.zip"))
    assert verify_zip(bundle).ok
    manifest = json.loads((folder / "evidence" / "run_manifest.json").read_text())
    assert manifest["backend"] == "python"
    assert manifest["model_id"] == "python/linear_arith.train:train"

    promoted = tmp_path / "best.yaml"
    # `tunix-rt promote` in this process (it reads and writes files only, never the
    # user's package): one Python start fewer than a subprocess, the same command.
    done = CliRunner().invoke(app, ["promote", str(folder), "-o", str(promoted)])
    assert done.exit_code == 0, done.output
    rehearsals = [
        d
        for path in sorted(tmp_path.glob("*.yaml"))
        for d in yaml.safe_load_all(path.read_text())
        if isinstance(d, dict) and d.get("kind") == "Rehearsal"
    ]
    assert rehearsals, sorted(p.name for p in tmp_path.iterdir())
    trainer = Rehearsal.model_validate(rehearsals[0]).spec.trainer
    assert trainer is not None and trainer.backend == "python"
    assert trainer.user_params == {"normalise": True, "step_size": 0.3, "feature_set": "signed"}
