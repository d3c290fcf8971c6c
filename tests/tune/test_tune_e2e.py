"""End to end with the real trainer: ``tunix-rt sweep run`` runs a 2-trial Ray Tune sweep
of a tiny JAX model, then ``sweep show`` and ``promote`` read what it left.

Nothing is mocked: the console script starts ``python -m tunix_rt.tune`` on a local Ray,
each trial trains and evaluates with JAX and reports to Tune, records land in the store.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from support.sweeps import run_sweep_cli, tiny_jax_sweep
from tunix_rt.api.rehearsal import Rehearsal
from tunix_rt.api.sweep_goals import Objective
from tunix_rt.api.trainer import TrainerConfig
from tunix_rt.api.trial import SweepResult, TrialResult, TrialState
from tunix_rt.cli import app
from tunix_rt.contract.best_trial import best_trial
from tunix_rt.evidence import verify_zip
from tunix_rt.scoring import PRIMARY_SCORE

pytestmark = pytest.mark.slow

TINY_SWEEP = tiny_jax_sweep("tiny")


def test_sweep_run_end_to_end(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    run = run_sweep_cli(tmp_path, TINY_SWEEP, subprocess_env, timeout=600)
    spec, cmd, out, folder = run.spec, run.cmd, run.out, run.folder
    logs = sorted((folder / "logs").glob("driver-*.log"))
    assert out.returncode == 0, (
        out.stdout[-4000:] + out.stderr[-2000:] + (logs[-1].read_text()[-4000:] if logs else "")
    )

    trials = check_trials(folder)
    summary = check_summary(folder, trials)

    # The CLI's table: both trials, sorted, the best named, a promote hint.
    assert f"best trial {summary.best_trial_id}" in out.stdout
    assert "tunix-rt promote" in out.stdout
    for trial in trials:
        assert trial.trial_id in out.stdout

    bundle = check_evidence(folder, spec, out.stdout, trials, summary)
    check_rerun(cmd, subprocess_env, folder, bundle, summary)
    check_show_and_promote(tmp_path, folder, bundle, summary)


def check_trials(folder: Path) -> list[TrialResult]:
    trials = [
        TrialResult.model_validate_json(p.read_text()) for p in (folder / "trials").glob("*.json")
    ]
    assert len(trials) == 2
    assert sorted(t.params["learningRate"] for t in trials) == [1.0e-5, 3.0e-3]
    for trial in trials:
        assert trial.state is TrialState.SUCCEEDED, trial
        assert trial.steps == 20
        assert trial.primary_score is not None and 0.0 <= trial.primary_score <= 1.0
        assert trial.metrics[PRIMARY_SCORE] == trial.primary_score
        assert "loss" in trial.metrics
        assert trial.started_at is not None and trial.finished_at is not None
        assert trial.wall_seconds > 0
    return trials


def check_summary(folder: Path, trials: list[TrialResult]) -> SweepResult:
    summary = SweepResult.model_validate_json((folder / "summary.json").read_text())
    assert summary.phase.value == "Succeeded" and summary.trials_planned == 2
    best = best_trial(trials, Objective())  # highest primary_score; ties: earlier id
    assert best is not None and summary.best_trial_id == best.trial_id
    assert summary.primary_score == best.primary_score
    assert summary.best_params == best.params
    assert [t.primary_score for t in summary.trials] == sorted(
        (t.primary_score for t in trials), reverse=True
    )
    return summary


def check_evidence(
    folder: Path, spec: Path, stdout: str, trials: list[TrialResult], summary: SweepResult
) -> Path:
    """The evidence bundle: uploaded before summary.json, verifies, names every trial."""
    evidence = folder / "evidence"
    zips = sorted((evidence / "submission").glob("tunix_rt_tiny_*.zip"))
    assert len(zips) == 1, sorted(p.name for p in evidence.rglob("*"))
    assert f"evidence: file://{zips[0]}" in stdout
    assert zips[0].stat().st_mtime <= (folder / "summary.json").stat().st_mtime
    check = verify_zip(zips[0])
    assert check.ok, check.errors
    assert check.primary_score == summary.primary_score
    manifest = json.loads((evidence / "run_manifest.json").read_text())
    assert manifest["kind"] == "sweep" and manifest["config_path"] == str(spec)
    assert manifest["config"]["maxTrials"] == 2
    assert "<spec: see config>" in manifest["command"]
    bundled = SweepResult.model_validate_json((evidence / "sweep_summary.json").read_text())
    assert bundled == summary
    log = (evidence / "sweep_log.txt").read_text()
    for trial in trials:
        assert f"trial {trial.trial_id} started" in log
        assert f"trial {trial.trial_id} succeeded" in log
    assert "Succeeded: best trial" in log
    assert f"code: commit {manifest['commit_sha'][:7]}" in log
    assert (folder / "sweep_log.txt").read_text().startswith(log)
    return zips[0]


def check_rerun(
    cmd: list[str], env: dict[str, str], folder: Path, bundle: Path, summary: SweepResult
) -> None:
    """Running it again re-runs nothing and rewrites nothing: the evidence keeps the
    commit that ran the trials."""
    before = {p: p.read_bytes() for p in (folder / "summary.json", bundle)}
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-2000:]
    assert "already finished" in again.stdout and "nothing was re-run" in again.stdout
    assert f"best trial {summary.best_trial_id}" in again.stdout
    assert {p: p.read_bytes() for p in before} == before
    assert "already finished" in (folder / "sweep_log.txt").read_text()


def check_show_and_promote(
    tmp_path: Path, folder: Path, bundle: Path, summary: SweepResult
) -> None:
    runner = CliRunner()
    shown = runner.invoke(app, ["sweep", "show", str(folder)], env={"COLUMNS": "200"})
    assert shown.exit_code == 0 and f"best trial {summary.best_trial_id}" in shown.output
    assert f"evidence: file://{bundle}" in shown.output

    promoted = runner.invoke(
        app, ["promote", str(folder), "-o", str(tmp_path / "best.yaml"), "--steps", "200"]
    )
    assert promoted.exit_code == 0, promoted.output
    config = TrainerConfig.model_validate(yaml.safe_load((tmp_path / "best.yaml").read_text()))
    assert config.learning_rate == summary.best_params["learningRate"]  # type: ignore[index]
    assert config.max_steps == 200 and config.model.width == 32
    rehearsal = Rehearsal.model_validate(
        yaml.safe_load((tmp_path / "best-rehearsal.yaml").read_text())
    )
    assert rehearsal.metadata.annotations is not None
    assert rehearsal.metadata.annotations["tunixrt.io/source-trial"] == summary.best_trial_id
