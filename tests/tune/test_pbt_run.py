"""A real pbt sweep of the built-in trainer (Ray Tune's PopulationBasedTraining, two
tiny trials, perturbations every 5 steps, synchronous: at each one the weaker trial
copies the stronger, whatever the timing), then its best trial replayed as a Rehearsal:
an exploit copies a checkpoint and changes the learning rate mid-run, the records carry
each trial's schedule, the report shows it, and the replay reaches the same numbers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from support.sweeps import run_sweep_cli, tiny_jax_sweep
from tunix_rt.api.trial import SweepResult, TrialResult, TrialState
from tunix_rt.cli import app

pytestmark = pytest.mark.slow


def pbt_sweep() -> dict[str, object]:
    manifest = tiny_jax_sweep(
        "pbt",
        eval_every=0,
        smoke_steps=30,
        searchSpace={"learningRate": {"type": "loguniform", "low": 1.0e-4, "high": 3.0e-2}},
        algorithm="random",
        seed=3,
        scheduler={
            "type": "pbt",
            "perturbationInterval": 5,
            "quantileFraction": 0.5,
            "synchronous": True,
        },
    )
    spec = manifest["spec"]
    assert isinstance(spec, dict)
    spec["trainer"] |= {"checkpointEvery": 5, "logEvery": 5}
    del spec["trainer"]["eval"]["intermediateRows"]  # no intermediate evals (evalEvery 0)
    return manifest


def test_pbt_exploits_records_schedules_and_the_best_replays(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    run = run_sweep_cli(tmp_path, pbt_sweep(), subprocess_env, timeout=300)
    logs = sorted((run.folder / "logs").glob("driver-*.log"))
    log = logs[-1].read_text()[-3000:] if logs else ""
    assert run.out.returncode == 0, run.out.stdout[-3000:] + run.out.stderr[-2000:] + log
    trials = {
        t.trial_id: t
        for t in (
            TrialResult.model_validate_json(p.read_text())
            for p in (run.folder / "trials").glob("*.json")
        )
    }
    assert len(trials) == 2 and all(t.state is TrialState.SUCCEEDED for t in trials.values())
    for trial in trials.values():  # every record carries its schedule, from step 0
        assert trial.schedule and trial.schedule[0].step == 0, trial
        assert trial.schedule[-1].params["learningRate"] == trial.params["learningRate"]
    exploits = [s for t in trials.values() for s in t.schedule or [] if s.exploited_from]
    assert exploits, {t.trial_id: t.schedule for t in trials.values()}
    assert all(s.exploited_from in trials and 0 < s.step < 30 for s in exploits)

    summary = SweepResult.model_validate_json((run.folder / "summary.json").read_text())
    best = trials[str(summary.best_trial_id)]
    assert summary.best_schedule == best.schedule
    report = (run.folder / "evidence" / "report.html").read_text()
    assert "PBT schedules" in report and exploits[0].exploited_from in report

    # The best trial replayed as a Rehearsal: its schedule applied at the same steps.
    exe = str(Path(sys.executable).with_name("tunix-rt"))
    promoted = tmp_path / "best.yaml"
    # `tunix-rt promote` in this process (it reads and writes files only): one Python
    # start fewer than a subprocess, the same command.
    done = CliRunner().invoke(app, ["promote", str(run.folder), "-o", str(promoted)])
    assert done.exit_code == 0, done.output
    manifest = tmp_path / "best-rehearsal.yaml"
    assert "schedule:" in manifest.read_text()
    out_dir = tmp_path / "replay"
    replay = subprocess.run(
        [exe, "rehearsal", "run", str(manifest), "--storage", f"file://{tmp_path / 'runs'}",
         "--out", str(out_dir)],
        env=subprocess_env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert replay.returncode == 0, replay.stdout[-3000:] + replay.stderr[-3000:]
    evidence = json.loads((out_dir / "eval_summary.json").read_text())
    assert evidence["primary_score"] == best.primary_score
    # Nearly the same weights, not just the same (coarse) score: the final loss to one
    # float32 ulp. In one process a replay is bit for bit (tests/train/
    # test_schedule_replay.py); across processes an exploited trial's loss has been seen to
    # differ from its replay's in the last bit (4.3708525 vs 4.3708520), a gap still open.
    ulp = float(np.spacing(np.float32(best.metrics["loss"])))
    gap = abs(evidence["metrics"]["loss"] - best.metrics["loss"])
    assert gap <= ulp, (evidence["metrics"], best.metrics)
