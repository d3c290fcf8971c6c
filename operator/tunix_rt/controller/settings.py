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

import dataclasses
import logging
import os
import random
import socket
from typing import Any

import kopf

from tunix_rt.controller.config import OperatorConfig
from tunix_rt.controller.runtime import Runtime, runtime_of

PREFIX = "tunixrt.io"
FINALIZER = f"{PREFIX}/finalizer"


def replica_priority(config: OperatorConfig) -> int:
    """kopf pauses every operator of the same priority, so two replicas of equal priority
    would both wait and none act: each replica draws its own, the highest acts, the others
    stand by and take over when its peering entry expires."""
    if config.peering_priority is not None:
        return config.peering_priority
    return random.SystemRandom().randint(1, 2**31 - 1)


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
        settings.peering.priority = replica_priority(config)
        settings.peering.lifetime = config.peering_lifetime
    settings.scanning.disabled = not config.scan_namespaces
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    return settings


async def login(
    memo: kopf.Memo, logger: kopf.Logger, settings: kopf.OperatorSettings, **_: Any
) -> kopf.ConnectionInfo | None:
    """A fixed server, else the in-cluster service account, else the kubeconfig (read by
    kopf; by kubernetes_asyncio only when it needs a plugin); the RayJob client uses the
    same credentials."""
    runtime = runtime_of(memo)
    info = runtime.fixed_connection or in_cluster(settings) or from_kubeconfig(settings)
    if info is None:  # exec plugins, auth providers: the client library runs them
        info = await kopf.login_via_async_client(logger=logger, settings=settings)
    runtime.connection = info
    return info


def in_cluster(settings: kopf.OperatorSettings) -> kopf.ConnectionInfo | None:
    """The pod's service account, at ``KUBERNETES_SERVICE_HOST:PORT`` (as the client
    libraries do: a process with those unset uses its kubeconfig even in a pod)."""
    host = os.environ.get("KUBERNETES_SERVICE_HOST")
    port = os.environ.get("KUBERNETES_SERVICE_PORT")
    if not host or not port:
        return None
    info = kopf.login_with_service_account(settings=settings)
    if info is None:
        return None
    host = f"[{host}]" if ":" in host else host
    return dataclasses.replace(info, server=f"https://{host}:{port}")


def from_kubeconfig(settings: kopf.OperatorSettings) -> kopf.ConnectionInfo | None:
    """kopf's own kubeconfig reader (no client library: that is ~60 MiB resident, see
    :mod:`tunix_rt.kopf_lean`), when the kubeconfig holds the credentials themselves
    (token, client certificate, basic auth); None when it names none (an exec plugin or
    auth provider: the client library is needed) or there is no kubeconfig."""
    if not os.environ.get("KUBECONFIG") and not os.path.exists(
        os.path.expanduser("~/.kube/config")
    ):
        return None
    info = kopf.login_with_kubeconfig(settings=settings)
    if info is None or not (
        info.token or info.certificate_path or info.certificate_data or info.username
    ):
        return None
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
