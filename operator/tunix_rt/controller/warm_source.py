"""Where a warm-started Sweep's earlier trials are: ``spec.warmStartFrom.sweep`` resolved.

The Sweep it names (same namespace) is read like a Rehearsal's ``fromSweep``
(:mod:`tunix_rt.controller.rehearsal_source`): not there yet, or still running ->
:class:`Waiting` (the new Sweep stays Pending, reason ``WaitingForSweep``, and is checked
again every poll); finished (Succeeded or Failed: a failed sweep's succeeded trials are
measurements too) -> :class:`Found` with its results URI (``status.resultsUri``, else
where its spec's storage puts it), which the RayJob's driver gets as
``--warm-start-uri``. ``warmStartFrom.uri`` needs no resolving.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import kopf

from tunix_rt.api.common import DEFAULT_STORAGE, Phase
from tunix_rt.contract.layout import SweepLayout
from tunix_rt.controller.runtime import Runtime
from tunix_rt.kuberay.client import KubeApiError

WAITING = (Phase.PENDING.value, Phase.RUNNING.value)


@dataclass(frozen=True)
class Found:
    uri: str


@dataclass(frozen=True)
class Waiting:
    message: str


async def resolve(runtime: Runtime, namespace: str, name: str) -> Found | Waiting:
    """The results URI of Sweep ``name``, or why the new Sweep waits for it."""
    try:
        sweep = await runtime.rayjobs.get_sweep(namespace, name)
    except KubeApiError as exc:
        raise kopf.TemporaryError(f"reading Sweep {name}: {exc}", delay=10) from exc
    if sweep is None:
        return Waiting(
            f"spec.warmStartFrom: Sweep {name} not found in namespace {namespace}; waiting "
            "for it (or set warmStartFrom.uri to its results)"
        )
    return source_of(runtime, namespace, name, sweep)


def source_of(
    runtime: Runtime, namespace: str, name: str, sweep: Mapping[str, Any]
) -> Found | Waiting:
    """The pure part of :func:`resolve`, for one Sweep object as read."""
    status = sweep.get("status") or {}
    phase = status.get("phase") or Phase.PENDING.value
    if phase in WAITING:
        progress = status.get("trialsProgress")
        extra = f", {progress} trials" if progress else ""
        return Waiting(
            f"spec.warmStartFrom: Sweep {name} is {phase}{extra}; this Sweep starts when it "
            "has finished"
        )
    uri = status.get("resultsUri")
    if not uri:
        spec = sweep.get("spec") or {}
        storage = runtime.storage_for(spec, DEFAULT_STORAGE)
        uri = runtime.store(storage).uri_for(SweepLayout.of(namespace, name).prefix)
    return Found(str(uri))
