"""A Rehearsal's status from what the follow step read: pure functions, no I/O.

The reconcile loop (:mod:`tunix_rt.controller.rehearsal`) reads the RayJob, the evidence
at the prefix (:class:`Evidence`) and, after a failure, the run's own failure record;
it judges the phase with :func:`tunix_rt.contract.phases.judge_rehearsal`. These rules
turn that into the desired status:

* :func:`succeeded`: the message names the primary_score and where the evidence is;
* :func:`failed_as_recorded`: the run's own reason and message, with its log;
* :func:`desired_status`: phase, conditions, evidence files; a score and a bundle only
  for a succeeded run (until then what sits at the prefix is an earlier run's);
* :func:`waiting_status`: Pending while the source Sweep has not succeeded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tunix_rt.api.common import Phase
from tunix_rt.contract import reasons
from tunix_rt.contract.phases import Verdict, reason_of
from tunix_rt.controller.status import clear_spec_change, phase_conditions, phase_status
from tunix_rt.evidence.failure import RehearsalFailure
from tunix_rt.scoring import PRIMARY_SCORE


@dataclass
class Evidence:
    """What a rehearsal's prefix holds (failed attempts and archives left out)."""

    files: list[str] = field(default_factory=list)
    primary_score: float | None = None
    has_summary: bool = False
    bundle: str | None = None
    log: str | None = None


def parse_time(value: object) -> datetime | None:
    """An RFC 3339 time (status, manifests) as an aware datetime; None when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def score_of(eval_summary: object) -> float | None:
    """The primary_score of an ``eval_summary.json`` (None when it has none)."""
    score = eval_summary.get(PRIMARY_SCORE) if isinstance(eval_summary, dict) else None
    return float(score) if isinstance(score, int | float) else None


def succeeded(verdict: Verdict, evidence: Evidence, uri: str) -> Verdict:
    """Succeeded: the message names the score and the evidence folder."""
    score = "n/a" if evidence.primary_score is None else f"{evidence.primary_score:.4f}"
    message = f"rehearsal finished: {PRIMARY_SCORE} {score}; evidence in {uri}"
    return Verdict(verdict.phase, verdict.reason, message)


def failed_as_recorded(verdict: Verdict, failure: RehearsalFailure) -> tuple[Verdict, str | None]:
    """Failed with the run's own reason and message; and the URI of its log."""
    log_uri = failure.log_uri or failure.failure_uri
    message = f"{failure.message} (log: {log_uri})"
    return Verdict(Phase.FAILED, reason_of(failure.reason, verdict.reason), message), log_uri


def desired_status(
    verdict: Verdict,
    evidence: Evidence,
    uri: str,
    log_uri: str | None,
    status: Mapping[str, Any],
) -> dict[str, Any]:
    """The status for a settled ``verdict``.

    Only a succeeded run shows a score and a bundle: until then (and after a failure)
    what sits at the prefix is an earlier run's evidence, kept and listed in
    evidenceFiles but not this run's result."""
    desired = phase_status(status, verdict)
    succeeded = verdict.phase is Phase.SUCCEEDED
    desired.update(
        evidenceUri=uri,
        evidenceFiles=evidence.files,
        primaryScore=evidence.primary_score if succeeded else None,
        bundleUri=evidence.bundle if succeeded else None,
    )
    if log_uri:
        desired["logUri"] = log_uri
    return desired


def waiting_status(
    status: Mapping[str, Any], message: str, generation: int | None, source_sweep: str | None
) -> dict[str, Any]:
    """Pending (reason ``WaitingForSweep``): the source Sweep has not succeeded yet."""
    conditions = clear_spec_change(status.get("conditions") or [])
    return {
        "phase": Phase.PENDING.value,
        "message": message,
        "conditions": phase_conditions(
            conditions, Phase.PENDING, reasons.WAITING_FOR_SWEEP, message, generation
        ),
        "observedGeneration": generation,
        "sourceSweep": source_sweep,
    }
