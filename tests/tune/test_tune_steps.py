"""The driver's and the trial's named steps, one at a time, without running Ray.

The verdict (``contract.phases.sweep_verdict``) from the ends a sweep can come to; how
the driver reads that end off Tune's ResultGrid; the summary; the checks before a resume;
what a trial reports, records and replays.
"""

from __future__ import annotations

import base64
import json
import pickle
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tunix_rt.api.common import Phase
from tunix_rt.api.sweep import SweepSpec
from tunix_rt.api.trial import SweepResult, TrialResult, TrialState
from tunix_rt.contract.exits import ExitCode, exit_code_for
from tunix_rt.contract.layout import SweepFiles, SweepLayout, SweepTarget
from tunix_rt.contract.phases import INTERRUPTED, SweepEnd, Verdict, sweep_verdict
from tunix_rt.scoring import PRIMARY_SCORE
from tunix_rt.storage import Store, StoreError
from tunix_rt.tune import driver, publish, resume, sweep_log, trainable
from tunix_rt.tune.session import Session, SweepRun

LR = {"type": "loguniform", "low": 1e-4, "high": 3e-2}


def spec(**fields: Any) -> SweepSpec:
    body: dict[str, Any] = {"searchSpace": {"learningRate": LR}, "maxTrials": 3}
    body.update(fields)
    return SweepSpec.model_validate(body)


def trial(trial_id: str, state: TrialState, score: float | None = None, **more: Any) -> TrialResult:
    return TrialResult(trial_id=trial_id, sweep="sw", state=state, primary_score=score, **more)


def end(
    trials: list[TrialResult],
    *,
    launched: int = 3,
    incomplete: bool = False,
    timed_out: bool = False,
) -> SweepEnd:
    return SweepEnd(trials, launched, incomplete, timed_out)


# ----------------------------------------------------------------------------- the verdict


def test_verdict_best_trial() -> None:
    trials = [
        trial("a", TrialState.SUCCEEDED, 0.25),
        trial("b", TrialState.STOPPED, 0.5),
        trial("c", TrialState.FAILED, error="boom"),
    ]
    verdict = sweep_verdict(end(trials), spec(maxFailedTrials=1))
    assert verdict == Verdict(Phase.SUCCEEDED, "Succeeded", f"best trial b: {PRIMARY_SCORE}=0.5")
    assert exit_code_for(verdict.phase) is ExitCode.OK


def test_verdict_too_many_failures_wins_over_everything() -> None:
    trials = [
        trial("a", TrialState.SUCCEEDED, 0.9),
        trial("b", TrialState.FAILED, error="first"),
        trial("c", TrialState.FAILED, error="second"),
    ]
    verdict = sweep_verdict(end(trials, incomplete=True), spec(maxFailedTrials=1))
    assert (verdict.phase, verdict.reason) == (Phase.FAILED, "TooManyFailedTrials")
    assert verdict.message == (
        "2 trial(s) failed, more than maxFailedTrials (1); first error: first"
    )
    assert exit_code_for(verdict.phase) is ExitCode.FAILED


@pytest.mark.parametrize(("launched", "incomplete"), [(3, True), (2, False)])
def test_verdict_interrupted(launched: int, incomplete: bool) -> None:
    trials = [trial("a", TrialState.SUCCEEDED, 0.9), trial("b", TrialState.RUNNING)]
    verdict = sweep_verdict(end(trials, launched=launched, incomplete=incomplete), spec())
    assert (verdict.phase, verdict.reason) == (Phase.RUNNING, INTERRUPTED)
    assert not verdict.finished
    assert verdict.message == (
        "sweep interrupted with 1 of 3 trials finished; run the same command again to resume"
    )
    assert exit_code_for(verdict.phase) is ExitCode.INTERRUPTED


def test_verdict_no_score() -> None:
    trials = [trial("a", TrialState.SUCCEEDED), trial("b", TrialState.STOPPED)]
    verdict = sweep_verdict(end(trials), spec())
    assert verdict == Verdict(Phase.FAILED, "NoScore", f"no trial reported {PRIMARY_SCORE}")


def test_verdict_timed_out_is_not_interrupted() -> None:
    trials = [trial("a", TrialState.STOPPED, 0.4)]
    verdict = sweep_verdict(end(trials, launched=1, incomplete=True, timed_out=True), spec())
    assert verdict.phase is Phase.SUCCEEDED
    assert verdict.message == f"best trial a: {PRIMARY_SCORE}=0.4 (sweep time budget reached)"


# ----------------------------------------------------------------------------- the grid


class FakeGrid:
    """What the driver reads of Tune's ResultGrid."""

    def __init__(self, results: list[Any], terminated: int, errors: int = 0) -> None:
        self.results = results
        self.num_terminated = terminated
        self.num_errors = errors

    def __len__(self) -> int:
        return len(self.results)

    def __getitem__(self, index: int) -> Any:
        return self.results[index]


def result(trial_id: str, *, in_metrics: bool = True) -> Any:
    metrics = {"trial_id": trial_id} if in_metrics else {}
    return SimpleNamespace(metrics=metrics, path=f"/tmp/ray/{trial_id}")


def test_sweep_end_reads_this_runs_trials_off_the_grid() -> None:
    grid = FakeGrid([result("b"), result("a", in_metrics=False), result("c")], terminated=2)
    assert publish.grid_trial_ids(grid) == ["b", "a", "c"]
    records = [
        trial("a", TrialState.SUCCEEDED, 0.1),
        trial("b", TrialState.FAILED),
        trial("old", TrialState.SUCCEEDED, 0.9),  # not this run's
    ]
    got = publish.sweep_end(grid, records, spec(), elapsed=10.0)
    assert [t.trial_id for t in got.trials] == ["a", "b"]  # id order; c wrote no record
    assert (got.launched, got.incomplete, got.timed_out) == (3, True, False)
    done = publish.sweep_end(FakeGrid([result("a")], terminated=0, errors=1), records, spec(), 1.0)
    assert not done.incomplete


@pytest.mark.parametrize(("elapsed", "timed_out"), [(58.9, False), (59.0, True), (100.0, True)])
def test_sweep_end_time_budget(elapsed: float, timed_out: bool) -> None:
    limited = spec(budget={"sweepTimeoutSeconds": 60})
    grid = FakeGrid([result("a")], terminated=1)
    assert publish.sweep_end(grid, [], limited, elapsed).timed_out is timed_out
    assert publish.sweep_end(grid, [], spec(), 1e9).timed_out is False  # no budget


def test_summarise() -> None:
    run = SweepRun(spec=spec(), name="sw", namespace="ns")
    early = datetime(2024, 1, 1, tzinfo=UTC)
    trials = [
        trial("a", TrialState.SUCCEEDED, 0.25, started_at=datetime(2024, 1, 2, tzinfo=UTC)),
        trial("b", TrialState.SUCCEEDED, 0.5, params={"learningRate": 0.01}, started_at=early),
    ]
    verdict = Verdict(Phase.SUCCEEDED, "Succeeded", "best trial b")
    summary = publish.summarise(run, trials, verdict)
    assert (summary.sweep, summary.namespace, summary.phase) == ("sw", "ns", Phase.SUCCEEDED)
    assert summary.message == "best trial b" and summary.trials_planned == 3
    assert [t.trial_id for t in summary.trials] == ["b", "a"]
    assert summary.best_trial_id == "b" and summary.best_params == {"learningRate": 0.01}
    assert summary.primary_score == 0.5 and summary.started_at == early
    assert summary.base_config == run.spec.trial_config({}).to_wire()
    assert summary.finished_at is not None
    none = publish.summarise(run, [], Verdict(Phase.FAILED, "NoScore", "no trial"))
    assert none.best_trial_id is None and none.best_params is None and none.started_at is None


# ----------------------------------------------------------------------------- resuming


def sweep_files(tmp_path: Path) -> SweepFiles:
    return SweepTarget(f"file://{tmp_path}", "local", "sw").files()


def test_check_resume(tmp_path: Path) -> None:
    files = sweep_files(tmp_path)
    run = SweepRun(spec=spec(), name="sw")
    said: list[str] = []
    assert resume.check_resume(run, files, said.append) is None  # nothing stored yet

    files.write_spec(spec(storage="s3://elsewhere/runs"))  # where it is stored: not the spec
    assert resume.check_resume(run, files, said.append) is None

    files.write_spec(spec(maxTrials=4))
    refused = resume.check_resume(run, files, said.append)
    assert refused is not None and refused.exit_code is ExitCode.INVALID
    assert "changed since its earlier run" in refused.message and "--fresh" in refused.message
    assert refused.results_uri == files.uri and said == []

    files.write_spec(run.spec)
    done = SweepResult(sweep="sw", phase=Phase.FAILED, message="no trial reported x")
    files.write_summary(done)
    reported = resume.check_resume(run, files, said.append)
    assert reported is not None and reported.exit_code is ExitCode.FAILED
    assert (reported.message, reported.summary) == ("no trial reported x", done)
    assert (reported.evidence_uri, reported.bundle_uri) == (None, None)
    assert said and "already finished" in said[0]

    files.write_summary(done.model_copy(update={"phase": Phase.SUCCEEDED, "message": None}))
    zip_key = files.layout.key("evidence", "submission", "tunix_rt_sw_1.zip")
    files.store.write_bytes(zip_key, b"zip")
    ok = resume.check_resume(run, files, said.append)
    assert ok is not None and ok.exit_code is ExitCode.OK and ok.message == "Succeeded"
    assert ok.bundle_uri == files.store.uri_for(zip_key)
    assert ok.evidence_uri == files.store.uri_for(files.layout.evidence_prefix)


def test_check_resume_unreadable_files(tmp_path: Path) -> None:
    files = sweep_files(tmp_path)
    run = SweepRun(spec=spec(), name="sw")
    files.store.write_text(files.layout.summary_key, "{not json")
    assert resume.check_resume(run, files, print) is None  # resumed, as if absent
    files.store.write_text(files.layout.spec_key, "{not json")
    with pytest.raises(StoreError, match=r"spec\.json: not JSON"):
        resume.check_resume(run, files, print)


def test_sweep_log_resumes_and_saves(tmp_path: Path) -> None:
    files = sweep_files(tmp_path)
    log = sweep_log.SweepLog(files, echo=False)
    log.resume()  # nothing earlier
    log("first")
    log.save()
    again = sweep_log.SweepLog(files, echo=False)
    again("second")
    again.resume()
    lines = (files.log() or "").splitlines()
    assert len(lines) == 1 and lines[0].endswith(" first")
    assert [line.split(" ", 1)[1] for line in again.lines] == ["first", "second"]


def test_trial_context(tmp_path: Path) -> None:
    run = SweepRun(spec=spec(resources={"cpu": 2}), name="sw", env={"A": "1"})
    files = sweep_files(tmp_path)
    target = SweepTarget(files.store.uri, "local", "sw")
    say = sweep_log.SweepLog(files, echo=False)
    started = datetime.now(UTC)
    session = Session(run, target, files, say, "/root", started)
    assert session.experiment == "/root/ray"
    local = driver.trial_context(session)
    assert local.spec is run.spec and local.target == target  # validated once, in the driver
    assert (local.cpus, local.write_every_s, local.env) == (2.0, 5.0, {"A": "1"})
    assert local.checkpoint_root == "/root/checkpoints"
    remote_files = SimpleNamespace(store=SimpleNamespace(scheme="s3"))
    remote = driver.trial_context(
        Session(run, target, remote_files, say, "/tmp/x", started)  # type: ignore[arg-type]
    )
    assert (remote.write_every_s, remote.checkpoint_root) == (30.0, None)


# ----------------------------------------------------------------------------- the trial


def test_trial_context_carries_the_validated_spec() -> None:
    context = trainable.TrialContext(target=SweepTarget("file:///x", "local", "sw"), spec=spec())
    clone = pickle.loads(pickle.dumps(context))
    assert clone == context and isinstance(clone.spec, SweepSpec)
    config = clone.spec.trial_config({"learningRate": 0.02})
    assert config.learning_rate == 0.02 and config.max_steps == spec().budget.smoke_steps


def test_previous_record(tmp_path: Path) -> None:
    files = sweep_files(tmp_path)
    assert trainable.previous_record(files, "t") is None
    record = trial("t", TrialState.SUCCEEDED, 0.5)
    files.write_trial(record)
    assert trainable.previous_record(files, "t") == record
    files.store.write_text(files.layout.trial_key("u"), "{half")
    assert trainable.previous_record(files, "u") is None  # unreadable: trains again

    class Unreachable(SweepFiles):
        def trial(self, trial_id: str) -> TrialResult | None:
            raise StoreError("the store is down")

    down = Unreachable(files.store, files.layout)
    assert trainable.previous_record(down, "t") is None


def test_replayed_metrics() -> None:
    previous = trial("t", TrialState.SUCCEEDED, 0.5, metrics={"loss": 1.0}, steps=20)
    assert trainable.replayed_metrics(previous) == {"loss": 1.0, PRIMARY_SCORE: 0.5, "step": 20}
    unscored = trial("t", TrialState.SUCCEEDED, metrics={"loss": 1.0}, steps=20)
    assert trainable.replayed_metrics(unscored) == {"loss": 1.0, "step": 20}


def test_final_record() -> None:
    running = trainable.running_record(SweepTarget("file:///x", "ns", "sw"), "t", {"lr": 0.1})
    assert running.state is TrialState.RUNNING and running.namespace == "ns"
    assert running.started_at is not None and running.params == {"lr": 0.1}
    result = SimpleNamespace(metrics={"loss": 2}, primary_score=0.75, steps=20, wall_seconds=3)
    final, metrics = trainable.final_record(running, result)
    assert metrics == {"loss": 2.0, PRIMARY_SCORE: 0.75, "step": 20.0}
    assert final.state is TrialState.SUCCEEDED and final.metrics == metrics
    assert (final.primary_score, final.steps, final.wall_seconds) == (0.75, 20, 3.0)
    assert final.finished_at is not None and final.params == {"lr": 0.1}
    result.primary_score = None
    _, metrics = trainable.final_record(running, result)
    assert PRIMARY_SCORE not in metrics


def test_checkpoint_dir() -> None:
    target = SweepTarget("file:///x", "local", "sw")
    every = spec(trainer={"checkpointEvery": 10}).trial_config({})
    never = spec().trial_config({})
    assert never.checkpoint_every == 0
    with_root = trainable.TrialContext(target=target, spec=spec(), checkpoint_root="/ck")
    assert trainable.checkpoint_dir(with_root, "t", every) == "/ck/t"
    assert trainable.checkpoint_dir(with_root, "t", never) is None
    no_root = trainable.TrialContext(target=target, spec=spec())
    assert trainable.checkpoint_dir(no_root, "t", every) is None


# ----------------------------------------------------------------------------- the CLI


def test_sweep_run_passes_the_spec_as_the_operator_does(tmp_path: Path) -> None:
    from tunix_rt.cli import sweep_process

    store = Store(f"file://{tmp_path}")
    files = SweepFiles(store, SweepLayout.of("local", "sw"))
    local = sweep_process.LocalSweep(Path("s.yaml"), spec(), "sw", files, tmp_path / "d.log")
    cmd = sweep_process.driver_cmd(local, fresh=True, num_cpus=2)
    blob = cmd[cmd.index("--spec-b64") + 1]
    wire = json.dumps(spec().to_wire(), separators=(",", ":"), sort_keys=True)
    assert blob == base64.b64encode(wire.encode()).decode()
    assert cmd[cmd.index("--storage") + 1] == store.uri
    assert cmd[cmd.index("--namespace") + 1] == "local"
    assert cmd[-3:] == ["--fresh", "--num-cpus", "2"]
    assert local.summary_uri == f"{store.uri}/local/sw/summary.json"


def test_a_bad_user_dataset_is_found_before_any_trial(tmp_path: Path) -> None:
    """Every trial would fail on it after compiling: the driver says so first, naming
    the field (and says nothing for the generated set)."""
    from tunix_rt.tune.driver import dataset_problem

    good = SweepSpec.model_validate(
        {"searchSpace": {"learningRate": {"type": "loguniform", "low": 1e-4, "high": 1e-2}}}
    )
    assert dataset_problem(good) is None
    missing = str(tmp_path / "nope.jsonl")
    bad = good.model_copy(
        update={
            "trainer": good.trainer.model_copy(
                update={
                    "dataset": good.trainer.dataset.model_copy(
                        update={"train_path": missing, "eval_path": missing}
                    )
                }
            )
        }
    )
    problem = dataset_problem(bad)
    assert problem is not None and "dataset.trainPath" in problem and "no such file" in problem


def test_a_session_that_ends_before_tune_records_how_in_the_ledger(tmp_path: Path) -> None:
    """What reads ``sessions.json`` (the operator, ``sweep show``) learns why nothing ran."""
    from tunix_rt.tune.driver import run_sweep

    missing = {"trainPath": str(tmp_path / "nope.jsonl"), "evalPath": str(tmp_path / "n.jsonl")}
    bad = spec(trainer={"dataset": missing})
    run = SweepRun(spec=bad, name="sw", storage=f"file://{tmp_path}", echo=False)
    outcome = run_sweep(run)
    assert outcome.exit_code is ExitCode.INVALID and "bad dataset" in outcome.message
    sessions = sweep_files(tmp_path).sessions()
    assert sessions is not None and sessions.last is not None
    assert (sessions.last.exit_code, sessions.last.message) == (ExitCode.INVALID, outcome.message)
    assert sessions.last.ended_at is not None
