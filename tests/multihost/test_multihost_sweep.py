"""A 2-trial sweep whose trials each span 2 worker processes, end to end in local mode:
``tunix-rt sweep run`` -> Tune -> one JaxTrainer per trial (2 CPU workers, JAX's
multi-process CPU runtime) -> records, summary and evidence in the store.

Nothing is mocked: Ray Tune, Ray Train v2, JAX across processes and the real trainer.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from support.sweeps import run_sweep_cli, tiny_jax_sweep
from tunix_rt.api.trial import SweepResult, TrialResult, TrialState
from tunix_rt.scoring import PRIMARY_SCORE

pytestmark = pytest.mark.slow

SWEEP = tiny_jax_sweep(
    "two-hosts",
    rows=(128, 8),
    eval_every=5,
    intermediate_rows=4,
    max_trace_tokens=32,
    batch_size=8,
    smoke_steps=10,
    # 2 workers of half a CPU per trial: both trials fit the 2 CPUs of a CI machine.
    resources={"workers": 2, "cpu": 0.5},
)


def test_sweep_of_two_worker_trials(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    run = run_sweep_cli(tmp_path, SWEEP, subprocess_env, timeout=900)
    out, folder = run.out, run.folder
    logs = sorted((folder / "logs").glob("driver-*.log"))
    assert out.returncode == 0, (
        out.stdout[-4000:] + out.stderr[-3000:] + (logs[-1].read_text()[-4000:] if logs else "")
    )

    trials = [TrialResult.model_validate_json(p.read_text()) for p in (folder / "trials").iterdir()]
    assert sorted(t.params["learningRate"] for t in trials) == [1.0e-5, 3.0e-3]
    for trial in trials:
        assert trial.state is TrialState.SUCCEEDED, trial
        assert trial.steps == 10
        # Trained by 2 workers over a mesh of 2 devices (one per process).
        assert trial.metrics["workers"] == 2.0 and trial.metrics["devices"] == 2.0
        assert trial.primary_score is not None and 0.0 <= trial.primary_score <= 1.0
        assert trial.metrics[PRIMARY_SCORE] == trial.primary_score
        assert trial.finished_at is not None

    # Tune saw rank 0's reports as the trials trained (TuneReportCallback): one at step
    # 5 (loss and an intermediate eval), the final one with the score the record holds.
    for trial in trials:
        lines = (folder / "ray" / trial.trial_id / "result.json").read_text().splitlines()
        reports = [json.loads(line) for line in lines]
        assert [r["step"] for r in reports] == [5, 10]
        assert "loss" in reports[0] and PRIMARY_SCORE in reports[0]
        assert reports[-1][PRIMARY_SCORE] == trial.primary_score

    summary = SweepResult.model_validate_json((folder / "summary.json").read_text())
    assert summary.phase.value == "Succeeded" and summary.trials_planned == 2
    assert {t.trial_id for t in summary.trials} == {t.trial_id for t in trials}
    assert summary.primary_score == max(t.primary_score or 0.0 for t in trials)
    assert f"best trial {summary.best_trial_id}" in out.stdout
