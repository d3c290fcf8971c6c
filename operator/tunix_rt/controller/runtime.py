"""What every handler shares: the config, the API client, the stores, the metrics.

One :class:`Runtime` per operator process, handed to kopf as ``memo.runtime``; kopf
gives each object a shallow copy of that memo, so per-object caches live next to it.
Also the API-facing steps both kinds use: create or adopt a RayJob
(:func:`ensure_rayjob`), read one (:func:`get_rayjob`), and the create/resume prologue
(:func:`nothing_to_start`). The handlers themselves are in
:mod:`tunix_rt.controller.handlers`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import kopf

from tunix_rt.api.common import API_VERSION, Phase
from tunix_rt.contract import reasons
from tunix_rt.controller.config import OperatorConfig
from tunix_rt.controller.metrics import Metrics
from tunix_rt.controller.status import failed_for_invalid_spec, is_terminal
from tunix_rt.controller.status_writer import Target, write_failed
from tunix_rt.kuberay.client import (
    Ensured,
    ForeignObjectError,
    KubeApiError,
    KubeClient,
    RayJobClient,
)
from tunix_rt.kuberay.metadata import RAYJOB_KIND, Owner
from tunix_rt.storage import Store

log = logging.getLogger(__name__)
"""Not kopf's per-object logger: that one posts each record as an Event."""

ObjectKey = tuple[str, str, str]
"""(kind, namespace, name), the kind lower-cased."""


@dataclass
class Runtime:
    config: OperatorConfig
    metrics: Metrics = field(default_factory=Metrics)
    fixed_connection: kopf.ConnectionInfo | None = None
    """Use this API server instead of in-cluster / kubeconfig login (tests, dev)."""
    connection: kopf.ConnectionInfo | None = None
    """What the login handler found; the RayJob client follows it."""
    kube: KubeClient = field(init=False)
    rayjobs: RayJobClient = field(init=False)
    _stores: dict[str, Store] = field(default_factory=dict, init=False)
    _memos: dict[ObjectKey, dict[str, Any]] = field(default_factory=dict, init=False)
    _locks: dict[ObjectKey, asyncio.Lock] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self.kube = KubeClient(lambda: self.connection)
        self.rayjobs = RayJobClient(self.kube)

    def store(self, uri: str) -> Store:
        """A cached Store per URI (filesystem objects are reused between polls)."""
        if uri not in self._stores:
            self._stores[uri] = Store(uri)
        return self._stores[uri]

    def storage_for(self, spec: Mapping[str, Any], fallback: str) -> str:
        """The spec's storage, else the operator's default storage, else the model default."""
        explicit = spec.get("storage")
        if isinstance(explicit, str) and explicit:
            return explicit
        return self.config.default_storage or fallback

    def with_defaults(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        return self.config.with_defaults(spec)

    def memo_for(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        """One object's cache between its follow steps, whichever woke them (its timers or
        its RayJob's watch events: kopf's per-object memo is not shared with the latter)."""
        return self._memos.setdefault((kind, namespace, name), {})

    def lock_for(self, kind: str, namespace: str, name: str) -> asyncio.Lock:
        """One follow step at a time per object (a timer and a RayJob event can coincide)."""
        return self._locks.setdefault((kind, namespace, name), asyncio.Lock())

    def forget(self, kind: str, namespace: str, name: str) -> None:
        """Drop what :meth:`memo_for` and :meth:`lock_for` keep: the object finished or is
        deleted, so no follow step runs for it again."""
        self._memos.pop((kind, namespace, name), None)
        self._locks.pop((kind, namespace, name), None)

    async def close(self) -> None:
        await self.kube.close()


def runtime_of(memo: Any) -> Runtime:
    runtime = memo.get("runtime") if isinstance(memo, Mapping) else None
    if not isinstance(runtime, Runtime):
        raise kopf.PermanentError("operator misconfigured: memo.runtime is not a Runtime")
    return runtime


def owner_of(body: Mapping[str, Any], kind: str) -> Owner:
    meta = body.get("metadata") or {}
    return Owner(
        api_version=str(body.get("apiVersion") or API_VERSION),
        kind=kind,
        name=str(meta.get("name")),
        uid=str(meta.get("uid") or ""),
    )


def plain(status: Mapping[str, Any]) -> dict[str, Any]:
    """A plain-dict copy of kopf's status view."""
    return {k: v for k, v in status.items()}


async def ensure_rayjob(
    runtime: Runtime,
    target: Target,
    manifest: Mapping[str, Any],
    kind: str,
    generation: int | None,
    created: Ensured | None = None,
) -> Ensured | None:
    """Create or adopt the RayJob (``created``: already done, by the eager start).
    Transient API trouble raises kopf.TemporaryError (kopf retries); a manifest the API
    server rejects fails the object (returns None)."""
    meta, body = manifest["metadata"], target.body
    owner_uid = (body.get("metadata") or {}).get("uid")
    try:
        ensured = created or await runtime.rayjobs.ensure(manifest, owner_uid)
    except ForeignObjectError as exc:
        kopf.warn(body, reason=reasons.RAYJOB_CONFLICT, message=str(exc))
        raise kopf.TemporaryError(str(exc), delay=30) from exc
    except KubeApiError as exc:
        if exc.status == 404:
            message = (
                f"cannot create RayJob {meta['name']}: the ray.io/v1 RayJob resource is not "
                "served here; install the KubeRay operator and its CRDs"
            )
            kopf.warn(body, reason=reasons.KUBERAY_MISSING, message=message)
            raise kopf.TemporaryError(message, delay=30) from exc
        if exc.status in (401, 403):
            message = (
                f"not allowed to create RayJob {meta['namespace']}/{meta['name']}: "
                f"{exc.message} (check the operator's RBAC for ray.io rayjobs)"
            )
            kopf.warn(body, reason=reasons.FORBIDDEN, message=message)
            raise kopf.TemporaryError(message, delay=60) from exc
        if exc.status in (400, 422):
            message = f"the API server rejected RayJob {meta['name']}: {exc.message}"
            write_failed(target, reasons.RAYJOB_REJECTED, message, generation)
            return None
        raise kopf.TemporaryError(f"RayJob {meta['name']}: {exc}", delay=10) from exc
    if ensured.action == "created":
        runtime.metrics.rayjobs_created.labels(kind=kind).inc()
        kopf.info(
            body, reason=reasons.RAYJOB_CREATED, message=f"created {RAYJOB_KIND} {meta['name']}"
        )
    else:
        kopf.info(
            body,
            reason=reasons.RAYJOB_ADOPTED,
            message=f"adopted the existing {RAYJOB_KIND} {meta['name']}",
        )
    return ensured


async def get_rayjob(runtime: Runtime, namespace: str, name: str) -> dict[str, Any] | None:
    """The RayJob, None when it is gone; API trouble raises kopf.TemporaryError (retried)."""
    try:
        return await runtime.rayjobs.get(namespace, name)
    except KubeApiError as exc:
        raise kopf.TemporaryError(f"reading RayJob {name}: {exc}", delay=10) from exc


async def read_in_thread(fn: Any, *args: Any) -> Any:
    """Store I/O is blocking (fsspec, retries with sleeps): keep it off the event loop."""
    return await asyncio.to_thread(fn, *args)


async def nothing_to_start(
    runtime: Runtime, body: kopf.Body, status: Mapping[str, Any], kind: str
) -> bool:
    """The create/resume prologue both kinds share: True when there is nothing to start.

    A finished resource stays finished; one with a RayJob in its status was started
    before an operator restart, so that RayJob is adopted (a spec edited since is
    ignored). A spec that failed validation is always tried again.
    """
    if failed_for_invalid_spec(status):
        return False
    meta = body.get("metadata") or {}
    namespace, name = str(meta.get("namespace")), str(meta.get("name"))
    if is_terminal(status):
        runtime.metrics.observe_phase(kind, namespace, name, str(status["phase"]))
        return True
    if status.get("rayJobName"):
        adopt_existing(runtime, body, namespace, status, kind)
        return True
    return False


def adopt_existing(
    runtime: Runtime, body: kopf.Body, namespace: str, status: Mapping[str, Any], kind: str
) -> None:
    """Resume after a restart: the RayJob named in status keeps running. That is no news
    (the status already records it as followed), so it is logged, not posted as an Event:
    a ``RayJobAdopted`` Event on every operator start for every unfinished object would
    pile up. (A RayJob found on *create*, which the status does not name yet, is news:
    :func:`ensure_rayjob` posts the Event.) The RayJob is not read here: the follow step
    reads it (at the next poll; for a Pending object, when the RayJob watch lists it or
    at the resync) and reports a missing one (RayJobLost, or success from the store)."""
    meta = body.get("metadata") or {}
    name = str(meta.get("name"))
    log.info("resuming %s %s/%s: following RayJob %s", kind, namespace, name, status["rayJobName"])
    phase = str(status.get("phase") or Phase.PENDING.value)
    runtime.metrics.observe_phase(kind, namespace, name, phase)
