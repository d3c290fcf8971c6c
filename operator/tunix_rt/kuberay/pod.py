"""One pod template of a Ray cluster group: its container, resources, env and placement.

Pure functions; a value that cannot become a valid pod raises :class:`ManifestError`
naming the spec field (a quantity the API server would refuse, a node selector that
contradicts the pool's accelerator).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from tunix_rt.api.cluster import ClusterSpec
from tunix_rt.kuberay.errors import ManifestError
from tunix_rt.kuberay.options import BuildOptions

QUANTITY = re.compile(
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
"""Kubernetes resource.Quantity, as the API server checks it."""


def quantity(value: str, field_path: str) -> str:
    """``value`` as a Kubernetes quantity, else a ManifestError naming ``field_path``."""
    text = str(value).strip()
    if not QUANTITY.match(text):
        raise ManifestError(
            field_path, f"{value!r} is not a Kubernetes quantity (e.g. 2, 500m, 8Gi)"
        )
    return text


def _env_from(options: BuildOptions) -> list[dict[str, Any]]:
    if not options.storage_secret:
        return []
    return [{"secretRef": {"name": options.storage_secret}}]


def container(
    name: str,
    image: str,
    *,
    cpu: str,
    memory: str,
    extra_resources: Mapping[str, str],
    env: Mapping[str, str],
    options: BuildOptions,
    ports: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A container whose requests equal its limits (Ray sizes itself by them)."""
    resources = {"cpu": cpu, "memory": memory, **extra_resources}
    container: dict[str, Any] = {
        "name": name,
        "image": image,
        "resources": {"requests": dict(resources), "limits": dict(resources)},
    }
    if options.image_pull_policy:
        container["imagePullPolicy"] = options.image_pull_policy
    if env:
        container["env"] = [{"name": k, "value": v} for k, v in env.items()]
    env_from = _env_from(options)
    if env_from:
        container["envFrom"] = env_from
    if ports:
        container["ports"] = ports
    return container


def template(
    container: dict[str, Any],
    labels: Mapping[str, str],
    cluster: ClusterSpec,
    *,
    node_selector: Mapping[str, str] | None = None,
    tolerations: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The pod template of one group: ``container`` with the cluster's service account."""
    spec: dict[str, Any] = {"containers": [container]}
    if cluster.service_account:
        spec["serviceAccountName"] = cluster.service_account
    if node_selector:
        spec["nodeSelector"] = dict(node_selector)
    if tolerations:
        spec["tolerations"] = tolerations
    return {"metadata": {"labels": dict(labels)}, "spec": spec}


def merge_selector(
    derived: dict[str, str], extra: Mapping[str, str] | None, field_path: str
) -> dict[str, str]:
    """The node selector derived from the pool, with the user's ``extra`` keys that agree."""
    merged = dict(derived)
    for key, value in (extra or {}).items():
        if key in merged and merged[key] != value:
            raise ManifestError(
                field_path,
                f"nodeSelector {key}={value!r} contradicts {merged[key]!r} derived from the "
                "pool's accelerator settings",
            )
        merged[key] = value
    return merged
