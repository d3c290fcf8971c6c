"""Warm start end to end on a local Ray: ``tunix-rt sweep run`` of a grid sweep, then of a
second one with ``warmStartFrom: {sweep: <the first>}``, which resolves against the local
store. The fitting earlier trial is reused and not run again, the others are skipped with
their reasons, and the summary, the sweep log and the evidence say so. The trials are the
stand-in ``backend: python`` workload (support/tune_workloads.py: best at 3e-3, a
learning rate above 0.1 fails).

Also, without Ray: the same earlier sweep named by its ``summary.json`` URI gives the
same verdicts, and an unusable source ends the session before Ray starts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from support.manifests import write_sweep
from support.tune_workloads import python_trainer
from tunix_rt.api.sweep import SweepSpec
from tunix_rt.api.trial import SweepResult, TrialResult, WarmStartRecord
from tunix_rt.api.warm_start import SkipReason
from tunix_rt.contract.exits import ExitCode
from tunix_rt.contract.layout import SweepTarget
from tunix_rt.evidence import verify_zip
from tunix_rt.tune.driver import run_sweep
from tunix_rt.tune.records import utcnow
from tunix_rt.tune.session import Session, SweepRun
from tunix_rt.tune.sweep_log import SweepLog
from tunix_rt.tune.warm_search import WarmStart
from tunix_rt.tune.warm_start import judge, prepare

EXE = Path(sys.executable).with_name("tunix-rt")
TRAINER = python_trainer(logEvery=5)


def grid(values: list[float], **fields: Any) -> dict[str, Any]:
    return {
        "searchSpace": {"learningRate": {"type": "grid", "values": values}},
        "algorithm": "grid",
        "maxTrials": len(values),
        "maxConcurrentTrials": 1,
        "budget": {"smokeSteps": 10},
        "trainer": TRAINER,
    } | fields


def sweep_run(tmp_path: Path, name: str, spec: dict[str, Any], env: dict[str, str]) -> str:
    path = write_sweep(tmp_path / f"{name}.yaml", name, spec)
    storage = f"file://{tmp_path / 'runs'}"
    cmd = [str(EXE), "sweep", "run", str(path), "--no-live", "--storage", storage]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout


def own_trials(folder: Path) -> list[TrialResult]:
    return [TrialResult.model_validate_json(p.read_text()) for p in (folder / "trials").glob("*")]


@pytest.mark.slow
def test_a_warm_started_grid_reuses_the_fitting_trial_and_runs_only_the_rest(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    sweep_run(tmp_path, "earlier", grid([1e-3, 3e-3, 0.5], maxFailedTrials=1), subprocess_env)
    earlier = tmp_path / "runs" / "local" / "earlier"
    measured = {t.params["learningRate"]: t.trial_id for t in own_trials(earlier)}

    warm = grid([3e-3, 1e-2], warmStartFrom={"sweep": "earlier"})
    out = sweep_run(tmp_path, "warm", warm, subprocess_env)
    folder = tmp_path / "runs" / "local" / "warm"

    # Only the unmeasured grid point ran; 3e-3 was measured under the same config.
    assert [t.params for t in own_trials(folder)] == [{"learningRate": 1e-2}]
    record = WarmStartRecord.model_validate_json((folder / "warm_start.json").read_text())
    assert record.source == "Sweep earlier" and record.uri == f"file://{earlier}"
    assert record.reused == [measured[3e-3]]
    reasons = {s.trial: s.reason for s in record.skipped}
    assert reasons == {measured[1e-3]: SkipReason.OUTSIDE_SPACE, measured[0.5]: SkipReason.FAILED}
    assert "grid points measured already are skipped" in record.use

    summary = SweepResult.model_validate_json((folder / "summary.json").read_text())
    assert summary.trials_planned == 1
    assert summary.best_trial_id == measured[3e-3]  # the reused trial is the best (1.0)
    (best,) = [t for t in summary.trials if t.trial_id == summary.best_trial_id]
    assert best.reused_from is not None and best.reused_from.sweep == "earlier"
    assert summary.warm_start is not None and summary.warm_start.reused == record.reused
    assert "(reused from sweep earlier)" in (summary.message or "")
    assert "warm start from Sweep earlier" in out
    assert "1 trial(s) reused, 2 skipped" in (folder / "sweep_log.txt").read_text()

    evidence = folder / "evidence"
    assert json.loads((evidence / "warm_start.json").read_text())["reused"] == record.reused
    copied = TrialResult.model_validate_json(
        (evidence / "trials" / f"{best.trial_id}.json").read_text()
    )
    assert copied.reused_from == best.reused_from
    assert "reused from sweep earlier" in (evidence / "report.html").read_text()
    (bundle,) = sorted((evidence / "submission").glob("*.zip"))
    assert verify_zip(bundle).ok

    # The same earlier sweep named by its summary.json: the same verdicts, without Ray.
    by_uri = SweepSpec.model_validate(
        warm | {"warmStartFrom": {"uri": f"file://{earlier}/summary.json"}}
    )
    again = judge(SweepRun(spec=by_uri, name="other"), f"file://{tmp_path}/runs/local/other")
    assert again.reused == record.reused and again.skipped == record.skipped


def test_an_unusable_source_ends_the_session_before_ray_starts(tmp_path: Path) -> None:
    storage = f"file://{tmp_path / 'runs'}"
    missing = SweepSpec.model_validate(grid([3e-3], warmStartFrom={"sweep": "never-ran"}))
    outcome = run_sweep(SweepRun(spec=missing, name="warm", storage=storage, echo=False))
    assert outcome.exit_code == ExitCode.INVALID
    assert "spec.warmStartFrom: no sweep results at" in outcome.message
    assert "never-ran" in outcome.message and "nothing ran" in outcome.message

    itself = SweepSpec.model_validate(grid([3e-3], warmStartFrom={"sweep": "warm"}))
    outcome = run_sweep(SweepRun(spec=itself, name="warm", storage=storage, echo=False))
    assert outcome.exit_code == ExitCode.INVALID
    assert "names this sweep's own results" in outcome.message
    assert not (tmp_path / "runs" / "local" / "warm" / "trials").exists()


def test_a_resumed_session_reads_its_verdicts_back_and_judges_nothing_again(
    tmp_path: Path,
) -> None:
    """The earlier sweep may be gone by then: the record the first session wrote is what
    the resumed one (and its summary) uses; Tune restores the searcher with the trials."""
    storage = f"file://{tmp_path / 'runs'}"
    spec = SweepSpec.model_validate(grid([3e-3], warmStartFrom={"sweep": "gone"}))
    run = SweepRun(spec=spec, name="warm", storage=storage, echo=False)
    target = SweepTarget(storage, "local", "warm")
    files = target.files()
    reused = TrialResult(
        trial_id="e1", sweep="gone", params={"learningRate": 3e-3}, primary_score=0.7,
        state="Succeeded",
    )  # fmt: skip
    record = WarmStartRecord(
        source="Sweep gone", uri=f"{storage}/local/gone", use="u", reused=["e1"],
        trials=[reused],
    )  # fmt: skip
    files.write_warm_start(record)
    session = Session(run, target, files, SweepLog(files, echo=False), "", utcnow())

    resumed = prepare(session, restoring=True)
    assert isinstance(resumed, WarmStart)
    assert resumed.values == [0.7] and resumed.planned() == 0  # the one grid point: measured
    assert "1 trial(s) reused, 0 skipped" in session.say.text
    fresh = prepare(session, restoring=False)  # a new session judges again: the source is gone
    assert not isinstance(fresh, WarmStart) and fresh is not None
    assert fresh.exit_code == ExitCode.INVALID and "no sweep results" in fresh.message
