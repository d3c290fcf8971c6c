"""Operator configuration, read from the environment (the Helm chart sets these).

| variable | default | meaning |
| --- | --- | --- |
| ``TUNIX_RT_IMAGE_CPU`` | ``ghcr.io/tunix-rt/trainer:<version>-cpu`` | head, CPU-pool image (1) |
| ``TUNIX_RT_IMAGE_GPU`` | ``ghcr.io/tunix-rt/trainer:<version>-cuda`` | GPU-pool image (1) |
| ``TUNIX_RT_IMAGE_TPU`` | ``ghcr.io/tunix-rt/trainer:<version>-tpu`` | TPU-pool image (1) |
| ``TUNIX_RT_IMAGE_PULL_POLICY`` | unset | imagePullPolicy of Ray pods |
| ``TUNIX_RT_DEFAULT_STORAGE`` | unset | store URI for specs that set no ``storage`` |
| ``TUNIX_RT_STORAGE_SECRET`` | unset | Secret injected (envFrom) into Ray pods for the store |
| ``TUNIX_RT_DEFAULT_POOLS`` | unset | JSON list of node pools for specs without cluster.pools |
| ``TUNIX_RT_DEFAULT_QUEUE`` | unset | Kueue LocalQueue for specs that set no ``queueName`` |
| ``TUNIX_RT_NAMESPACES`` | unset | comma-separated namespaces to serve (else cluster-wide) |
| ``TUNIX_RT_PEERING`` | unset | kopf peering name (several replicas); else standalone |
| ``TUNIX_RT_PEERING_PRIORITY`` | drawn at start | this replica's kopf peering priority |
| ``TUNIX_RT_PEERING_LIFETIME`` | ``60`` | seconds a replica's peering entry holds (kopf's) |
| ``TUNIX_RT_POLL_SECONDS`` | ``10`` | how often a Running object's RayJob and store are read |
| ``TUNIX_RT_RESYNC_SECONDS`` | ``300`` | how often a Pending one is read (RayJob events wake it) |
| ``TUNIX_RT_SUMMARY_GRACE_SECONDS`` | ``60`` | wait for the final summary after the job succeeded |
| ``TUNIX_RT_DEADLINE_GRACE_SECONDS`` | ``900`` | added to the timeout for activeDeadlineSeconds |
| ``TUNIX_RT_LIVENESS`` | ``http://0.0.0.0:8080/healthz`` | kopf liveness endpoint ("" disables) |
| ``TUNIX_RT_METRICS_PORT`` | ``9090`` | Prometheus /metrics port (0 disables) |

(1) Set but empty (the chart installed without that image): none; a spec that needs it is
refused, naming the field, rather than left to pull an image nobody pushed.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from tunix_rt import __version__
from tunix_rt.api.cluster import NodePool
from tunix_rt.kuberay.options import BuildOptions

IMAGE_REPO = "ghcr.io/tunix-rt/trainer"
DEFAULT_LIVENESS = "http://0.0.0.0:8080/healthz"
DEFAULT_METRICS_PORT = 9090


class ConfigError(ValueError):
    """A bad operator setting; the message names the environment variable or option."""


@dataclass(frozen=True)
class OperatorConfig:
    image_cpu: str = f"{IMAGE_REPO}:{__version__}-cpu"
    image_gpu: str = f"{IMAGE_REPO}:{__version__}-cuda"
    image_tpu: str = f"{IMAGE_REPO}:{__version__}-tpu"
    image_pull_policy: str | None = None
    default_storage: str | None = None
    default_queue: str | None = None
    """Kueue LocalQueue for specs that name none (the chart's ``kueue.queueName``)."""
    storage_secret: str | None = None
    default_pools: tuple[dict[str, Any], ...] = ()
    """Node pools (wire form) for specs that set no ``cluster.pools``."""
    namespaces: tuple[str, ...] = ()
    """Namespaces to serve; empty: cluster-wide."""
    peering: str | None = None
    """kopf peering object name; None: standalone (one replica)."""
    peering_priority: int | None = None
    """This replica's peering priority; None: drawn at random when the operator starts."""
    peering_lifetime: int = 60
    """Seconds this replica's peering entry holds without a keep-alive (kopf's default): a
    replica that died is taken over that long after its last one."""
    poll_seconds: float = 10.0
    """Running objects: their trials change in the store, which sends no events."""
    resync_seconds: float = 300.0
    """Pending objects (Ray cluster starting or queued: no trial can change): read when
    their RayJob changes (watch events) and, as a safety net, this often."""
    summary_grace_seconds: float = 60.0
    deadline_grace_seconds: int = 900
    liveness_endpoint: str | None = DEFAULT_LIVENESS
    metrics_port: int = DEFAULT_METRICS_PORT
    metrics_addr: str = "0.0.0.0"
    scan_namespaces: bool = True
    """Let kopf list/watch namespaces (needs RBAC on namespaces); off: serve exactly the
    given names."""
    ui_port: int | None = None
    """Serve the web view (:mod:`tunix_rt.ui`) on this port; None: off; 0: any free port."""
    ui_host: str = "0.0.0.0"
    ui_store: str | None = None
    """The store the web view reads; None: ``default_storage``."""
    ui_promote_repo: str | None = None
    """Where the web view's Promote button commits; None: read-only."""

    @property
    def ui_store_uri(self) -> str | None:
        """The store the web view reads: ``ui_store``, else the default storage."""
        return self.ui_store or self.default_storage

    @property
    def clusterwide(self) -> bool:
        return not self.namespaces

    def with_defaults(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        """The spec with the operator's defaults filled in where it sets nothing:
        ``storage``, ``queueName`` and ``cluster.pools``. Explicit values always win."""
        out = dict(spec)
        if self.default_storage and out.get("storage") is None:  # "" is refused, not filled
            out["storage"] = self.default_storage
        if self.default_queue and not out.get("queueName") and not out.get("queue_name"):
            out["queueName"] = self.default_queue
        if self.default_pools:
            cluster = dict(out.get("cluster") or {})
            if not cluster.get("pools"):
                cluster["pools"] = [dict(p) for p in self.default_pools]
                out["cluster"] = cluster
        return out

    def build_options(self) -> BuildOptions:
        """The RayJob builder's options: this config's fields of the same names."""
        shared = {f.name for f in dataclasses.fields(BuildOptions)}
        return BuildOptions(
            **{f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name in shared}
        )

    def replace(self, **changes: object) -> OperatorConfig:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> OperatorConfig:
        env = os.environ if environ is None else environ
        base = cls()

        def text(name: str, default: str | None) -> str | None:
            value = env.get(name)
            if value is None:
                return default
            return value.strip() or None

        def image(name: str, default: str) -> str:
            # Set but empty (the chart without that image): none, so a Sweep that needs it
            # is refused by name instead of pulling an image nobody pushed.
            value = env.get(name)
            return default if value is None else value.strip()

        def number(name: str, default: float, minimum: float) -> float:
            raw = env.get(name)
            if raw is None or not raw.strip():
                return default
            try:
                value = float(raw)
            except ValueError:
                raise ConfigError(f"{name}={raw!r} is not a number") from None
            if value < minimum:
                raise ConfigError(f"{name}={raw!r} must be >= {minimum:g}")
            return value

        namespaces = tuple(
            ns.strip() for ns in (env.get("TUNIX_RT_NAMESPACES") or "").split(",") if ns.strip()
        )
        storage = text("TUNIX_RT_DEFAULT_STORAGE", None)
        if storage and not storage.startswith(("file://", "s3://", "gs://")):
            raise ConfigError(
                f"TUNIX_RT_DEFAULT_STORAGE={storage!r} must be a file://, s3:// or gs:// URI"
            )
        pools = _parse_pools(env.get("TUNIX_RT_DEFAULT_POOLS"))
        return cls(
            default_pools=pools,
            image_cpu=image("TUNIX_RT_IMAGE_CPU", base.image_cpu),
            image_gpu=image("TUNIX_RT_IMAGE_GPU", base.image_gpu),
            image_tpu=image("TUNIX_RT_IMAGE_TPU", base.image_tpu),
            image_pull_policy=text("TUNIX_RT_IMAGE_PULL_POLICY", None),
            default_storage=storage,
            default_queue=text("TUNIX_RT_DEFAULT_QUEUE", None),
            storage_secret=text("TUNIX_RT_STORAGE_SECRET", None),
            namespaces=namespaces,
            peering=text("TUNIX_RT_PEERING", None),
            peering_priority=_priority(text("TUNIX_RT_PEERING_PRIORITY", None)),
            peering_lifetime=int(
                number("TUNIX_RT_PEERING_LIFETIME", base.peering_lifetime, PEERING_LIFETIME_MIN)
            ),
            poll_seconds=number("TUNIX_RT_POLL_SECONDS", base.poll_seconds, 0.05),
            resync_seconds=number("TUNIX_RT_RESYNC_SECONDS", base.resync_seconds, 0.05),
            summary_grace_seconds=number(
                "TUNIX_RT_SUMMARY_GRACE_SECONDS", base.summary_grace_seconds, 0
            ),
            deadline_grace_seconds=int(
                number("TUNIX_RT_DEADLINE_GRACE_SECONDS", base.deadline_grace_seconds, 0)
            ),
            liveness_endpoint=text("TUNIX_RT_LIVENESS", base.liveness_endpoint),
            metrics_port=int(number("TUNIX_RT_METRICS_PORT", base.metrics_port, 0)),
        )


PEERING_LIFETIME_MIN = 11
"""kopf renews a replica's peering entry 5-10 s before it expires: a shorter lifetime
would have it renewed every second."""


def _priority(raw: str | None) -> int | None:
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"TUNIX_RT_PEERING_PRIORITY={raw!r} is not an integer") from None


def _parse_pools(raw: str | None) -> tuple[dict[str, Any], ...]:
    if raw is None or not raw.strip():
        return ()
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise ConfigError(f"TUNIX_RT_DEFAULT_POOLS is not JSON: {exc}") from None
    if not isinstance(value, list):
        raise ConfigError("TUNIX_RT_DEFAULT_POOLS must be a JSON list of node pools")
    pools = []
    for i, item in enumerate(value):
        try:
            pools.append(NodePool.model_validate(item).to_wire())
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            loc = ".".join(str(p) for p in first.get("loc", ()))
            where = f"[{i}].{loc}" if loc else f"[{i}]"
            raise ConfigError(f"TUNIX_RT_DEFAULT_POOLS{where}: {first.get('msg')}") from None
    return tuple(pools)
