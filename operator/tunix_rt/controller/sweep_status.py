"""A Sweep's status from what the follow step read: pure functions, no I/O.

The reconcile loop (:mod:`tunix_rt.controller.sweep`) reads the RayJob and the store and
judges the phase (:func:`tunix_rt.contract.phases.judge_sweep`); these rules turn that
verdict and the trial records into the desired status:

* :func:`merge_trials`: the summary's trials win (they are final), trials only in files
  are kept too;
* :func:`trial_fields`: trials, counts, progress, best trial and its primary_score (a
  warm start's reused trials can be the best; counts and rows are this sweep's own), and
  ``warmStart`` from the driver's record;
* :func:`status_message` (and :func:`settle`, the verdict carrying it): the driver's own
  message, else the progress (``3/5 trials finished (1 running); best trial …``);
* :func:`evidence_fields`: the evidence folder and zip of a finished sweep;
* :func:`desired_status`: all of it, in the keys ``status`` holds;
* :func:`newly_finished` / :func:`trial_event`: one Event per trial that finished since
  the last status;
* :func:`retry_plan` / :func:`attempt_rayjob_name` / :func:`attempt_fields` /
  :func:`out_of_retries`: a RayJob cut off by its infrastructure is followed by a new
  one that resumes the sweep, up to ``spec.retries`` times.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tunix_rt.api.common import Phase
from tunix_rt.api.names import child_name
from tunix_rt.api.results import best_summary, trial_summary
from tunix_rt.api.sweep import SweepSpec
from tunix_rt.api.trial import (
    FINISHED_STATES,
    SweepResult,
    TrialResult,
    TrialState,
    WarmStartRecord,
)
from tunix_rt.api.warm_start import WarmStartStatus
from tunix_rt.contract.best_trial import sweep_best
from tunix_rt.contract.phases import Verdict
from tunix_rt.contract.warm_start import new_trials_planned
from tunix_rt.controller.status import phase_status
from tunix_rt.scoring import PRIMARY_SCORE


def merge_trials(files: list[TrialResult], summary: SweepResult | None) -> list[TrialResult]:
    """Summary trials win (they are final); trials only in files are kept too."""
    by_id = {t.trial_id: t for t in files}
    if summary is not None:
        by_id.update({t.trial_id: t for t in summary.trials})
    return [by_id[k] for k in sorted(by_id)]


def _planned(spec: SweepSpec, summary: SweepResult | None, warm: WarmStartRecord | None) -> int:
    """Trials planned: what the driver reported, else what the spec plans (less the
    measured points a warm start takes away)."""
    if summary is not None and summary.trials_planned:
        return summary.trials_planned
    if warm is not None:
        return new_trials_planned(spec, warm.trials, warm.rerun_measured)
    return spec.planned_trials()


def trial_fields(
    trials: list[TrialResult],
    spec: SweepSpec,
    summary: SweepResult | None,
    warm: WarmStartRecord | None = None,
) -> dict[str, Any]:
    """trials / counts / progress / best trial / primary score for status, and the warm
    start (``warm``: the driver's record; the summary's reused trials are in ``trials``)."""
    own = [t for t in trials if not t.reused]
    reused = list(warm.trials) if warm is not None else [t for t in trials if t.reused]
    completed = sum(t.state in (TrialState.SUCCEEDED, TrialState.STOPPED) for t in own)
    failed = sum(t.state is TrialState.FAILED for t in own)
    running = sum(t.state is TrialState.RUNNING for t in own)
    total = max(_planned(spec, summary, warm), len(own))
    best = sweep_best([*own, *reused], spec.objective, summary)
    best_wire = best_summary(best)
    return warm_fields(warm, summary) | {
        "acceleratorHoursUsed": accelerator_hours_used(own, summary),
        "preemptions": sum(t.preemptions for t in own),
        "trials": [trial_summary(t).to_wire() for t in own],
        "trialsTotal": total,
        "trialsCompleted": completed,
        "trialsFailed": failed,
        "trialsRunning": running,
        "trialsProgress": f"{completed + failed}/{total}",
        "bestTrial": best_wire.to_wire() if best_wire else None,
        "primaryScore": best.primary_score if best else None,
    }


def warm_fields(warm: WarmStartRecord | None, summary: SweepResult | None) -> dict[str, Any]:
    """``warmStart`` once the driver recorded it (before: what the start wrote stays)."""
    recorded = warm.summary() if warm is not None else summary.warm_start if summary else None
    if recorded is None:
        return {}
    return {"warmStart": WarmStartStatus.of(recorded).to_wire()}


def accelerator_hours_used(trials: Sequence[TrialResult], summary: SweepResult | None) -> float:
    """The driver's count once it summarised, else the trial records' (rounded: status)."""
    if summary is not None and summary.accelerator_hours_used is not None:
        return round(summary.accelerator_hours_used, 6)
    return round(sum(t.accelerator_hours for t in trials), 6)


def _best_suffix(fields: Mapping[str, Any]) -> str:
    """``; best trial <id> primary_score <score>`` once there is a scored best trial."""
    best = fields.get("bestTrial")
    if not best or fields.get("primaryScore") is None:
        return ""
    return f"; best trial {best['id']} {PRIMARY_SCORE} {fields['primaryScore']:.4f}"


UNREADABLE_LISTED = 20
"""The most unreadable trial records status names (the count is always whole)."""


def unreadable_fields(damaged: Mapping[str, str]) -> dict[str, Any]:
    """``trialsUnreadable`` and ``unreadableTrials`` (``trials/<id>.json: why``, clipped)
    from :attr:`~tunix_rt.contract.layout.SweepFiles.damaged_trials`."""
    listed = [
        f"{key.rsplit('/', 2)[-2]}/{key.rsplit('/', 1)[-1]}: {why}"[:200]
        for key, why in sorted(damaged.items())[:UNREADABLE_LISTED]
    ]
    return {"trialsUnreadable": len(damaged), "unreadableTrials": listed}


def progress_message(fields: Mapping[str, Any]) -> str:
    done = fields["trialsCompleted"] + fields["trialsFailed"]
    text = f"{done}/{fields['trialsTotal']} trials finished"
    extras = []
    if fields["trialsRunning"]:
        extras.append(f"{fields['trialsRunning']} running")
    if fields["trialsFailed"]:
        extras.append(f"{fields['trialsFailed']} failed")
    if fields.get("trialsUnreadable"):
        extras.append(f"{fields['trialsUnreadable']} trial records unreadable")
    if extras:
        text += f" ({', '.join(extras)})"
    return text + _best_suffix(fields)


def _succeeded_message(verdict: Verdict, fields: Mapping[str, Any]) -> str:
    """The driver's own message, else how many trials succeeded and the best one."""
    if verdict.message:
        return verdict.message
    return f"{fields['trialsCompleted']} trials succeeded{_best_suffix(fields)}"


def _running_message(verdict: Verdict, fields: Mapping[str, Any]) -> str:
    """Why it still runs (e.g. waiting for the summary), then the progress."""
    return f"{verdict.message}; {progress_message(fields)}"


def status_message(verdict: Verdict, fields: Mapping[str, Any]) -> str:
    """The status message for ``verdict``."""
    if verdict.phase is Phase.SUCCEEDED:
        return _succeeded_message(verdict, fields)
    if verdict.phase is Phase.RUNNING and verdict.message:
        return _running_message(verdict, fields)
    return verdict.message or progress_message(fields)


def settle(verdict: Verdict, fields: Mapping[str, Any]) -> Verdict:
    """``verdict`` carrying its status message."""
    return Verdict(verdict.phase, verdict.reason, status_message(verdict, fields))


def evidence_fields(evidence_uri: str, bundle_uri: str | None) -> dict[str, Any]:
    """The evidence folder and zip, once the finished sweep uploaded its bundle."""
    if bundle_uri is None:
        return {}
    return {"evidenceUri": evidence_uri, "bundleUri": bundle_uri}


def desired_status(
    verdict: Verdict,
    fields: Mapping[str, Any],
    status: Mapping[str, Any],
    rayjob_name: str,
    evidence: Mapping[str, Any],
) -> dict[str, Any]:
    """The status for a settled ``verdict``: trial fields, phase, conditions, evidence.
    Without a best trial, ``bestTrial`` and ``primaryScore`` are left as they are."""
    desired: dict[str, Any] = dict(fields)
    desired.update(phase_status(status, verdict), rayJobName=rayjob_name)
    desired.update(evidence)
    if not desired.get("bestTrial"):
        desired.pop("bestTrial")
        desired.pop("primaryScore")
    return desired


# ----------------------------------------------------------------------------- events


def newly_finished(
    status: Mapping[str, Any],
    trials: Sequence[TrialResult],
    announced: Collection[str] = (),
) -> list[TrialResult]:
    """The trials that finished since ``status`` was written, less those ``announced`` by an
    earlier step of this process: a step woken by a RayJob event can hold a status older
    than the one the step before it wrote, and would announce a trial twice."""
    before = {t.get("id"): t.get("state") for t in status.get("trials") or []}
    finished_states = {s.value for s in FINISHED_STATES}
    return [
        t
        for t in trials
        if t.state in FINISHED_STATES
        and before.get(t.trial_id) not in finished_states
        and t.trial_id not in announced
    ]


def trial_event(trial: TrialResult) -> tuple[bool, str]:
    """(a warning?, the Event message) for one finished trial."""
    score = "n/a" if trial.primary_score is None else f"{trial.primary_score:.4f}"
    text = f"trial {trial.trial_id} {trial.state.value}: {PRIMARY_SCORE} {score}"
    if trial.error:
        text += f" ({trial.error.splitlines()[0][:200]})"
    return trial.state is TrialState.FAILED, text


# ----------------------------------------------------------------------------- retries


NAME_LIMIT = 47
"""RayJob names feed RayCluster and Service names, which KubeRay caps (api.names)."""


@dataclass(frozen=True)
class Retry:
    """A new attempt: its number, why the last one failed, what the Event says."""

    attempt: int
    reason: str
    message: str


def attempts_of(status: Mapping[str, Any]) -> int:
    """Attempts made so far (a Sweep from before attempts were counted: 1)."""
    return int(status.get("attempts") or 1)


def attempt_start(status: Mapping[str, Any]) -> datetime | None:
    """When the current attempt's RayJob was created (else the sweep's start)."""
    raw = status.get("attemptStartTime") or status.get("startTime")
    if not raw:
        return None
    try:
        return datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError:
        return None


def retry_plan(
    verdict: Verdict, infrastructure: bool, status: Mapping[str, Any], retries: int, rayjob: str
) -> Retry | None:
    """The next attempt, when ``verdict`` failed the attempt for an infrastructure reason
    and ``spec.retries`` leaves one; else None."""
    if verdict.phase is not Phase.FAILED or not infrastructure:
        return None
    done = attempts_of(status)
    if done > retries:
        return None
    message = (
        f"RayJob {rayjob} failed ({verdict.reason}: {verdict.message}); starting attempt "
        f"{done + 1} of {retries + 1}, which resumes the sweep from the store"
    )
    return Retry(done + 1, verdict.reason, message)


def out_of_retries(
    verdict: Verdict, infrastructure: bool, status: Mapping[str, Any], retries: int
) -> Verdict:
    """A failed attempt that is not resumed says why, when it could have been."""
    if verdict.phase is not Phase.FAILED or not infrastructure:
        return verdict
    done = attempts_of(status)
    return Verdict(
        verdict.phase,
        verdict.reason,
        f"{verdict.message}; not resumed: {done} attempt(s) made, spec.retries is {retries}",
    )


def attempt_rayjob_name(sweep: str, attempt: int) -> str:
    """``sweep-<name>`` for the first attempt, ``sweep-<name>-a<N>`` after (deterministic:
    an operator restarted mid-retry adopts it instead of creating another)."""
    if attempt <= 1:
        return child_name("sweep", sweep)
    suffix = f"-a{attempt}"
    return child_name("sweep", sweep, max_len=NAME_LIMIT - len(suffix)) + suffix


def attempt_fields(attempt: int, created: str, reason: str | None = None) -> dict[str, Any]:
    """What the status records of an attempt whose RayJob was ``created`` (besides its
    RayJob and phase): the count, when, and why the one before it failed."""
    fields: dict[str, Any] = {"attempts": attempt, "attemptStartTime": created}
    if reason is not None:
        fields["lastRetryReason"] = reason
    return fields
