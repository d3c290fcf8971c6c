"""The live phases of every Sweep and Rehearsal, read from the Kubernetes API: what the
web view joins over the store when the operator serves it (a Pending run has no files
yet; a run whose RayJob was lost says so only in its status).

It lists through the operator's own API client (:class:`~tunix_rt.kuberay.client.KubeClient`,
plain HTTP with the credentials kopf logged in with), not ``kubernetes_asyncio``, whose
models cost the operator ~60 MiB (:mod:`tunix_rt.kopf_lean`). Importing this module
imports kopf; the app and ``tunix-rt ui`` do not import it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from tunix_rt.kuberay.client import REHEARSALS, SWEEPS, KubeApiError, ResourceRef
from tunix_rt.ui.config import Kind, RunKey

log = logging.getLogger("tunix_rt.ui")


class Lister(Protocol):
    """What is needed of the API client: one GET returning JSON (KubeClient.request)."""

    async def request(self, method: str, path: str) -> dict[str, Any]: ...


KINDS: tuple[tuple[Kind, ResourceRef], ...] = (("Sweep", SWEEPS), ("Rehearsal", REHEARSALS))


def list_path(ref: ResourceRef, namespace: str | None) -> str:
    """The list URL of ``ref``: in one namespace, or across all of them."""
    if namespace is not None:
        return ref.path(namespace)
    return f"/apis/{ref.group}/{ref.version}/{ref.plural}"


def phases_in(kind: Kind, listing: Mapping[str, Any]) -> dict[RunKey, str]:
    """(namespace, kind, name) -> ``status.phase`` (Pending before the operator wrote one)."""
    out: dict[RunKey, str] = {}
    for item in listing.get("items") or []:
        meta = item.get("metadata") or {}
        namespace, name = meta.get("namespace"), meta.get("name")
        if isinstance(namespace, str) and isinstance(name, str):
            phase = (item.get("status") or {}).get("phase")
            out[(namespace, kind, name)] = str(phase) if phase else "Pending"
    return out


class KubeLivePhases:
    """A :data:`~tunix_rt.ui.config.LivePhases` provider: every Sweep and Rehearsal in
    ``namespaces`` (None: the whole cluster), listed at most once per ``ttl`` seconds.

    When the API cannot be reached the last answer is kept (and logged): the pages fall
    back to the store, which is always there."""

    def __init__(
        self, kube: Lister, namespaces: Sequence[str] | None = None, *, ttl: float = 5.0
    ) -> None:
        self.kube = kube
        self.namespaces: list[str | None] = list(namespaces) if namespaces else [None]
        self.ttl = ttl
        self._last: dict[RunKey, str] = {}
        self._at = float("-inf")
        self._lock = asyncio.Lock()

    async def __call__(self) -> Mapping[RunKey, str]:
        async with self._lock:
            if time.monotonic() - self._at < self.ttl:
                return self._last
            try:
                self._last = await self._list()
            except KubeApiError as exc:
                log.warning("live phases unavailable, showing the store's: %s", exc)
            self._at = time.monotonic()
            return self._last

    async def _list(self) -> dict[RunKey, str]:
        found: dict[RunKey, str] = {}
        for namespace in self.namespaces:
            for kind, ref in KINDS:
                listing = await self.kube.request("GET", list_path(ref, namespace))
                found.update(phases_in(kind, listing))
        return found
