"""The one place the controller writes an object's status, and posts the Events it says.

The rules (:mod:`~tunix_rt.controller.status`, ``sweep_status``, ``rehearsal_status``)
compute the desired status apart from any I/O, like Katib's ``status_util``; here
:func:`write` turns it into the patch (only the keys that change) and applies it to
kopf's patch, then posts the Events. Each write a reconcile step makes is one function
below, named for what happened: :func:`write_started`, :func:`write_verdict`,
:func:`write_failed`, :func:`write_waiting`, :func:`write_spec_ignored`,
:func:`write_store_health`. kopf sends a handler's patch; a step run on a RayJob event
sends its own (:func:`send`); a status that is not an object is replaced whole
(:func:`replace_status`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import kopf

from tunix_rt.api.common import Phase
from tunix_rt.contract import reasons
from tunix_rt.contract.phases import Verdict
from tunix_rt.controller.rehearsal_status import waiting_status
from tunix_rt.controller.status import (
    Notice,
    failed_notice,
    failed_status,
    phase_of,
    spec_ignored_message,
    spec_ignored_status,
    started_status,
    store_conditions,
    store_notice,
    transition_notice,
)
from tunix_rt.kuberay.client import KubeClient, ResourceRef


class Target(Protocol):
    """What a write needs of a handler call (:class:`~tunix_rt.controller.call.Call`)."""

    @property
    def body(self) -> kopf.Body: ...

    @property
    def patch(self) -> kopf.Patch: ...

    @property
    def status(self) -> dict[str, Any]: ...


def changes(current: Mapping[str, Any], desired: Mapping[str, Any]) -> dict[str, Any]:
    """The keys of ``desired`` whose value differs from ``current``: the status patch.

    Keys present now but absent from ``desired`` are left alone (merge-patch semantics):
    a rule that wants a key removed sets it to None."""
    return {key: value for key, value in desired.items() if current.get(key) != value}


def write(
    target: Target,
    desired: Mapping[str, Any],
    notices: Iterable[Notice | None] = (),
    *,
    news_only: bool = False,
) -> bool:
    """Patch the status keys that change (``target.status`` follows, so a later write in
    the same step builds on this one), then post ``notices``; ``news_only``: only when
    something changed. Returns whether anything changed."""
    patch = changes(target.status, desired)
    for key, value in patch.items():
        target.patch.status[key] = value
    target.status.update(patch)
    if patch or not news_only:
        for notice in notices:
            if notice is not None:
                post(target.body, notice)
    return bool(patch)


def post(body: kopf.Body, notice: Notice) -> None:
    """A Kubernetes Event on the object (Warning or Normal)."""
    event = kopf.warn if notice.warning else kopf.info
    event(body, reason=notice.reason, message=notice.message)


# ----------------------------------------------------------------------------- the writes


def write_started(
    target: Target,
    rayjob_name: str,
    action: str,
    generation: int | None,
    fields: Mapping[str, Any],
) -> None:
    """Pending: the RayJob was ``action`` (created or adopted); ``fields`` added."""
    desired = started_status(target.status, rayjob_name, action, generation)
    desired.update(fields)
    notice = transition_notice(phase_of(target.status), Phase.PENDING, desired["message"])
    write(target, desired, [notice])


def write_verdict(target: Target, verdict: Verdict, desired: Mapping[str, Any]) -> None:
    """A follow step's ``desired`` status for ``verdict``, and the transition Event."""
    reason = verdict.reason if verdict.phase is Phase.FAILED else None
    old = phase_of(target.status)
    write(target, desired, [transition_notice(old, verdict.phase, verdict.message, reason)])


def write_failed(target: Target, reason: str, message: str, generation: int | None) -> None:
    """Failed with ``reason``, and a Warning Event (again when it failed already)."""
    notice = failed_notice(target.status, reason, message)
    write(target, failed_status(target.status, reason, message, generation), [notice])


def write_waiting(
    target: Target, message: str, generation: int | None, source_sweep: str | None
) -> None:
    """Pending while the source Sweep has not succeeded; an Event when the reason is new."""
    status = target.status
    news = phase_of(status) is not Phase.PENDING or status.get("message") != message
    desired = waiting_status(status, message, generation, source_sweep)
    notice = Notice(reasons.WAITING_FOR_SWEEP, message) if news else None
    write(target, desired, [notice], news_only=True)


def write_spec_ignored(target: Target, kind: str, generation: int | None) -> None:
    """A spec edit after the start is not applied: condition and Warning say so."""
    message = spec_ignored_message(target.status, kind, generation)
    notice = Notice(reasons.SPEC_CHANGE_IGNORED, message, warning=True)
    write(target, spec_ignored_status(target.status, message, generation), [notice])


def write_store_health(target: Target, uri: str, error: str | None) -> None:
    """Condition ``Degraded`` while the store cannot be read, and an Event when it flips."""
    conditions = target.status.get("conditions") or []
    generation = target.status.get("observedGeneration")
    updated = store_conditions(conditions, uri, error, generation)
    if updated is not None:
        notice = store_notice(conditions, updated)
        write(target, {"conditions": updated}, [notice], news_only=True)


# ----------------------------------------------------------------------------- sending


def replace_status(patch: kopf.Patch) -> None:
    """Write the status patch as a whole new status: a merge patch cannot set fields of a
    status that is not an object (the call took it as empty)."""
    fields = patch.pop("status", None)
    if not fields:
        return
    status = {k: v for k, v in dict(fields).items() if v is not None}

    def replace(body: kopf.RawBody) -> None:
        body["status"] = status

    patch.fns.append(replace)


async def send(
    kube: KubeClient, ref: ResourceRef, namespace: str, name: str, patch: kopf.Patch
) -> None:
    """Send a step's status patch itself (a step kopf did not run: a RayJob event)."""
    if patch.get("status"):
        await kube.patch_status(ref, namespace, name, patch["status"])
