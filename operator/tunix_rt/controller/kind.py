"""The controller skeleton both kinds share: one handler wrapper, one registration.

A kind (:data:`~tunix_rt.controller.sweep.SWEEP`,
:data:`~tunix_rt.controller.rehearsal.REHEARSAL`) supplies two reconcile steps and two
predicates on its status:

* ``start`` (create / resume): validate, create or adopt the RayJob;
* ``follow`` (the timer, every ``poll_seconds`` while ``following(status)``: by default
  while it runs, i.e. has a RayJob, has not finished and is past Pending; while
  ``pending(status)`` -- it has a RayJob that has not started, so nothing in the store
  can change -- the step runs when the RayJob changes (:mod:`~tunix_rt.controller.wake`:
  kopf watches RayJobs) and, as a safety net, every ``resync_seconds``);
* ``restarts(status)``: a spec change is applied by starting again (by default: the
  object never got a RayJob) instead of being ignored visibly (``SpecChangeIgnored``).

Everything else is here, the same for both kinds: the handler preamble (:func:`handler`:
the :class:`~tunix_rt.controller.runtime.Runtime` from ``memo``, the handler's duration
in the ``tunixrt_reconcile_duration_seconds`` histogram, the status as a plain dict, all
in one :class:`Call`), the registration (:func:`register_kind`), the spec-change handler
(:func:`spec_changed`), the delete handler (:func:`delete_rayjob`: removes the RayJob,
ours only; the store keeps everything), and the steps a start and a follow have in
common: refuse an invalid spec, create or adopt the RayJob and go Pending
(:meth:`Kind.reject_invalid`, :meth:`Kind.launch`), read the RayJob and the store
(:meth:`Call.read_rayjob`, :meth:`Call.read_store`: an unreachable store is a warning,
condition ``Degraded=True`` and a retry at the next poll), publish a verdict
(:meth:`Kind.publish`: status patch, transition Event, phase metric). Handler ids are
the historic ``start_sweep``, ``follow_sweep``, ``sweep_spec_changed``, ``delete_sweep``
(and the same for ``rehearsal``): kopf keeps handler progress in annotations under those
ids.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import kopf

from tunix_rt.api.common import GROUP, VERSION, Phase
from tunix_rt.api.names import child_name
from tunix_rt.contract.layout import Reader
from tunix_rt.contract.phases import Verdict
from tunix_rt.controller.runtime import (
    Runtime,
    ensure_rayjob,
    fail,
    get_rayjob,
    ignore_spec_change,
    nothing_to_start,
    plain,
    read_in_thread,
    runtime_of,
)
from tunix_rt.controller.status import (
    DEGRADED,
    INVALID_SPEC,
    apply_status,
    condition,
    failed_for_invalid_spec,
    generation_of,
    is_terminal,
    phase_of,
    post_transition,
    started_status,
    store_conditions,
)
from tunix_rt.kuberay.client import Ensured, ForeignObjectError, KubeApiError
from tunix_rt.storage import StoreError

T = TypeVar("T")


@dataclass
class Call:
    """One handler invocation: what kopf passed, with the status as a plain dict; and the
    reads a follow step makes (the RayJob, the store)."""

    runtime: Runtime
    body: kopf.Body
    meta: Mapping[str, Any]
    spec: Mapping[str, Any]
    status: dict[str, Any]
    patch: kopf.Patch
    memo: MutableMapping[str, Any]
    """The object's cache between steps (:meth:`Runtime.memo_for`)."""
    logger: kopf.Logger | logging.Logger
    spec_problem: str | None = None
    """Why ``spec`` cannot be read at all (a string, a list, null): then ``spec`` is
    empty and a start fails the object with reason ``InvalidSpec`` (:func:`shape_problem`)."""
    rayjob: Mapping[str, Any] | None = None
    """The RayJob as its watch event just delivered it (:mod:`~tunix_rt.controller.wake`):
    :meth:`read_rayjob` returns it instead of reading it again."""

    @property
    def namespace(self) -> str:
        return str(self.meta["namespace"])

    @property
    def name(self) -> str:
        return str(self.meta["name"])

    @property
    def generation(self) -> int | None:
        return generation_of(self.meta)

    async def read_rayjob(self, rayjob_name: str) -> dict[str, Any] | None:
        """The RayJob (None when it is gone); API trouble makes kopf retry."""
        if self.rayjob is not None and self.rayjob.get("metadata", {}).get("name") == rayjob_name:
            return dict(self.rayjob)
        return await get_rayjob(self.runtime, self.namespace, rayjob_name)

    async def read_store(
        self, files: Reader, read: Callable[[], T], what: str, problem: str
    ) -> T | None:
        """``read()`` off the event loop; None (and a warning) while the store is
        unreachable. Each unreadable file it skipped is logged with ``problem``."""
        try:
            out: T = await read_in_thread(read)
        except StoreError as exc:
            self.logger.warning("cannot read %s from %s: %s (retrying)", what, files.store.uri, exc)
            self.store_health(files.store.uri, str(exc) or type(exc).__name__)
            return None
        self.store_health(files.store.uri, None)
        for line in files.problems:
            self.logger.warning(problem, line)
        return out

    def store_health(self, uri: str, error: str | None) -> None:
        """Condition ``Degraded`` (:func:`~tunix_rt.controller.status.store_conditions`)
        and an Event when it flips; later status patches build on it."""
        conditions = self.status.get("conditions") or []
        generation = self.status.get("observedGeneration")
        updated = store_conditions(conditions, uri, error, generation)
        if updated is None or not apply_status(self.patch, self.status, {"conditions": updated}):
            return
        was = (condition(conditions, DEGRADED) or {}).get("status")
        now = condition(updated, DEGRADED) or {}
        self.status["conditions"] = updated
        if now.get("status") != was:
            post = kopf.warn if error is not None else kopf.info
            post(self.body, reason=str(now.get("reason")), message=str(now.get("message")))

    def output_wait(self, key: str, waiting: bool) -> float:
        """Seconds spent waiting for a succeeded job's output (first seen: ``memo[key]``)."""
        if not waiting:
            return 0.0
        first: float = self.memo.setdefault(key, time.monotonic())
        return time.monotonic() - first


Step = Callable[[Call], Awaitable[None]]
StatusTest = Callable[[Mapping[str, Any]], bool]


def started_and_running(status: Mapping[str, Any]) -> bool:
    """Polled every ``poll_seconds``: its trials or evidence may change in the store."""
    return started(status) and phase_of(status) not in (None, Phase.PENDING)


def started_and_pending(status: Mapping[str, Any]) -> bool:
    """Woken by its RayJob's events (and resynced slowly): the run has not started."""
    return started(status) and phase_of(status) in (None, Phase.PENDING)


def started(status: Mapping[str, Any]) -> bool:
    return bool(status.get("rayJobName")) and not is_terminal(status)


def never_started(status: Mapping[str, Any]) -> bool:
    return not status.get("rayJobName")


@dataclass(frozen=True)
class Kind:
    """What differs between a Sweep and a Rehearsal controller, and the steps of a start
    and a follow that are the same for both."""

    name: str
    """The kind (``Sweep``); lower-cased it labels metrics and names the RayJob."""
    rayjob_label: str
    """Label on the RayJob naming its parent (checked before deleting it)."""
    kept: str
    """What stays in the store when the object is deleted (said in the Event)."""
    spec_fields: str
    """A few of the spec's fields, for the message about a spec that is not an object."""
    start: Step
    follow: Step
    following: StatusTest = started_and_running
    """The poll timer runs (default: it has a RayJob, runs and has not finished)."""
    pending: StatusTest = started_and_pending
    """RayJob events wake it, the resync timer runs (default: it has a RayJob that has
    not started)."""
    restarts: StatusTest = never_started
    """A spec change starts it again (default: it never got a RayJob)."""
    eager: Callable[[Call], Mapping[str, Any] | None] | None = None
    """The RayJob a new object gets when its spec can run (None: ``start`` will say why),
    created on the object's first watch event (:func:`eager_start`); None: no eager
    start, the RayJob waits for ``start``."""

    @property
    def key(self) -> str:
        return self.name.lower()

    @property
    def plural(self) -> str:
        return f"{self.key}s"

    def observe(self, call: Call, phase: Phase | str) -> None:
        """The object's phase in the ``tunixrt_<kind>s{phase}`` gauge."""
        value = phase.value if isinstance(phase, Phase) else phase
        call.runtime.metrics.observe_phase(self.key, call.namespace, call.name, value)

    # start steps -------------------------------------------------------------------
    async def already_started(self, call: Call) -> bool:
        """Nothing to start: finished, or started before an operator restart (adopted); or
        nothing that can start: a ``spec`` that is not an object fails with reason
        ``InvalidSpec`` (once; a fixed spec starts it, as for any invalid spec)."""
        if await nothing_to_start(call.runtime, call.body, call.status, self.key):
            return True
        if call.spec_problem is not None:
            self.reject_invalid(call, call.spec_problem)
            return True
        return False

    def give_up(self, call: Call, reason: str, message: str) -> None:
        """Failed for good, with ``reason``; a Warning Event."""
        fail(
            call.body,
            call.patch,
            call.status,
            reason=reason,
            message=message,
            generation=call.generation,
        )
        self.observe(call, Phase.FAILED)

    def reject_invalid(self, call: Call, message: str, reason: str = INVALID_SPEC) -> None:
        """Failed with reason ``InvalidSpec`` (or ``Unschedulable``), said once per
        distinct message."""
        call.logger.warning("invalid %s spec: %s", self.name, message)
        if failed_for_invalid_spec(call.status) and call.status.get("message") == message:
            self.observe(call, Phase.FAILED)
        else:
            self.give_up(call, reason, message)

    async def launch(
        self, call: Call, manifest: Mapping[str, Any], fields: Mapping[str, Any]
    ) -> None:
        """Create or adopt the RayJob, then Pending with ``fields`` added to the status."""
        ensured = await ensure_rayjob(
            call.runtime,
            call.body,
            call.patch,
            call.status,
            manifest,
            self.key,
            call.generation,
            created=take_eager(call, str(manifest["metadata"]["name"])),
        )
        if ensured is None:
            self.observe(call, Phase.FAILED)
            return
        rayjob_name = str(manifest["metadata"]["name"])
        desired = started_status(call.status, rayjob_name, ensured.action, call.generation)
        desired.update(fields)
        apply_status(call.patch, call.status, desired)
        post_transition(call.body, phase_of(call.status), Phase.PENDING, desired["message"])
        self.observe(call, Phase.PENDING)

    # follow steps ------------------------------------------------------------------
    def publish(self, call: Call, verdict: Verdict, desired: Mapping[str, Any]) -> None:
        """Patch the status, post the transition Event, record the phase."""
        old = phase_of(call.status)
        apply_status(call.patch, call.status, desired)
        failed = verdict.phase is Phase.FAILED
        post_transition(
            call.body, old, verdict.phase, verdict.message, verdict.reason if failed else None
        )
        self.observe(call, verdict.phase)
        if verdict.finished:
            call.runtime.forget(self.key, call.namespace, call.name)


# ----------------------------------------------------------------------------- shapes


_TYPE_NAMES: dict[type, str] = {
    str: "a string",
    list: "a list",
    bool: "a boolean",
    int: "a number",
    float: "a number",
}


def shape_problem(spec: object, fields: str) -> str | None:
    """Why ``spec`` is not an object, in the words of an InvalidSpec message; None when it
    is one (or absent: then the model names the missing fields)."""
    if spec is _ABSENT or isinstance(spec, Mapping):
        return None
    if spec is None:
        got = "null"
    else:
        shown = repr(spec)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        got = f"{_TYPE_NAMES.get(type(spec), type(spec).__name__)}: {shown}"
    return f"spec: expected an object (a mapping of fields such as {fields}), got {got}"


class _Absent:
    pass


_ABSENT: Any = _Absent()


def status_dict(
    body: Mapping[str, Any], logger: kopf.Logger | logging.Logger | None = None
) -> dict[str, Any]:
    """The status as a plain dict; one that is not an object (only a client that bypasses
    the status subresource's schema can write that) counts as empty, and the next status
    patch replaces it."""
    status = body.get("status", _ABSENT)
    if status is _ABSENT or status is None:
        return {}
    if not isinstance(status, Mapping):
        if logger is not None:
            logger.warning("status is not an object (%.60r); taking it as empty", status)
        return {}
    return plain(status)


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


# ----------------------------------------------------------------------------- wiring


def make_call(
    kind: Kind,
    body: kopf.Body,
    patch: kopf.Patch,
    memo: kopf.Memo,
    logger: kopf.Logger | logging.Logger,
) -> Call:
    """The :class:`Call` of a handler (a ``spec`` that is not an object taken as empty,
    with the problem said in ``spec_problem``)."""
    runtime = runtime_of(memo)
    problem = shape_problem(body.get("spec", _ABSENT), kind.spec_fields)
    meta = body.meta
    namespace, name = str(meta.get("namespace")), str(meta.get("name"))
    return Call(
        runtime,
        body,
        meta,
        {} if problem else body.spec,
        status_dict(body, logger),
        patch,
        runtime.memo_for(kind.key, namespace, name),
        logger,
        spec_problem=problem,
    )


def handler(kind: Kind, op: str, step: Step) -> Callable[..., Awaitable[None]]:
    """A kopf handler running ``step``: runtime from memo, timed, status as a plain dict
    (a ``spec`` or ``status`` that is not an object taken as empty: :func:`shape_problem`,
    :func:`status_dict`, :func:`replace_status`)."""

    async def handle(
        body: kopf.Body,
        patch: kopf.Patch,
        memo: kopf.Memo,
        logger: kopf.Logger,
        **_: Any,
    ) -> None:
        call = make_call(kind, body, patch, memo, logger)
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


# ----------------------------------------------------------------------------- eager


EAGER_KEY = "tunixrt_eager"


@dataclass(frozen=True)
class Eager:
    """What the eager start did for one version (uid, generation) of one object."""

    uid: str | None
    generation: int | None
    rayjob_name: str | None
    ensured: Ensured | None
    """None: no RayJob (the spec cannot run, or the API said no): ``start`` says why."""


def take_eager(call: Call, rayjob_name: str) -> Ensured | None:
    """The RayJob the eager start created or adopted for this very object and spec, once."""
    eager = call.memo.get(EAGER_KEY)
    if not isinstance(eager, Eager) or eager.ensured is None:
        return None
    if (eager.uid, eager.generation, eager.rayjob_name) != (
        call.meta.get("uid"),
        call.generation,
        rayjob_name,
    ):
        return None
    # Kept, without the RayJob, so that the eager step does not run again for this version:
    # kopf writes a handler's annotations and its status in two patches, and the event of
    # the first still shows no status.
    call.memo[EAGER_KEY] = Eager(eager.uid, eager.generation, rayjob_name, None)
    return eager.ensured


def eager_start(kind: Kind) -> Callable[..., Awaitable[None]]:
    """on.event: create a new object's RayJob on its first watch event.

    kopf spends an object's first cycle adding its finalizer and runs the create handler
    in the next; with hundreds of new objects those cycles interleave, so the last RayJob
    waited for every object's two cycles (benchmarks/README.md, "Operator"). Here the
    RayJob is created in the first cycle; ``start`` then takes it (:func:`take_eager`, no
    API call) and does the rest (status, Events) as before. Whatever goes wrong here
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
        call = make_call(kind, body, patch, memo, logger)
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
        ignore_spec_change(call.body, call.patch, call.status, kind.name, call.generation)


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
            kopf.info(call.body, reason="RayJobDeleted", message=message)
