"""A pending object followed by its RayJob's watch events instead of a poll timer.

While a Sweep or Rehearsal is Pending (its RayJob exists, the Ray cluster is starting or
queued), nothing the driver writes to the store can change: only the RayJob can. So
kopf watches RayJobs (ours: label ``app.kubernetes.io/managed-by``) and, when one's
status changes in a way the phase rules read (:func:`signature`), runs the parent's
follow step (:func:`wake`) with the parent read afresh. A Running object is polled by
its timer (trials change in the store, which sends no events); a pending one also has a
slow resync timer (``resync_seconds``), in case an event was missed.

Measured (benchmarks/README.md): polling every pending Sweep every ``poll_seconds`` cost
~0.5 operator CPU-s per Sweep-hour; waiting for events costs nothing while nothing
changes.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import kopf

from tunix_rt.api.common import GROUP, VERSION
from tunix_rt.controller.call import Call
from tunix_rt.controller.kind import Kind
from tunix_rt.controller.runtime import Runtime, runtime_of
from tunix_rt.controller.status_writer import send
from tunix_rt.kuberay.client import KubeApiError, ResourceRef
from tunix_rt.kuberay.metadata import MANAGED_BY, MANAGED_BY_LABEL

log = logging.getLogger(__name__)

Signature = tuple[Any, ...]
EMPTY: Signature = (None, None, None, None, False)
"""A RayJob nobody has given a status yet (just created): nothing to learn from it."""


def signature(rayjob: Mapping[str, Any]) -> Signature:
    """What the phase rules (:mod:`tunix_rt.contract.phases`) read of a RayJob."""
    status = rayjob.get("status") or {}
    spec = rayjob.get("spec") or {}
    return (
        status.get("jobStatus"),
        status.get("jobDeploymentStatus"),
        status.get("reason"),
        status.get("message"),
        bool(spec.get("suspend")),
    )


def parent_of(rayjob: Mapping[str, Any]) -> tuple[str, str] | None:
    """(kind, name) of the tunix-rt object that controls the RayJob, from its
    ownerReference; None for one without (the resync timer still follows its parent)."""
    for ref in (rayjob.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller") and str(ref.get("apiVersion", "")).startswith(f"{GROUP}/"):
            return str(ref.get("kind")), str(ref.get("name"))
    return None


class Woken(enum.Enum):
    """What a wake did: what the watch handler does next depends on it."""

    RAN = "ran"
    NOTHING_TO_FOLLOW = "nothing to follow"  # running (polled), finished, deleted, invalid
    NOT_STARTED = "not started"  # its start handler has not written a status yet
    FAILED = "failed"  # API trouble: logged, the next event or the resync timer retries


STARTING_RETRIES = (0.25, 0.5, 1.0, 2.0, 4.0)
"""Seconds between wakes of a parent whose start has not written its status yet: a RayJob
event can overtake that status patch (KubeRay answers fast, the API server is slow under
load), and the next event may never come."""


async def wake(
    kind: Kind,
    runtime: Runtime,
    namespace: str,
    name: str,
    rayjob: Mapping[str, Any] | None = None,
) -> Woken:
    """Run ``kind.follow`` on the object, read afresh, if it is pending (a running one is
    polled; a finished or deleted one has nothing to follow) with ``rayjob`` as the event
    delivered it (None: read it); patch its status as kopf would."""
    ref = ResourceRef(GROUP, VERSION, kind.plural)
    async with runtime.lock_for(kind.key, namespace, name):
        try:
            obj = await runtime.kube.get(ref, namespace, name)
        except KubeApiError as exc:
            log.warning("cannot read %s %s/%s: %s", kind.name, namespace, name, exc)
            return Woken.FAILED
        status = (obj or {}).get("status") or {}
        if obj is not None and isinstance(status, Mapping) and not status.get("phase"):
            return Woken.NOT_STARTED
        call = _call(kind, runtime, obj)
        if call is None:
            return Woken.NOTHING_TO_FOLLOW
        call.rayjob = rayjob
        try:
            with runtime.metrics.time(kind.key, "wake"):
                await kind.follow(call)
            await send(runtime.kube, ref, namespace, name, call.patch)
        except (kopf.TemporaryError, KubeApiError) as exc:
            log.warning("following %s %s/%s: %s (retried)", kind.name, namespace, name, exc)
            return Woken.FAILED
    return Woken.RAN


async def wake_when_started(
    kind: Kind, runtime: Runtime, namespace: str, name: str, rayjob: Mapping[str, Any]
) -> Woken:
    """:func:`wake`, again after short pauses while the parent has not been started."""
    woken = await wake(kind, runtime, namespace, name, rayjob)
    for delay in STARTING_RETRIES:
        if woken is not Woken.NOT_STARTED:
            break
        await asyncio.sleep(delay)
        woken = await wake(kind, runtime, namespace, name, rayjob)
    return woken


def _call(kind: Kind, runtime: Runtime, obj: Mapping[str, Any] | None) -> Call | None:
    """The step's call on a pending object; None when there is nothing to follow (gone,
    being deleted, not pending, or a status or spec that is not an object: the timers
    handle those, see :func:`tunix_rt.controller.handlers.handler`)."""
    if obj is None:
        return None
    status, spec = obj.get("status") or {}, obj.get("spec")
    meta = obj.get("metadata") or {}
    if meta.get("deletionTimestamp") or not isinstance(status, Mapping):
        return None
    if not isinstance(spec, Mapping) or not kind.pending(status):
        return None
    body = kopf.Body(kopf.RawBody(**obj))  # type: ignore[typeddict-item]
    memo = runtime.memo_for(kind.key, str(meta.get("namespace")), str(meta.get("name")))
    return Call(runtime, body, body.meta, body.spec, dict(status), kopf.Patch(), memo, log)


def register(registry: kopf.OperatorRegistry, kinds: Sequence[Kind]) -> None:
    """Watch our RayJobs; wake the parent when what the phase rules read changes (and
    when the RayJob is deleted)."""
    by_name = {kind.name: kind for kind in kinds}
    seen: dict[tuple[str, str], Signature] = {}

    @kopf.on.event(
        "ray.io", "v1", "rayjobs", labels={MANAGED_BY_LABEL: MANAGED_BY}, registry=registry
    )
    async def rayjob_changed(
        event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, **_: Any
    ) -> None:
        parent = parent_of(body)
        kind = by_name.get(parent[0]) if parent else None
        if parent is None or kind is None:
            return
        namespace = str(body.metadata.namespace)
        key = (namespace, str(body.metadata.name))
        if event.get("type") == "DELETED":
            seen.pop(key, None)
            await wake(kind, runtime_of(memo), namespace, parent[1])
            return
        now = signature(body)
        if now == EMPTY or seen.get(key) == now:
            return
        woken = await wake_when_started(kind, runtime_of(memo), namespace, parent[1], body)
        if woken in (Woken.RAN, Woken.NOTHING_TO_FOLLOW):
            seen[key] = now  # else the same status, delivered again, wakes it again
