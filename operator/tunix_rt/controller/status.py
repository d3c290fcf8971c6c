"""The status rules both kinds share: conditions, phases, messages, and their Events.

Pure functions from (current status, what happened) to the desired status keys and the
Events (:class:`Notice`) that say so; :mod:`~tunix_rt.controller.status_writer` patches
only the keys that change. The rules: :func:`started_status` (the RayJob was created or
adopted: Pending), :func:`phase_status` (phase, message, conditions and completion time
of a verdict), :func:`failed_status`, :func:`spec_ignored_status`,
:func:`store_conditions`, :func:`transition_notice`. Each kind's own fields are in
``sweep_status`` and ``rehearsal_status``.

Conditions (``Ready``, ``Progressing``, ``Failed``, ``Succeeded``, kstatus's
``Reconciling`` / ``Stalled``, and ``SpecChangeIgnored`` / ``Degraded`` when they apply)
follow the Kubernetes conventions: ``lastTransitionTime``
moves only when a condition's status flips; ``observedGeneration`` is the generation it
was computed for.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tunix_rt.api.common import TERMINAL_PHASES, Condition, Phase
from tunix_rt.api.placement import UNSCHEDULABLE
from tunix_rt.contract import reasons
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
SPEC_CHANGE_IGNORED = reasons.SPEC_CHANGE_IGNORED
"""The condition's type is its reason."""
DEGRADED = "Degraded"


@dataclass(frozen=True)
class Notice:
    """A Kubernetes Event about the object that a status write posts."""

    reason: str
    message: str
    warning: bool = False


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
    refused = (reasons.INVALID_SPEC, UNSCHEDULABLE)
    return bool(cond and cond.get("status") == "True" and cond.get("reason") in refused)


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
            (PROGRESSING, False, reasons.FINISHED, message),
            (FAILED, False, reasons.AS_EXPECTED, ""),
            (SUCCEEDED, True, reason, message),
            (RECONCILING, False, reasons.FINISHED, message),
            (STALLED, False, reasons.AS_EXPECTED, ""),
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
        (FAILED, False, reasons.AS_EXPECTED, ""),
        (SUCCEEDED, False, phase.value, message),
        (RECONCILING, True, reason, message),
        (STALLED, False, reasons.AS_EXPECTED, ""),
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
        return set_condition(
            conditions, DEGRADED, False, reasons.STORE_AVAILABLE, message, generation
        )
    message = (
        f"cannot read the store {uri}: {error}; retrying at every poll (results written "
        "meanwhile are read once it is back)"
    )
    return set_condition(conditions, DEGRADED, True, reasons.STORE_UNAVAILABLE, message, generation)


def clear_spec_change(conditions: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The conditions without ``SpecChangeIgnored`` (a start applies the current spec)."""
    return [dict(c) for c in conditions if c.get("type") != SPEC_CHANGE_IGNORED]


def started_status(
    status: Mapping[str, Any], rayjob_name: str, action: str, generation: int | None
) -> dict[str, Any]:
    """Pending: the RayJob was ``action`` (created or adopted); the Ray cluster starts."""
    message = f"RayJob {rayjob_name} {action}; waiting for the Ray cluster"
    reason = reasons.RAYJOB_CREATED if action == "created" else reasons.RAYJOB_ADOPTED
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


def failed_status(
    status: Mapping[str, Any], reason: str, message: str, generation: int | None
) -> dict[str, Any]:
    """Phase Failed with ``reason``: Ready/Progressing/Failed conditions, completion time."""
    conds = phase_conditions(
        status.get("conditions") or [], Phase.FAILED, reason, message, generation
    )
    return {
        "phase": Phase.FAILED.value,
        "message": message,
        "conditions": conds,
        "observedGeneration": generation,
        "completionTime": status.get("completionTime") or timestamp(),
    }


def failed_notice(status: Mapping[str, Any], reason: str, message: str) -> Notice | None:
    """The Warning of a failure: the transition, or ``reason`` again when already Failed."""
    old = phase_of(status)
    if old is Phase.FAILED:
        return Notice(reason, message, warning=True)
    return transition_notice(old, Phase.FAILED, message, reason)


def spec_ignored_message(status: Mapping[str, Any], kind: str, generation: int | None) -> str:
    """The documented answer to a spec edit after a run started: what keeps running."""
    phase = phase_of(status) or Phase.PENDING
    if phase in (Phase.SUCCEEDED, Phase.FAILED):
        what = f"the {kind} has finished ({phase.value}); its results stay as they are"
    else:
        what = f"the {kind} is {phase.value}; its RayJob keeps the spec it started with"
    return (
        f"spec changed (generation {generation}) but {what}. To run the new spec, create a "
        f"new {kind} (or delete this one and apply it again)."
    )


def spec_ignored_status(
    status: Mapping[str, Any], message: str, generation: int | None
) -> dict[str, Any]:
    """Condition ``SpecChangeIgnored=True`` saying ``message``, for ``generation``."""
    conds = set_condition(
        status.get("conditions") or [],
        SPEC_CHANGE_IGNORED,
        True,
        SPEC_CHANGE_IGNORED,
        message,
        generation,
    )
    return {"conditions": conds, "observedGeneration": generation}


def store_notice(
    before: Sequence[Mapping[str, Any]], after: Sequence[Mapping[str, Any]]
) -> Notice | None:
    """The Event of a ``Degraded`` condition that flipped (a Warning when it became True)."""
    was = (condition(before, DEGRADED) or {}).get("status")
    now = condition(after, DEGRADED) or {}
    if now.get("status") == was:
        return None
    warning = now.get("status") == "True"
    return Notice(str(now.get("reason")), str(now.get("message")), warning)


def transition_notice(
    old: Phase | None, new: Phase, message: str, reason: str | None = None
) -> Notice | None:
    """The Event of a phase transition (a Warning for Failed); None when the phase stays."""
    if old is new:
        return None
    text = scrub(f"{old.value if old else 'New'} -> {new.value}: {message}")
    if new is Phase.FAILED:
        return Notice(reason or reasons.FAILED, text, warning=True)
    return Notice(reason or new.value, text)


def generation_of(meta: Mapping[str, Any]) -> int | None:
    value = meta.get("generation")
    return int(value) if isinstance(value, int) else None
