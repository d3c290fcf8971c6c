"""The kopf handlers of a kind: one wrapper, one registration, and the steps both share.

:func:`register_kind` attaches one kind's handlers (:class:`~tunix_rt.controller.kind.Kind`)
to a registry. Every handler runs through :func:`handler`: the
:class:`~tunix_rt.controller.runtime.Runtime` from ``memo``, one step at a time per
object, the handler's duration in the ``tunixrt_reconcile_duration_seconds`` histogram,
the status as a plain dict, all in one :class:`~tunix_rt.controller.call.Call`. Besides
the kind's own ``start`` and ``follow``: the eager start (:func:`eager_start`), the
spec-change handler (:func:`spec_changed`) and the delete handler
(:func:`delete_rayjob`: removes the RayJob, ours only; the store keeps everything).
Handler ids are the historic ``start_sweep``, ``follow_sweep``, ``sweep_spec_changed``,
``delete_sweep`` (and the same for ``rehearsal``): kopf keeps handler progress in
annotations under those ids.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import Any

import kopf

from tunix_rt.api.common import GROUP, VERSION
from tunix_rt.api.names import child_name
from tunix_rt.contract import reasons
from tunix_rt.controller.call import Call, make_call, status_dict
from tunix_rt.controller.eager import EAGER_KEY, Eager
from tunix_rt.controller.kind import Kind, Step
from tunix_rt.controller.status import failed_for_invalid_spec
from tunix_rt.controller.status_writer import replace_status, write_spec_ignored
from tunix_rt.kuberay.client import ForeignObjectError, KubeApiError


def handler(kind: Kind, op: str, step: Step) -> Callable[..., Awaitable[None]]:
    """A kopf handler running ``step``: runtime from memo, timed, status as a plain dict
    (a ``spec`` or ``status`` that is not an object taken as empty:
    :func:`~tunix_rt.controller.call.shape_problem`, :func:`~tunix_rt.controller.call.status_dict`,
    :func:`~tunix_rt.controller.status_writer.replace_status`)."""

    async def handle(
        body: kopf.Body,
        patch: kopf.Patch,
        memo: kopf.Memo,
        logger: kopf.Logger,
        **_: Any,
    ) -> None:
        call = make_call(kind.key, kind.spec_fields, body, patch, memo, logger)
        async with call.runtime.lock_for(kind.key, call.namespace, call.name):
            with call.runtime.metrics.time(kind.key, op):
                await step(call)
        if not isinstance(body.get("status") or {}, Mapping):
            replace_status(patch)

    handle.__name__ = handle.__qualname__ = f"{op}_{kind.key}"
    return handle


def register_kind(
    registry: kopf.OperatorRegistry, kind: Kind, poll_seconds: float, resync_seconds: float
) -> None:
    """Attach one kind's handlers to a registry: start, spec change, delete; follow by a
    poll timer while it runs and by a slow resync timer while it is pending (its RayJob's
    events wake it then: :func:`tunix_rt.controller.wake.register`)."""
    on: dict[str, Any] = {"registry": registry, "backoff": 10}
    start = handler(kind, "start", kind.start)
    kopf.on.resume(GROUP, VERSION, kind.plural, id=f"start_{kind.key}", **on)(start)
    kopf.on.create(GROUP, VERSION, kind.plural, id=f"start_{kind.key}", **on)(start)
    if kind.eager is not None:
        kopf.on.event(GROUP, VERSION, kind.plural, registry=registry, id=f"eager_{kind.key}")(
            eager_start(kind)
        )
    kopf.on.update(GROUP, VERSION, kind.plural, field="spec", id=f"{kind.key}_spec_changed", **on)(
        handler(kind, "update", partial(spec_changed, kind))
    )

    def following(body: kopf.Body, **_: Any) -> bool:
        return kind.following(status_dict(body))

    def pending(body: kopf.Body, **_: Any) -> bool:
        return kind.pending(status_dict(body))

    follow = handler(kind, "follow", kind.follow)
    kopf.timer(
        GROUP,
        VERSION,
        kind.plural,
        registry=registry,
        id=f"follow_{kind.key}",
        interval=poll_seconds,
        backoff=max(poll_seconds, 1.0),
        when=following,
    )(follow)
    kopf.timer(
        GROUP,
        VERSION,
        kind.plural,
        registry=registry,
        id=f"resync_{kind.key}",
        interval=resync_seconds,
        initial_delay=resync_seconds,
        backoff=max(poll_seconds, 1.0),
        when=pending,
    )(follow)
    kopf.on.delete(GROUP, VERSION, kind.plural, id=f"delete_{kind.key}", **on)(
        handler(kind, "delete", partial(delete_rayjob, kind))
    )


def eager_start(kind: Kind) -> Callable[..., Awaitable[None]]:
    """on.event: create a new object's RayJob on its first watch event.

    kopf spends an object's first cycle adding its finalizer and runs the create handler
    in the next; with hundreds of new objects those cycles interleave, so the last RayJob
    waited for every object's two cycles (benchmarks/README.md, "Operator"). Here the
    RayJob is created in the first cycle; ``start`` then takes it
    (:func:`~tunix_rt.controller.eager.take_eager`, no
    API call) and does the rest (status, Events). Whatever goes wrong here
    (an invalid spec, API trouble) is left to ``start``, which retries and says why.
    """

    async def eager(
        event: kopf.RawEvent,
        body: kopf.Body,
        patch: kopf.Patch,
        memo: kopf.Memo,
        logger: kopf.Logger,
        **_: Any,
    ) -> None:
        if kind.eager is None or event.get("type") == "DELETED":
            return
        status = body.get("status")
        if isinstance(status, Mapping) and (status.get("phase") or status.get("rayJobName")):
            return  # started (or refused) already: the usual case, decided cheaply
        if body.meta.get("deletionTimestamp"):
            return
        call = make_call(kind.key, kind.spec_fields, body, patch, memo, logger)
        if call.spec_problem:
            return
        uid = call.meta.get("uid")
        seen = call.memo.get(EAGER_KEY)
        if isinstance(seen, Eager) and (seen.uid, seen.generation) == (uid, call.generation):
            return  # tried for this version already
        async with call.runtime.lock_for(kind.key, call.namespace, call.name):
            with call.runtime.metrics.time(kind.key, "eager"):
                manifest = kind.eager(call)
                name = str(manifest["metadata"]["name"]) if manifest else None
                ensured = None
                if manifest is not None:
                    try:
                        ensured = await call.runtime.rayjobs.ensure(manifest, uid)
                    except (KubeApiError, ForeignObjectError) as exc:
                        logger.debug("RayJob %s left to the start handler: %s", name, exc)
                call.memo[EAGER_KEY] = Eager(uid, call.generation, name, ensured)

    eager.__name__ = eager.__qualname__ = f"eager_start_{kind.key}"
    return eager


async def spec_changed(kind: Kind, call: Call) -> None:
    """update of spec: start again an invalid (or not yet started) object; otherwise the
    change is not applied, visibly (condition ``SpecChangeIgnored`` and a Warning)."""
    if failed_for_invalid_spec(call.status) or kind.restarts(call.status):
        await kind.start(call)
    else:
        write_spec_ignored(call, kind.name, call.generation)


async def delete_rayjob(kind: Kind, call: Call) -> None:
    """delete: remove the object's RayJob (ours only); what is in the store stays."""
    rayjob_name = str(call.status.get("rayJobName") or child_name(kind.key, call.name))
    try:
        deleted = await call.runtime.rayjobs.delete_owned(
            call.namespace, rayjob_name, call.meta.get("uid"), {kind.rayjob_label: call.name}
        )
    except KubeApiError as exc:
        raise kopf.TemporaryError(f"deleting RayJob {rayjob_name}: {exc}", delay=10) from exc
    call.runtime.metrics.forget(kind.key, call.namespace, call.name)
    call.runtime.forget(kind.key, call.namespace, call.name)  # ends its follow steps' cache
    if deleted:
        message = f"deleted RayJob {rayjob_name}; {kind.kept} stay in the store"
        call.logger.info(message)
        with contextlib.suppress(Exception):
            kopf.info(call.body, reason=reasons.RAYJOB_DELETED, message=message)
