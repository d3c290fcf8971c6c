"""The Ray cluster of a RayJob (``spec.rayClusterSpec``): a head group and worker groups.

* the head group runs the driver (the Tune driver of a Sweep, or the rehearsal run) and
  no trials (``num-cpus: "0"``);
* one worker group per node pool: CPU pools; GPU pools (``nvidia.com/gpu`` requests and
  limits, the GKE accelerator node selector, the ``nvidia.com/gpu`` toleration); TPU pools
  (``google.com/tpu`` per host, ``numOfHosts`` hosts per slice, ``replicas`` slices, the GKE
  TPU accelerator/topology node selectors, a ``TPU`` Ray resource, the ``google.com/tpu``
  toleration; the pods of one multi-host slice kept on one node pool:
  :mod:`tunix_rt.kuberay.slices`).

Each group's pod comes from :mod:`tunix_rt.kuberay.pod`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tunix_rt.api.cluster import Accelerator, ClusterSpec, NodePool
from tunix_rt.api.pool_machine import INSTANCE_TYPE_LABEL, pod_size, pool_tpu_slice
from tunix_rt.kuberay import pod, slices
from tunix_rt.kuberay.errors import ManifestError
from tunix_rt.kuberay.options import BuildOptions
from tunix_rt.kuberay.tpu import (
    GKE_TPU_ACCELERATOR_LABEL,
    GKE_TPU_TOPOLOGY_LABEL,
    TPU_RESOURCE,
)

GPU_RESOURCE = "nvidia.com/gpu"
GKE_GPU_LABEL = "cloud.google.com/gke-accelerator"

HEAD_CONTAINER = "ray-head"
WORKER_CONTAINER = "ray-worker"

JAX_PLATFORMS = {Accelerator.CPU: "cpu", Accelerator.GPU: "cuda", Accelerator.TPU: "tpu"}


def ray_resources_param(resources: Mapping[str, float]) -> str:
    """``rayStartParams.resources``: single-quoted compact JSON, ``'{"TPU":4}'``.

    KubeRay puts the value into the ``ray start`` shell command as is, and (1.5) parses it
    first, trimming quotes, to add the pod's accelerators. The double-encoded
    ``"{\\"TPU\\": 4}"`` of KubeRay's older samples survives the shell but not that parser:
    the real operator logged "failed to unmarshal resources" on every reconcile and skipped
    its accelerator handling. Single quotes, as KubeRay writes the value itself, suit both."""
    return f"'{json.dumps(dict(resources), separators=(',', ':'), sort_keys=True)}'"


def _image(own: str | None, options: BuildOptions, accelerator: Accelerator, field: str) -> str:
    """The spec's own image, else the operator's for the accelerator; refused when neither
    is set (the chart installed without that image): a pod must never pull a guess."""
    image = own or options.image_for(accelerator)
    if not image:
        key = accelerator.value
        raise ManifestError(
            field,
            f"no {key} trainer image: the operator was installed without one (the chart's "
            f"trainerImages.{key}; `make images` builds it); set {field} or install the "
            "chart with it",
        )
    return image


@dataclass(frozen=True)
class GroupContext:
    """What every group of one cluster is built from; ``field_prefix``: where the cluster
    is in the spec (errors name ``<field_prefix>.pools[0].image``)."""

    cluster: ClusterSpec
    labels: Mapping[str, str]
    options: BuildOptions
    field_prefix: str


def head_group_spec(groups: GroupContext, resources: Mapping[str, float] | None) -> dict[str, Any]:
    """The head: runs the driver, takes no trials (``num-cpus: "0"``); ``resources``: the
    custom Ray resources it advertises (multi-host sweeps: the trial-driver slots)."""
    cluster, field_prefix = groups.cluster, groups.field_prefix
    image = _image(cluster.image, groups.options, Accelerator.CPU, f"{field_prefix}.image")
    container = pod.container(
        HEAD_CONTAINER,
        image,
        cpu=pod.quantity(cluster.head_cpu, f"{field_prefix}.headCpu"),
        memory=pod.quantity(cluster.head_memory, f"{field_prefix}.headMemory"),
        extra_resources={},
        env={"JAX_PLATFORMS": "cpu"},
        options=groups.options,
        ports=[
            {"containerPort": 6379, "name": "gcs-server"},
            {"containerPort": 8265, "name": "dashboard"},
            {"containerPort": 10001, "name": "client"},
        ],
    )
    params = {"num-cpus": "0", "dashboard-host": "0.0.0.0"}
    if resources:
        params["resources"] = ray_resources_param(resources)
    return {
        "rayStartParams": params,
        "template": pod.template(container, groups.labels, cluster),
    }


def _replicas(pool: NodePool, field_path: str) -> tuple[int, int, int]:
    low = pool.min_replicas if pool.min_replicas is not None else pool.replicas
    high = pool.max_replicas if pool.max_replicas is not None else pool.replicas
    if low > pool.replicas:
        raise ManifestError(
            f"{field_path}.minReplicas", f"minReplicas ({low}) exceeds replicas ({pool.replicas})"
        )
    if high < pool.replicas:
        raise ManifestError(
            f"{field_path}.maxReplicas",
            f"maxReplicas ({high}) is below replicas ({pool.replicas})",
        )
    return pool.replicas, low, high


def worker_group_spec(groups: GroupContext, pool: NodePool, index: int) -> dict[str, Any]:
    """One worker group for one node pool (CPU, GPU or TPU)."""
    path = f"{groups.field_prefix}.pools[{index}]"
    replicas, low, high = _replicas(pool, path)
    image = _image(pool.image, groups.options, pool.accelerator, f"{path}.image")
    extra: dict[str, str] = {}
    selector: dict[str, str] = {}
    tolerations: list[dict[str, Any]] = []
    ray_start: dict[str, str] = {}
    hosts = 1

    if pool.accelerator is Accelerator.GPU:
        extra[GPU_RESOURCE] = str(pool.gpus_per_pod)
        if pool.gpu_type:
            selector[GKE_GPU_LABEL] = pool.gpu_type
        tolerations.append({"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"})
    elif pool.accelerator is Accelerator.TPU:
        shape = pool_tpu_slice(
            pool,
            accelerator_field=f"{path}.tpuAccelerator",
            topology_field=f"{path}.tpuTopology",
        )
        hosts = shape.hosts
        extra[TPU_RESOURCE] = str(shape.chips_per_host)
        selector[GKE_TPU_ACCELERATOR_LABEL] = shape.gke_accelerator
        selector[GKE_TPU_TOPOLOGY_LABEL] = shape.topology
        tolerations.append({"key": TPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"})
        ray_start["resources"] = ray_resources_param({"TPU": shape.chips_per_host})

    if pool.machine_type:
        # the pool names its machine: a 2x4 slice of two 4-chip VMs and one of a single
        # 8-chip VM carry the same TPU labels; GKE labels each node with its machine type
        selector[INSTANCE_TYPE_LABEL] = pool.machine_type
    selector = pod.merge_selector(selector, pool.node_selector, f"{path}.nodeSelector")
    try:
        size = pod_size(pool)
    except ValueError:  # a stated quantity that is none: pod.quantity names the field
        size = None
    container = pod.container(
        WORKER_CONTAINER,
        image,
        cpu=pod.quantity(size.cpu_quantity if size else str(pool.cpu), f"{path}.cpu"),
        memory=pod.quantity(size.memory_quantity if size else str(pool.memory), f"{path}.memory"),
        extra_resources=extra,
        env={"JAX_PLATFORMS": JAX_PLATFORMS[pool.accelerator]},
        options=groups.options,
    )
    group: dict[str, Any] = {
        "groupName": pool.name,
        "replicas": replicas,
        "minReplicas": low,
        "maxReplicas": high,
        "rayStartParams": ray_start,
        "template": pod.template(
            container,
            groups.labels,
            groups.cluster,
            node_selector=selector,
            tolerations=tolerations,
        ),
    }
    if pool.accelerator is Accelerator.TPU:
        group["numOfHosts"] = hosts
    if hosts > 1:  # one slice per replica, on one node pool (kuberay/slices.py)
        template = group["template"]
        template["metadata"]["labels"].update(slices.slice_labels(pool.name))
        template["spec"]["affinity"] = slices.slice_affinity(pool.name, high)
    return group


def ray_cluster_spec(
    cluster: ClusterSpec,
    labels: Mapping[str, str],
    options: BuildOptions,
    field_prefix: str = "spec.cluster",
    head_resources: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """``spec.rayClusterSpec``: the head and one worker group per pool."""
    groups = GroupContext(cluster, labels, options, field_prefix)
    workers = [worker_group_spec(groups, pool, i) for i, pool in enumerate(cluster.pools)]
    spec: dict[str, Any] = {
        "rayVersion": cluster.ray_version,
        "headGroupSpec": head_group_spec(groups, head_resources),
        "workerGroupSpecs": workers,
    }
    if any(g["minReplicas"] != g["maxReplicas"] for g in workers):
        spec["enableInTreeAutoscaling"] = True
    return spec
