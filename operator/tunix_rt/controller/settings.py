"""kopf wiring: settings, login, liveness probes, and running the operator.

* Progress and the diff base live in annotations prefixed ``tunixrt.io`` (never in
  ``status``, which holds only the documented status fields); the finalizer is
  ``tunixrt.io/finalizer``.
* Namespace-scoped (``--namespace``, repeatable) or cluster-wide (default).
* Several replicas: ``--peering NAME`` uses kopf peering (the ``KopfPeering`` /
  ``ClusterKopfPeering`` CRDs of kopf.dev must be installed), so one replica is active;
  ``--standalone`` (default) skips peering.
* Liveness: kopf's endpoint (``/healthz``) answers while the operator runs, with the
  results of the probes below.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

import kopf

from tunix_rt.controller.config import OperatorConfig
from tunix_rt.controller.runtime import Runtime, runtime_of

PREFIX = "tunixrt.io"
FINALIZER = f"{PREFIX}/finalizer"


def make_settings(config: OperatorConfig) -> kopf.OperatorSettings:
    settings = kopf.OperatorSettings()
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=PREFIX, key="last-handled-configuration"
    )
    settings.posting.enabled = True
    settings.posting.level = logging.INFO
    settings.posting.reporting_component = "tunix-rt-operator"
    settings.posting.reporting_instance = socket.gethostname()
    settings.posting.event_name_prefix = "tunix-rt-"
    settings.peering.standalone = config.peering is None
    if config.peering is not None:
        settings.peering.name = config.peering
        settings.peering.mandatory = True
    settings.scanning.disabled = not config.scan_namespaces
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    return settings


async def login(
    memo: kopf.Memo, logger: kopf.Logger, settings: kopf.OperatorSettings, **_: Any
) -> kopf.ConnectionInfo | None:
    """In-cluster service account or kubeconfig (via kubernetes_asyncio), or a fixed server;
    the RayJob client uses the same credentials."""
    runtime = runtime_of(memo)
    info = runtime.fixed_connection
    if info is None:
        info = await kopf.login_via_async_client(logger=logger, settings=settings)
    runtime.connection = info
    return info


async def probe_followed(memo: kopf.Memo, **_: Any) -> dict[str, float]:
    """Liveness payload: how many objects are followed, by kind and phase."""
    runtime = runtime_of(memo)
    text = runtime.metrics.render().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(("tunixrt_sweeps{", "tunixrt_rehearsals{")):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    await runtime_of(memo).close()


def register(registry: kopf.OperatorRegistry) -> None:
    kopf.on.login(registry=registry)(login)
    kopf.on.probe(id="followed", registry=registry)(probe_followed)
    kopf.on.cleanup(registry=registry)(cleanup)


def operator_kwargs(config: OperatorConfig) -> dict[str, Any]:
    """Namespaces / peering / liveness arguments of kopf.operator()."""
    kwargs: dict[str, Any] = {
        "standalone": config.peering is None,
        "liveness_endpoint": config.liveness_endpoint or None,
    }
    if config.peering is not None:
        kwargs["peering_name"] = config.peering
    if config.namespaces:
        kwargs["namespaces"] = list(config.namespaces)
    else:
        kwargs["clusterwide"] = True
    return kwargs


def new_runtime(config: OperatorConfig, connection: kopf.ConnectionInfo | None = None) -> Runtime:
    return Runtime(config=config, fixed_connection=connection)
