"""Status helpers shared by the Sweep and Rehearsal handlers: conditions, phases, messages.

Pure functions from (current status, what happened) to the desired status keys; the
handlers patch only the keys that change (:func:`apply_status`). The rules both kinds
share: :func:`started_status` (the RayJob was created or adopted: Pending) and
:func:`phase_status` (phase, message, conditions and completion time of a verdict).
Each kind's own fields are in ``sweep_status`` and ``rehearsal_status``.

Conditions (``Ready``, ``Progressing``, ``Failed``, ``Succeeded``, kstatus's
``Reconciling`` / ``Stalled``, and ``SpecChangeIgnored`` / ``Degraded`` when they apply)
follow the Kubernetes conventions: ``lastTransitionTime``
moves only when a condition's status flips; ``observedGeneration`` is the generation it
was computed for.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import kopf

from tunix_rt.api.common import TERMINAL_PHASES, Condition, Phase
from tunix_rt.api.placement import UNSCHEDULABLE
from tunix_rt.contract.phases import Verdict
from tunix_rt.storage import scrub

READY = "Ready"
PROGRESSING = "Progressing"
FAILED = "Failed"
SUCCEEDED = "Succeeded"
RECONCILING = "Reconciling"
"""kstatus: True while the object is working towards its end; False once it is there."""
STALLED = "Stalled"
"""kstatus: True when the object cannot get further on its own (it failed)."""
SPEC_CHANGE_IGNORED = "SpecChangeIgnored"
DEGRADED = "Degraded"

STORE_UNAVAILABLE = "StoreUnavailable"
"""Reason of a ``Degraded=True`` condition: the store cannot be read (retried every poll)."""
STORE_AVAILABLE = "StoreAvailable"
"""Reason of ``Degraded=False`` once the store can be read again."""

INVALID_SPEC = "InvalidSpec"
"""Reason of a Failed condition for a spec that does not validate."""


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def timestamp(moment: datetime | None = None) -> str:
    return (moment or now()).strftime("%Y-%m-%dT%H:%M:%SZ")


def phase_of(status: Mapping[str, Any]) -> Phase | None:
    value = status.get("phase")
    try:
        return Phase(value) if value else None
    except ValueError:
        return None


def is_terminal(status: Mapping[str, Any]) -> bool:
    return phase_of(status) in TERMINAL_PHASES


def condition(conditions: Iterable[Mapping[str, Any]], ctype: str) -> Mapping[str, Any] | None:
    for cond in conditions or ():
        if cond.get("type") == ctype:
            return cond
    return None


def failed_for_invalid_spec(status: Mapping[str, Any]) -> bool:
    """The object failed admission (invalid, or unschedulable), so it never got a RayJob."""
    cond = condition(status.get("conditions") or [], FAILED)
    reasons = (INVALID_SPEC, UNSCHEDULABLE)
    return bool(cond and cond.get("status") == "True" and cond.get("reason") in reasons)


def set_condition(
    conditions: Sequence[Mapping[str, Any]],
    ctype: str,
    status: bool | str,
    reason: str,
    message: str = "",
    generation: int | None = None,
) -> list[dict[str, Any]]:
    """A copy of ``conditions`` with one condition set (added or replaced in place)."""
    value = status if isinstance(status, str) else ("True" if status else "False")
    out: list[dict[str, Any]] = []
    found = False
    for cond in conditions:
        if cond.get("type") != ctype:
            out.append(dict(cond))
            continue
        found = True
        since = cond.get("lastTransitionTime") if cond.get("status") == value else None
        out.append(_condition(ctype, value, reason, message, generation, since))
    if not found:
        out.append(_condition(ctype, value, reason, message, generation, None))
    return out


def _condition(
    ctype: str, value: str, reason: str, message: str, generation: int | None, since: str | None
) -> dict[str, Any]:
    cond = Condition(
        type=ctype,
        status=value,
        reason=reason,
        message=message,
        observed_generation=generation,
    ).to_wire()
    cond["lastTransitionTime"] = since or timestamp()
    return cond


def phase_conditions(
    conditions: Sequence[Mapping[str, Any]],
    phase: Phase,
    reason: str,
    message: str,
    generation: int | None,
) -> list[dict[str, Any]]:
    """The conditions of a phase: ``Ready`` / ``Progressing`` / ``Failed`` (kept for what
    already reads them), the terminal ``Succeeded``, and kstatus's ``Reconciling`` /
    ``Stalled``, which a script can wait on for either outcome
    (``kubectl wait --for=condition=Reconciling=False``)."""
    conds: list[dict[str, Any]] = [dict(c) for c in conditions]
    for ctype, value, why, text in _phase_rules(phase, reason, message):
        conds = set_condition(conds, ctype, value, why, text, generation)
    return conds


def _phase_rules(phase: Phase, reason: str, message: str) -> list[tuple[str, bool, str, str]]:
    """(type, status, reason, message) of each phase condition."""
    if phase is Phase.SUCCEEDED:
        return [
            (READY, True, reason, message),
            (PROGRESSING, False, "Finished", message),
            (FAILED, False, "AsExpected", ""),
            (SUCCEEDED, True, reason, message),
            (RECONCILING, False, "Finished", message),
            (STALLED, False, "AsExpected", ""),
        ]
    if phase is Phase.FAILED:
        return [
            (READY, False, reason, message),
            (PROGRESSING, False, reason, message),
            (FAILED, True, reason, message),
            (SUCCEEDED, False, reason, message),
            (RECONCILING, False, reason, message),
            (STALLED, True, reason, message),
        ]
    return [
        (READY, False, phase.value, message),
        (PROGRESSING, True, reason, message),
        (FAILED, False, "AsExpected", ""),
        (SUCCEEDED, False, phase.value, message),
        (RECONCILING, True, reason, message),
        (STALLED, False, "AsExpected", ""),
    ]


def store_conditions(
    conditions: Sequence[Mapping[str, Any]],
    uri: str,
    error: str | None,
    generation: int | None,
) -> list[dict[str, Any]] | None:
    """``Degraded``: True (``StoreUnavailable``, the store URI and ``error``) while the
    store cannot be read, False (``StoreAvailable``) once it can again; None when nothing
    changes (a store that never failed gets no ``Degraded`` condition at all)."""
    current = condition(conditions, DEGRADED)
    if error is None:
        if not current or current.get("status") != "True":
            return None
        message = f"the store {uri} can be read again"
        return set_condition(conditions, DEGRADED, False, STORE_AVAILABLE, message, generation)
    message = (
        f"cannot read the store {uri}: {error}; retrying at every poll (results written "
        "meanwhile are read once it is back)"
    )
    return set_condition(conditions, DEGRADED, True, STORE_UNAVAILABLE, message, generation)


def clear_spec_change(conditions: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The conditions without ``SpecChangeIgnored`` (a start applies the current spec)."""
    return [dict(c) for c in conditions if c.get("type") != SPEC_CHANGE_IGNORED]


def started_status(
    status: Mapping[str, Any], rayjob_name: str, action: str, generation: int | None
) -> dict[str, Any]:
    """Pending: the RayJob was ``action`` (created or adopted); the Ray cluster starts."""
    message = f"RayJob {rayjob_name} {action}; waiting for the Ray cluster"
    reason = "RayJobCreated" if action == "created" else "RayJobAdopted"
    conditions = clear_spec_change(status.get("conditions") or [])
    return {
        "phase": Phase.PENDING.value,
        "message": message,
        "conditions": phase_conditions(conditions, Phase.PENDING, reason, message, generation),
        "observedGeneration": generation,
        "rayJobName": rayjob_name,
        "startTime": status.get("startTime") or timestamp(),
        "completionTime": None,
    }


def phase_status(status: Mapping[str, Any], verdict: Verdict) -> dict[str, Any]:
    """Phase, message and conditions of ``verdict``; the completion time once finished."""
    generation = status.get("observedGeneration")
    message = scrub(verdict.message)  # it may quote the RayJob's (driver's) own message
    desired: dict[str, Any] = {
        "phase": verdict.phase.value,
        "message": message,
        "conditions": phase_conditions(
            status.get("conditions") or [], verdict.phase, verdict.reason, message, generation
        ),
    }  # fmt: skip
    if verdict.finished:
        desired["completionTime"] = status.get("completionTime") or timestamp()
    return desired


def generation_of(meta: Mapping[str, Any]) -> int | None:
    value = meta.get("generation")
    return int(value) if isinstance(value, int) else None


def apply_status(patch: kopf.Patch, current: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    """Patch only the status keys that change; returns whether anything changed.

    Keys present now but absent from ``desired`` are left alone (merge-patch semantics):
    callers that want a key removed set it to None.
    """
    changed = False
    for key, value in desired.items():
        if current.get(key) != value:
            patch.status[key] = value
            changed = True
    return changed


def post_transition(
    body: kopf.Body, old: Phase | None, new: Phase, message: str, reason: str | None = None
) -> None:
    """A Kubernetes Event for a phase transition (Warning for Failed)."""
    if old is new:
        return
    text = scrub(f"{old.value if old else 'New'} -> {new.value}: {message}")
    if new is Phase.FAILED:
        kopf.warn(body, reason=reason or "Failed", message=text)
    else:
        kopf.info(body, reason=reason or new.value, message=text)
