"""The phase rules: what makes a Sweep or a Rehearsal Succeeded, Failed or still running.

Decided once, here. The Tune driver applies :func:`sweep_verdict` to its trials and
writes the result into ``summary.json``; the CLI and the operator read that verdict back
(:func:`from_summary`); the operator combines it with the RayJob's status
(:func:`judge_sweep`, :func:`judge_rehearsal`), each rule a small named function.
Pure functions: no I/O, no kopf, no Ray.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tunix_rt.api.common import QUEUE_LABEL, Phase
from tunix_rt.api.sweep import SweepSpec
from tunix_rt.api.trial import DriverSession, SweepResult, TrialResult, TrialState
from tunix_rt.contract.best_trial import best_trial, objective_value
from tunix_rt.contract.exits import exit_code_in, retriable
from tunix_rt.contract.file_names import EVAL_SUMMARY_JSON, SUMMARY_JSON

INTERRUPTED = "Interrupted"
"""Reason of a sweep that stopped before it finished: a rerun resumes it."""
SUCCEEDED = "Succeeded"
BUDGET_EXHAUSTED = "BudgetExhausted"
"""Reason of a sweep ended by budget.acceleratorHours or budget.wallClockSeconds."""
GOAL_REACHED = "GoalReached"
"""Reason of a sweep ended because a trial reached objective.goal."""
TIMED_OUT = "TimedOut"
"""Reason of a sweep ended by budget.sweepTimeoutSeconds (one session's limit)."""


@dataclass(frozen=True)
class Verdict:
    phase: Phase
    reason: str
    message: str = ""

    @property
    def finished(self) -> bool:
        return self.phase in (Phase.SUCCEEDED, Phase.FAILED)


# ----------------------------------------------------------------------------- the driver


@dataclass(frozen=True)
class SweepEnd:
    """How Ray Tune's run ended, as far as the verdict cares."""

    trials: Sequence[TrialResult]
    """This run's trial records."""
    launched: int
    """Trials Ray Tune created (restored ones included)."""
    incomplete: bool
    """Some trial neither terminated nor errored (the run was interrupted)."""
    timed_out: bool
    """The sweep's time budget ran out."""
    budget: str | None = None
    """Why a sweep budget (acceleratorHours, wallClockSeconds) ended it; None: it did not."""
    goal_trial: str | None = None
    """The trial that reached objective.goal; None: none did."""
    planned: int | None = None
    """New trials planned (a warm start's measured points left out); None: the spec's."""
    reused: Sequence[TrialResult] = ()
    """Earlier trials a warm start reused: they can be the best, they were not run here."""

    @property
    def ended_early(self) -> bool:
        """Ended on purpose before every planned trial ran: time, budget or goal."""
        return self.timed_out or self.budget is not None or self.goal_trial is not None


def sweep_verdict(end: SweepEnd, spec: SweepSpec) -> Verdict:
    """The sweep's phase from its trials: too many failures, interrupted, or the best."""
    return (
        _too_many_failures(end, spec)
        or _interrupted(end, spec)
        or _no_score(end, spec)
        or _best(end, spec)
    )


def goal_trial(trials: Sequence[TrialResult], spec: SweepSpec) -> TrialResult | None:
    """The first finished trial (by id) whose objective value reaches objective.goal."""
    for trial in sorted(trials, key=lambda t: t.trial_id):
        if trial.state in (TrialState.SUCCEEDED, TrialState.STOPPED) and spec.objective.reached(
            objective_value(trial, spec.objective)
        ):
            return trial
    return None


def _too_many_failures(end: SweepEnd, spec: SweepSpec) -> Verdict | None:
    failed = [t for t in end.trials if t.state is TrialState.FAILED]
    if len(failed) <= spec.max_failed_trials:
        return None
    return Verdict(
        Phase.FAILED,
        "TooManyFailedTrials",
        f"{len(failed)} trial(s) failed, more than maxFailedTrials "
        f"({spec.max_failed_trials}); first error: {failed[0].error}",
    )


def _interrupted(end: SweepEnd, spec: SweepSpec) -> Verdict | None:
    planned = spec.planned_trials() if end.planned is None else end.planned
    if end.ended_early or not (end.incomplete or end.launched < planned):
        return None
    done = sum(1 for t in end.trials if t.finished)
    return Verdict(
        Phase.RUNNING,
        INTERRUPTED,
        f"sweep interrupted with {done} of {planned} trials finished; "
        "run the same command again to resume",
    )


def _no_score(end: SweepEnd, spec: SweepSpec) -> Verdict | None:
    if best_trial([*end.trials, *end.reused], spec.objective) is not None:
        return None
    if end.budget is not None:
        return Verdict(
            Phase.FAILED,
            BUDGET_EXHAUSTED,
            f"{end.budget} before any trial reported {spec.objective.metric}",
        )
    return Verdict(Phase.FAILED, "NoScore", f"no trial reported {spec.objective.metric}")


def _end_reason(end: SweepEnd, spec: SweepSpec) -> tuple[str, str]:
    """(reason, what to add to the message) of a sweep that has a best trial."""
    if end.goal_trial is not None:
        goal = spec.objective.goal
        return GOAL_REACHED, (
            f" (trial {end.goal_trial} reached objective.goal {spec.objective.metric}={goal})"
        )
    if end.budget is not None:
        return BUDGET_EXHAUSTED, f" ({end.budget})"
    if end.timed_out:
        return TIMED_OUT, " (sweep time budget reached)"
    return SUCCEEDED, ""


def _best(end: SweepEnd, spec: SweepSpec) -> Verdict:
    best = best_trial([*end.trials, *end.reused], spec.objective)
    assert best is not None
    value = objective_value(best, spec.objective)
    reason, why = _end_reason(end, spec)
    origin = best.reused_from
    reused = f" (reused from sweep {origin.sweep})" if origin is not None else ""
    message = f"best trial {best.trial_id}{reused}: {spec.objective.metric}={value}{why}"
    return Verdict(Phase.SUCCEEDED, reason, message)


def from_summary(summary: SweepResult) -> Verdict:
    """The verdict the driver wrote into ``summary.json`` (its reason, when it wrote one)."""
    if summary.phase is Phase.FAILED:
        reason = summary.reason or "SweepFailed"
        return Verdict(Phase.FAILED, reason, summary.message or "the sweep failed")
    return Verdict(Phase.SUCCEEDED, summary.reason or SUCCEEDED, summary.message or "")


# ----------------------------------------------------------------------------- the RayJob


_REASON_CHARS = str.maketrans({c: "" for c in " -./"})


def reason_of(raw: object, default: str) -> str:
    """A condition reason (CamelCase, alphanumeric) from free text, else ``default``."""
    text = str(raw or "").translate(_REASON_CHARS)
    return text if text[:1].isalpha() and text.isalnum() else default


def job_status(rayjob: Mapping[str, Any] | None) -> str:
    """KubeRay's ``status.jobStatus``, upper-case ('' before the job is submitted)."""
    return str(((rayjob or {}).get("status") or {}).get("jobStatus") or "").upper()


def job_deployment(rayjob: Mapping[str, Any] | None) -> str:
    return str(((rayjob or {}).get("status") or {}).get("jobDeploymentStatus") or "")


FINISHED_DEPLOYMENTS = ("Complete", "Failed", "ValidationFailed")


def job_finished(rayjob: Mapping[str, Any] | None) -> bool:
    """The RayJob is gone, its job reached a terminal state, or KubeRay ended it: results
    are final. KubeRay fails a RayJob whose submitter Job failed (its head pod lost:
    ``SubmissionFailed``) and leaves ``jobStatus`` at what the dashboard last said
    (RUNNING), so the deployment status counts too (seen on the simulated cluster)."""
    return (
        rayjob is None
        or job_status(rayjob) in ("SUCCEEDED", "FAILED", "STOPPED")
        or job_deployment(rayjob) in FINISHED_DEPLOYMENTS
    )


def job_failed(rayjob: Mapping[str, Any]) -> bool:
    return job_status(rayjob) in ("FAILED", "STOPPED") or job_deployment(rayjob) in (
        "Failed",
        "ValidationFailed",
    )


RAY_LOGS_MARKER = ", last available logs"
"""Where Ray's message of a failed job ("Job entrypoint command failed with exit code 1,
last available logs (truncated to 20,000 chars):" and the driver's output) turns to logs."""
MESSAGE_LIMIT = 1024


def ray_job_message(raw: object) -> str:
    """The first line of a RayJob's message, without the driver output Ray appends to a
    failed job's: up to 20,000 characters of progress tables and tracebacks that belong in
    the run log (in the store), not in a status message (found on the simulated cluster)."""
    text = str(raw or "").strip().split(RAY_LOGS_MARKER, 1)[0]
    line = text.split("\n", 1)[0].strip()
    return line if len(line) <= MESSAGE_LIMIT else line[: MESSAGE_LIMIT - 1] + "…"


def job_failure(rayjob: Mapping[str, Any], rayjob_name: str) -> Verdict:
    """Failed, with the RayJob's own reason and message (:func:`ray_job_message`)."""
    job = rayjob.get("status") or {}
    status, deployment = job_status(rayjob), job_deployment(rayjob)
    default = "RayJobStopped" if status == "STOPPED" else "RayJobFailed"
    message = ray_job_message(job.get("message")) or (
        f"RayJob {rayjob_name} {status or deployment}"
    )
    return Verdict(Phase.FAILED, reason_of(job.get("reason"), default), message)


QUEUED = "Queued"
"""Reason of a run whose RayJob waits for Kueue to admit it."""


def job_suspended(rayjob: Mapping[str, Any]) -> bool:
    """The RayJob is held back (``spec.suspend``, by us for Kueue or by Kueue itself on
    preemption) and its job is not running."""
    deployment = job_deployment(rayjob)
    if deployment in ("Suspended", "Suspending"):
        return True
    suspend = bool((rayjob.get("spec") or {}).get("suspend"))
    return suspend and job_status(rayjob) != "RUNNING" and deployment != "Running"


def _held(rayjob: Mapping[str, Any], rayjob_name: str) -> Verdict:
    """Pending while suspended: ``Queued`` when Kueue holds it, else ``RayJobSuspended``."""
    queue = ((rayjob.get("metadata") or {}).get("labels") or {}).get(QUEUE_LABEL)
    if queue:
        return Verdict(
            Phase.PENDING,
            QUEUED,
            f"RayJob {rayjob_name} is queued in Kueue LocalQueue {queue}; it starts when "
            "Kueue admits it",
        )
    return Verdict(Phase.PENDING, "RayJobSuspended", f"RayJob {rayjob_name} is suspended")


def _starting(rayjob_name: str, deployment: str) -> Verdict:
    return Verdict(
        Phase.PENDING,
        "RayClusterStarting",
        f"RayJob {rayjob_name} is {deployment or 'initializing'}",
    )


def _waiting_for_output(waited: float, grace: float, running: Verdict, failed: Verdict) -> Verdict:
    """The job succeeded but its output is not in the store yet: wait ``grace`` seconds."""
    return running if waited < grace else failed


# ----------------------------------------------------------------------------- Sweep


def judge_sweep(
    rayjob: Mapping[str, Any] | None,
    rayjob_name: str,
    summary: SweepResult | None,
    has_trials: bool,
    summary_waited: float,
    grace: float,
) -> Verdict:
    """The Sweep's phase from its RayJob's status and what the store holds."""
    if rayjob is None:
        return from_summary(summary) if summary is not None else _sweep_lost(rayjob_name)
    status, deployment = job_status(rayjob), job_deployment(rayjob)
    if status == "SUCCEEDED":
        if summary is not None:
            return from_summary(summary)
        return _waiting_for_output(
            summary_waited,
            grace,
            Verdict(
                Phase.RUNNING,
                "WaitingForSummary",
                "the Ray job succeeded; waiting for the sweep summary",
            ),
            Verdict(
                Phase.FAILED,
                "NoSummary",
                f"RayJob {rayjob_name} succeeded but the driver left no {SUMMARY_JSON}",
            ),
        )
    if job_failed(rayjob):
        return _sweep_job_failed(rayjob, rayjob_name, summary)
    if job_suspended(rayjob):
        return _held(rayjob, rayjob_name)
    if status == "RUNNING" or deployment == "Running" or has_trials:
        return Verdict(Phase.RUNNING, "TrialsRunning")
    return _starting(rayjob_name, deployment)


def _sweep_lost(rayjob_name: str) -> Verdict:
    return Verdict(
        Phase.FAILED,
        "RayJobLost",
        f"RayJob {rayjob_name} was deleted before the sweep finished; trial "
        "results found so far are kept",
    )


def _sweep_job_failed(
    rayjob: Mapping[str, Any], rayjob_name: str, summary: SweepResult | None
) -> Verdict:
    """The RayJob's failure, with the driver's own reason appended when it wrote one."""
    verdict = job_failure(rayjob, rayjob_name)
    if summary is not None and summary.message and summary.phase is Phase.FAILED:
        return Verdict(verdict.phase, verdict.reason, f"{verdict.message}; {summary.message}")
    return verdict


# ----------------------------------------------------------------------------- resume

CLOCK_SKEW = timedelta(seconds=5)
"""How much earlier than its RayJob a driver session may seem to start (node clocks)."""

NOT_RETRIED_REASONS = frozenset({"DeadlineExceeded", "ValidationFailed"})
"""RayJob reasons that are the sweep's own limits or spec, never infrastructure."""


def session_of_attempt(
    session: DriverSession | None, attempt_started: datetime | None
) -> DriverSession | None:
    """The driver session of the current attempt: the last one, when it started after the
    attempt's RayJob was created (None: this attempt's driver never started)."""
    if session is None:
        return None
    if attempt_started is not None and session.started_at < attempt_started - CLOCK_SKEW:
        return None
    return session


def infrastructure_failure(
    rayjob: Mapping[str, Any] | None,
    summary: SweepResult | None,
    session: DriverSession | None,
) -> bool:
    """Whether a failed attempt was cut off by its infrastructure (resume it) rather than
    ended by the sweep itself (do not). ``session``: this attempt's driver session
    (:func:`session_of_attempt`).

    The sweep's own verdict (a summary), its deadline, or a driver exit of FAILED or
    INVALID are final. A driver that started and did not end on its own (killed, its pod
    or node lost, the cluster deleted), or ended INTERRUPTED or by a signal, is resumed. A
    driver that never started is not: the same RayJob would fail the same way (image,
    bucket, config), unless Ray's message says it was killed."""
    if summary is not None:
        return False
    status = (rayjob or {}).get("status") or {}
    if str(status.get("reason") or "") in NOT_RETRIED_REASONS:
        return False
    if session is not None:
        return retriable(session.exit_code)
    code = exit_code_in(str(status.get("message") or ""))
    return code is not None and retriable(code)


# ----------------------------------------------------------------------------- Rehearsal


def judge_rehearsal(
    rayjob: Mapping[str, Any] | None,
    rayjob_name: str,
    has_summary: bool,
    waited: float,
    grace: float,
    uri: str,
) -> Verdict:
    """The Rehearsal's phase from its RayJob's status and whether its eval summary is up."""
    if rayjob is None:
        if has_summary:
            return Verdict(Phase.SUCCEEDED, "Succeeded")
        return Verdict(
            Phase.FAILED,
            "RayJobLost",
            f"RayJob {rayjob_name} was deleted before the rehearsal finished",
        )
    status, deployment = job_status(rayjob), job_deployment(rayjob)
    if status == "SUCCEEDED":
        if has_summary:
            return Verdict(Phase.SUCCEEDED, "Succeeded")
        return _waiting_for_output(
            waited,
            grace,
            Verdict(
                Phase.RUNNING,
                "WaitingForEvidence",
                "the Ray job succeeded; waiting for the evidence bundle",
            ),
            Verdict(
                Phase.FAILED,
                "NoEvidence",
                f"RayJob {rayjob_name} succeeded but left no {EVAL_SUMMARY_JSON} in {uri}",
            ),
        )
    if job_failed(rayjob):
        return job_failure(rayjob, rayjob_name)
    if job_suspended(rayjob):
        return _held(rayjob, rayjob_name)
    if status == "RUNNING" or deployment == "Running":
        return Verdict(Phase.RUNNING, "Running", f"RayJob {rayjob_name} is running")
    return _starting(rayjob_name, deployment)
