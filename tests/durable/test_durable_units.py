"""The durability rules on their own (no Ray, no operator): budgets and the goal,
curves, the resume rule for failed attempts, the check of Ray Tune's state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tunix_rt.api.sweep import SweepSpec
from tunix_rt.api.trial import DriverSession, DriverSessions, SweepResult, TrialResult, TrialState
from tunix_rt.contract.exits import ExitCode, exit_code_in, retriable
from tunix_rt.contract.layout import SweepFiles, SweepLayout
from tunix_rt.contract.phases import (
    BUDGET_EXHAUSTED,
    GOAL_REACHED,
    SweepEnd,
    infrastructure_failure,
    session_of_attempt,
    sweep_verdict,
)
from tunix_rt.storage import Store
from tunix_rt.tune.budget import SweepLimits
from tunix_rt.tune.durable import SessionLedger, state_problem
from tunix_rt.tune.records import HOURS_KEY, extend_curve

H = 3600.0


def spec(**over: object) -> SweepSpec:
    wire: dict[str, object] = {
        "searchSpace": {"learningRate": {"type": "loguniform", "low": 1e-4, "high": 1e-2}},
        "maxTrials": 10,
        "maxConcurrentTrials": 2,
    }
    wire.update(over)
    return SweepSpec.model_validate(wire)


def trial(
    tid: str, state: TrialState, hours: float = 0.0, score: float | None = None
) -> TrialResult:
    return TrialResult(
        trial_id=tid, sweep="s", state=state, accelerator_hours=hours, primary_score=score
    )


# ----------------------------------------------------------------------------- budget


def test_devices_per_trial() -> None:
    assert spec().accelerators_per_trial() == 1.0  # CPU: one device a trial
    assert spec(resources={"gpu": 2}).accelerators_per_trial() == 2.0
    assert spec(resources={"tpu": 4}).accelerators_per_trial() == 4.0


def test_hours_budget_refuses_the_trial_that_would_pass_it() -> None:
    limits = SweepLimits.seeded(
        spec(budget={"acceleratorHours": 1.0}), 0.0, [trial("a", TrialState.SUCCEEDED, 0.3)], 0
    )
    assert limits.used_hours(0) == pytest.approx(0.3)
    assert limits.refuse_next(0) is None  # 0.3 used + 0.3 next <= 1
    limits.trial_started("b", 0.0)
    limits.trial_reported("b", {HOURS_KEY: 0.1}, 0.1 * H)
    assert limits.used_hours(0.1 * H) == pytest.approx(0.4)
    assert limits.refuse_next(0.1 * H) is None  # 0.4 + 0.2 still needed by b + 0.3 = 0.9
    limits.trial_started("c", 0.1 * H)
    why = limits.close_if_needed(0.2 * H)  # b ~0.2, c ~0.1: 0.6 + 0.1 + 0.2 + 0.3 > 1
    assert why and "budget.acceleratorHours 1 reached" in why and "next trial" in why
    assert limits.closed == why and limits.stop_everything(0.2 * H) is None  # not at the cap yet
    assert limits.stop_everything(0.5 * H)  # b 0.5 + c 0.4 + a 0.3 >= 1: stop running trials
    limits.trial_ended("b", 0.5 * H, full=False)
    assert limits.trial_hours("b", 0.6 * H) == pytest.approx(0.5)


def test_wall_clock_budget_counts_earlier_sessions() -> None:
    limits = SweepLimits.seeded(spec(budget={"wallClockSeconds": 100}), 10.0, [], 90.0)
    assert limits.exhausted(15.0) is None
    assert limits.exhausted(20.0) == "budget.wallClockSeconds 100 reached (100 s used)"


def test_goal_from_a_report_and_from_earlier_records() -> None:
    goal = spec(objective={"metric": "primary_score", "mode": "max", "goal": 0.8})
    limits = SweepLimits.seeded(goal, 0.0, [], 0.0)
    limits.trial_reported("a", {"primary_score": 0.5}, 1.0)
    assert limits.stop_everything(1.0) is None
    limits.trial_reported("b", {"primary_score": 0.85}, 2.0)
    assert limits.stop_everything(2.0) == "trial b reached objective.goal"
    seeded = SweepLimits.seeded(goal, 0.0, [trial("x", TrialState.STOPPED, score=0.9)], 0)
    assert seeded.goal_trial == "x"
    low = spec(objective={"metric": "loss", "mode": "min", "goal": 0.5})
    assert low.objective.reached(0.4) and not low.objective.reached(0.6)
    assert not spec().objective.reached(1.0)  # no goal: never reached


def test_verdicts_of_budget_and_goal() -> None:
    s = spec(objective={"metric": "primary_score", "mode": "max", "goal": 0.8})
    trials = [trial("a", TrialState.SUCCEEDED, score=0.9), trial("b", TrialState.STOPPED)]
    goal = sweep_verdict(SweepEnd(trials, 2, False, False, goal_trial="a"), s)
    assert (goal.phase.value, goal.reason) == ("Succeeded", GOAL_REACHED)
    assert "trial a reached objective.goal primary_score=0.8" in goal.message
    budget = sweep_verdict(SweepEnd(trials, 2, False, False, budget="cap reached"), s)
    assert (budget.phase.value, budget.reason) == ("Succeeded", BUDGET_EXHAUSTED)
    unscored = [trial("b", TrialState.STOPPED)]
    nothing = sweep_verdict(SweepEnd(unscored, 1, False, False, budget="cap reached"), s)
    assert (nothing.phase.value, nothing.reason) == ("Failed", BUDGET_EXHAUSTED)


def test_curve_keeps_one_point_a_step_in_order() -> None:
    curve: list[dict[str, float]] = []
    for point in ({"step": 10, "loss": 2.0}, {"step": 20, "loss": 1.5}):
        curve = extend_curve(curve, point)
    curve = extend_curve(curve, {"step": 20, "primary_score": 0.5})  # the final eval
    assert curve == [{"step": 10, "loss": 2.0}, {"step": 20, "loss": 1.5, "primary_score": 0.5}]
    resumed = extend_curve(curve, {"step": 10, "loss": 1.9})  # resumed from step 0
    assert resumed == [{"step": 10, "loss": 1.9}]


# ----------------------------------------------------------------------------- resume rule


NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


def session(started: datetime, code: int | None) -> DriverSession:
    ended = started + timedelta(minutes=1) if code is not None else None
    return DriverSession(started_at=started, seen_at=started, ended_at=ended, exit_code=code)


def test_exit_codes_in_messages_and_what_is_retried() -> None:
    assert exit_code_in("Job entrypoint command failed with exit code 1, last logs") == 1
    assert exit_code_in("failed with exit code -9") == -9
    assert exit_code_in("the head pod was deleted") is None
    assert [retriable(c) for c in (None, 130, -9, 137, 0, 1, 2)] == [
        True, True, True, True, False, False, False,
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("job", "summary", "code", "mine", "retried"),
    [
        ({"jobStatus": "FAILED"}, False, None, True, True),  # driver killed mid-run
        ({"jobDeploymentStatus": "Failed"}, False, ExitCode.INTERRUPTED, True, True),
        ({"jobStatus": "FAILED"}, False, ExitCode.FAILED, True, False),  # sweep failed
        ({"jobStatus": "FAILED"}, False, ExitCode.INVALID, True, False),
        ({"jobStatus": "FAILED"}, True, None, True, False),  # its verdict is written
        ({"jobStatus": "FAILED", "reason": "DeadlineExceeded"}, False, None, True, False),
        ({"jobStatus": "FAILED", "message": "bad image"}, False, None, False, False),
        ({"jobStatus": "FAILED", "message": "failed with exit code -9"}, False, None, False, True),
        (None, False, None, True, True),  # the RayJob (cluster) deleted under a live driver
    ],
)
def test_infrastructure_failure(
    job: dict[str, str] | None, summary: bool, code: int | None, mine: bool, retried: bool
) -> None:
    attempt = NOW
    started = attempt + timedelta(seconds=30) if mine else attempt - timedelta(hours=1)
    last = session_of_attempt(session(started, code), attempt)
    assert (last is not None) == mine
    rayjob = None if job is None else {"status": job}
    result = SweepResult(sweep="s") if summary else None
    assert infrastructure_failure(rayjob, result, last) is retried


# ----------------------------------------------------------------------------- the store


def test_cut_snapshot_is_set_aside_for_the_one_before(tmp_path: Path) -> None:
    store = Store(f"file://{tmp_path}")
    files = SweepFiles(store, SweepLayout.of("ml", "s"))
    ray = files.layout.experiment_prefix
    store.write_text(f"{ray}/tuner.pkl", "x")
    store.write_text(f"{ray}/experiment_state-2026-11-30_07-00-00.json", '{"trial_data": []}')
    store.write_text(f"{ray}/experiment_state-2026-11-30_08-00-00.json", '{"trial_da')
    said: list[str] = []
    assert state_problem(files, said.append) is None
    assert store.exists(f"{ray}/experiment_state-2026-11-30_08-00-00.json.cut")
    assert not store.exists(f"{ray}/experiment_state-2026-11-30_08-00-00.json")
    assert "cut short" in said[0]
    store.write_text(f"{ray}/experiment_state-2026-11-30_07-00-00.json", "")
    files.write_trial(trial("t", TrialState.SUCCEEDED))
    problem = state_problem(files, said.append)
    assert problem and "1 trial record(s)" in problem and "--fresh" in problem


def test_session_ledger_adds_up_wall_time(tmp_path: Path) -> None:
    files = SweepFiles(Store(f"file://{tmp_path}"), SweepLayout.of("ml", "s"))
    files.write_sessions(DriverSessions(sessions=[session(NOW, None)]))
    ledger = SessionLedger(files, every_s=0)
    assert ledger.open() == 0.0  # a killed session's time ends at its last sign of life
    ledger.close(ExitCode.OK, "done")
    sessions = files.sessions()
    assert sessions is not None and [s.exit_code for s in sessions.sessions] == [None, 0]
    assert sessions.last is not None and sessions.last.message == "done"


# ----------------------------------------------------------------------------- operator


def test_retry_plan_counts_attempts_against_spec_retries() -> None:
    from tunix_rt.api.common import Phase
    from tunix_rt.contract.phases import Verdict
    from tunix_rt.controller.sweep_status import out_of_retries, retry_plan

    lost = Verdict(Phase.FAILED, "AppFailed", "Ray head pod not found")
    plan = retry_plan(lost, True, {"attempts": 1}, 2, "sweep-s")
    assert plan is not None and (plan.attempt, plan.reason) == (2, "AppFailed")
    assert "attempt 2 of 3" in plan.message and "Ray head pod not found" in plan.message
    assert retry_plan(lost, True, {}, 2, "sweep-s") is not None  # status from before attempts
    assert retry_plan(lost, True, {"attempts": 3}, 2, "sweep-s") is None  # 1 + 2 retries made
    assert retry_plan(lost, False, {"attempts": 1}, 2, "sweep-s") is None  # the sweep's own
    assert retry_plan(lost, True, {"attempts": 1}, 0, "sweep-s") is None  # retries: 0
    running = Verdict(Phase.RUNNING, "TrialsRunning")
    assert retry_plan(running, True, {}, 2, "sweep-s") is None
    final = out_of_retries(lost, True, {"attempts": 3}, 2)
    assert final.reason == "AppFailed" and "not resumed: 3 attempt(s) made" in final.message
    assert out_of_retries(lost, False, {"attempts": 3}, 2) == lost


def test_attempt_names_and_start() -> None:
    from tunix_rt.controller.sweep_status import attempt_rayjob_name, attempt_start

    assert attempt_rayjob_name("lr", 1) == "sweep-lr"
    assert attempt_rayjob_name("lr", 2) == "sweep-lr-a2"
    long = attempt_rayjob_name("x" * 80, 12)
    assert len(long) <= 47 and long.endswith("-a12")
    assert attempt_rayjob_name("x" * 80, 12) != attempt_rayjob_name("x" * 79 + "y", 12)
    assert attempt_start({"attemptStartTime": "2026-11-30T08:00:00Z"}) == NOW
    assert attempt_start({"startTime": "2026-11-30T08:00:00Z"}) == NOW
    assert attempt_start({}) is None and attempt_start({"startTime": "soon"}) is None


def test_a_rayjob_kuberay_failed_for_its_submitter_is_finished() -> None:
    """KubeRay 1.5 with its head pod lost: the submitter Job fails, KubeRay writes
    jobDeploymentStatus Failed (SubmissionFailed) and leaves jobStatus RUNNING, the last the
    dashboard said. The attempt is over, so the operator reads the driver's sessions and
    resumes a killed driver (tests/control_plane/test_run_to_completion.py runs it)."""
    from tunix_rt.contract.phases import infrastructure_failure, job_finished

    message = ("Job submission has failed. Reason: BackoffLimitExceeded. Message: Job has "
               "reached the specified backoff limit")  # fmt: skip
    lost = {"status": {"jobStatus": "RUNNING", "jobDeploymentStatus": "Failed",
                       "reason": "SubmissionFailed", "message": message}}  # fmt: skip
    assert job_finished(lost)
    assert not job_finished({"status": {"jobStatus": "RUNNING", "jobDeploymentStatus": "Running"}})
    killed = DriverSession(started_at=datetime.now(UTC), seen_at=datetime.now(UTC))
    assert infrastructure_failure(lost, None, killed)
