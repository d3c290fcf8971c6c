"""The RayJob builder: Sweep / Rehearsal specs -> ``ray.io/v1`` RayJob manifests (pure functions).

One RayJob per parent, named ``child_name(kind, parent)`` so that a restarted operator
finds and adopts it. Its Ray cluster has:

* a head group that runs the driver (the Tune driver of a Sweep, or the rehearsal run)
  and no trials (``num-cpus: "0"``);
* one worker group per node pool: CPU pools; GPU pools (``nvidia.com/gpu`` requests and
  limits, the GKE accelerator node selector, the ``nvidia.com/gpu`` toleration); TPU pools
  (``google.com/tpu`` per host, ``numOfHosts`` hosts per slice, ``replicas`` slices, the GKE
  TPU accelerator/topology node selectors, a ``TPU`` Ray resource, the ``google.com/tpu``
  toleration).

Every manifest validates against KubeRay's RayJob CRD schema (tested); anything that
cannot become a valid RayJob raises :class:`ManifestError` naming the spec field.
"""

from __future__ import annotations

import json
import math
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from tunix_rt.api.cluster import Accelerator, ClusterSpec, NodePool
from tunix_rt.api.common import QUEUE_LABEL
from tunix_rt.api.names import child_name, label_value
from tunix_rt.api.placement import spanning_fit
from tunix_rt.api.rehearsal import RehearsalSpec
from tunix_rt.api.sweep import SweepSpec
from tunix_rt.api.trial_shape import (
    TRAIN_V2_ENV,
    TRIAL_DRIVER_RESOURCE,
    TRIAL_DRIVER_SLOTS,
    TrialResources,
)
from tunix_rt.contract.codec import compact_json, encode_spec, spec_json
from tunix_rt.kuberay.errors import ManifestError
from tunix_rt.kuberay.tpu import (
    GKE_TPU_ACCELERATOR_LABEL,
    GKE_TPU_TOPOLOGY_LABEL,
    TPU_RESOURCE,
    tpu_slice,
)

RAY_API_VERSION = "ray.io/v1"
RAYJOB_KIND = "RayJob"

GPU_RESOURCE = "nvidia.com/gpu"
GKE_GPU_LABEL = "cloud.google.com/gke-accelerator"

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "tunix-rt"
NAME_LABEL = "app.kubernetes.io/name"
COMPONENT_LABEL = "app.kubernetes.io/component"
SWEEP_LABEL = "tunixrt.io/sweep"
REHEARSAL_LABEL = "tunixrt.io/rehearsal"
SPEC_ANNOTATION = "tunixrt.io/spec"
"""The resolved spec the RayJob runs (wire JSON): what the operator follows, whatever the
parent's spec says later."""
SOURCE_ANNOTATION = "tunixrt.io/source"
"""Rehearsals: ``{"sweep": ..., "trial": ..., "params": ...}`` of a fromSweep run."""

HEAD_CONTAINER = "ray-head"
WORKER_CONTAINER = "ray-worker"

QUANTITY = re.compile(
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
"""Kubernetes resource.Quantity, as the API server checks it."""

JAX_PLATFORMS = {Accelerator.CPU: "cpu", Accelerator.GPU: "cuda", Accelerator.TPU: "tpu"}


@dataclass(frozen=True)
class Owner:
    """The parent the RayJob belongs to (ownerReference with controller=true)."""

    api_version: str
    kind: str
    name: str
    uid: str

    def reference(self) -> dict[str, Any]:
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


@dataclass(frozen=True)
class BuildOptions:
    """Operator-wide defaults the manifests use (see ``tunix_rt.controller.config``)."""

    image_cpu: str = "ghcr.io/tunix-rt/trainer:0.1.0-cpu"
    image_gpu: str = "ghcr.io/tunix-rt/trainer:0.1.0-cuda"
    image_tpu: str = "ghcr.io/tunix-rt/trainer:0.1.0-tpu"
    image_pull_policy: str | None = None
    storage_secret: str | None = None
    """Secret whose keys become env vars of head and workers (storage credentials)."""
    deadline_grace_seconds: int = 900
    """Added to the sweep/rehearsal timeout for the RayJob's activeDeadlineSeconds: cluster
    start-up, image pulls and the final summary write."""
    extra_labels: Mapping[str, str] = field(default_factory=dict)

    def image_for(self, accelerator: Accelerator) -> str:
        return {
            Accelerator.CPU: self.image_cpu,
            Accelerator.GPU: self.image_gpu,
            Accelerator.TPU: self.image_tpu,
        }[accelerator]


# ----------------------------------------------------------------------------- helpers


def _quantity(value: str, field_path: str) -> str:
    text = str(value).strip()
    if not QUANTITY.match(text):
        raise ManifestError(
            field_path, f"{value!r} is not a Kubernetes quantity (e.g. 2, 500m, 8Gi)"
        )
    return text


def _labels(kind: str, name: str, options: BuildOptions) -> dict[str, str]:
    labels = {
        NAME_LABEL: "tunix-rt",
        MANAGED_BY_LABEL: MANAGED_BY,
        COMPONENT_LABEL: kind,
        (SWEEP_LABEL if kind == "sweep" else REHEARSAL_LABEL): label_value(name),
    }
    labels.update(options.extra_labels)
    return labels


def _env_from(options: BuildOptions) -> list[dict[str, Any]]:
    if not options.storage_secret:
        return []
    return [{"secretRef": {"name": options.storage_secret}}]


def _container(
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


def _pod_template(
    container: dict[str, Any],
    labels: Mapping[str, str],
    cluster: ClusterSpec,
    *,
    node_selector: Mapping[str, str] | None = None,
    tolerations: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [container]}
    if cluster.service_account:
        spec["serviceAccountName"] = cluster.service_account
    if node_selector:
        spec["nodeSelector"] = dict(node_selector)
    if tolerations:
        spec["tolerations"] = tolerations
    return {"metadata": {"labels": dict(labels)}, "spec": spec}


def _merge_selector(
    derived: dict[str, str], extra: Mapping[str, str] | None, field_path: str
) -> dict[str, str]:
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


# ----------------------------------------------------------------------------- groups


def head_group_spec(
    cluster: ClusterSpec,
    labels: Mapping[str, str],
    options: BuildOptions,
    field_prefix: str = "spec.cluster",
    resources: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """The head: runs the driver, takes no trials (``num-cpus: "0"``); ``resources``: the
    custom Ray resources it advertises (multi-host sweeps: the trial-driver slots)."""
    image = cluster.image or options.image_cpu
    container = _container(
        HEAD_CONTAINER,
        image,
        cpu=_quantity(cluster.head_cpu, f"{field_prefix}.headCpu"),
        memory=_quantity(cluster.head_memory, f"{field_prefix}.headMemory"),
        extra_resources={},
        env={"JAX_PLATFORMS": "cpu"},
        options=options,
        ports=[
            {"containerPort": 6379, "name": "gcs-server"},
            {"containerPort": 8265, "name": "dashboard"},
            {"containerPort": 10001, "name": "client"},
        ],
    )
    params = {"num-cpus": "0", "dashboard-host": "0.0.0.0"}
    if resources:
        params["resources"] = json.dumps(json.dumps(dict(resources)))
    return {
        "rayStartParams": params,
        "template": _pod_template(container, labels, cluster),
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


def worker_group_spec(
    pool: NodePool,
    index: int,
    cluster: ClusterSpec,
    labels: Mapping[str, str],
    options: BuildOptions,
    field_prefix: str = "spec.cluster",
) -> dict[str, Any]:
    """One worker group for one node pool (CPU, GPU or TPU)."""
    path = f"{field_prefix}.pools[{index}]"
    replicas, low, high = _replicas(pool, path)
    image = pool.image or options.image_for(pool.accelerator)
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
        shape = tpu_slice(
            pool.tpu_accelerator or "",
            pool.tpu_topology or "",
            accelerator_field=f"{path}.tpuAccelerator",
            topology_field=f"{path}.tpuTopology",
        )
        hosts = shape.hosts
        extra[TPU_RESOURCE] = str(shape.chips_per_host)
        selector[GKE_TPU_ACCELERATOR_LABEL] = shape.gke_accelerator
        selector[GKE_TPU_TOPOLOGY_LABEL] = shape.topology
        tolerations.append({"key": TPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"})
        # ray start --resources takes a JSON string; KubeRay passes it through a shell.
        ray_start["resources"] = json.dumps(json.dumps({"TPU": shape.chips_per_host}))

    selector = _merge_selector(selector, pool.node_selector, f"{path}.nodeSelector")
    container = _container(
        WORKER_CONTAINER,
        image,
        cpu=_quantity(pool.cpu, f"{path}.cpu"),
        memory=_quantity(pool.memory, f"{path}.memory"),
        extra_resources=extra,
        env={"JAX_PLATFORMS": JAX_PLATFORMS[pool.accelerator]},
        options=options,
    )
    group: dict[str, Any] = {
        "groupName": pool.name,
        "replicas": replicas,
        "minReplicas": low,
        "maxReplicas": high,
        "rayStartParams": ray_start,
        "template": _pod_template(
            container, labels, cluster, node_selector=selector, tolerations=tolerations
        ),
    }
    if pool.accelerator is Accelerator.TPU:
        group["numOfHosts"] = hosts
    return group


def ray_cluster_spec(
    cluster: ClusterSpec,
    labels: Mapping[str, str],
    options: BuildOptions,
    field_prefix: str = "spec.cluster",
    head_resources: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """``spec.rayClusterSpec``: the head and one worker group per pool."""
    workers = [
        worker_group_spec(pool, i, cluster, labels, options, field_prefix)
        for i, pool in enumerate(cluster.pools)
    ]
    spec: dict[str, Any] = {
        "rayVersion": cluster.ray_version,
        "headGroupSpec": head_group_spec(
            cluster, labels, options, field_prefix, resources=head_resources
        ),
        "workerGroupSpecs": workers,
    }
    if any(g["minReplicas"] != g["maxReplicas"] for g in workers):
        spec["enableInTreeAutoscaling"] = True
    return spec


def runtime_env_yaml(env: Mapping[str, str] | None) -> str:
    """``runtimeEnvYAML``: environment variables of the Ray job (driver and trials)."""
    env_vars = {"PYTHONUNBUFFERED": "1", **(env or {})}
    return yaml.safe_dump({"env_vars": env_vars}, sort_keys=True)


def _rayjob(
    kind: str,
    name: str,
    namespace: str,
    spec: SweepSpec | RehearsalSpec,
    *,
    owner: Owner,
    options: BuildOptions,
    entrypoint: str,
    deadline: int | None,
    annotations: Mapping[str, str] | None = None,
    extra_spec: Mapping[str, Any] | None = None,
    cluster: ClusterSpec | None = None,
    head_resources: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """The RayJob ``child_name(kind, name)``: labels, the resolved spec as an annotation
    (then ``annotations``), the owner, the Ray cluster of ``cluster`` (default
    ``spec.cluster``)."""
    labels = _labels(kind, name, options)
    cluster = cluster or spec.cluster
    job_spec: dict[str, Any] = {
        "entrypoint": entrypoint,
        "runtimeEnvYAML": runtime_env_yaml(cluster.env),
        "shutdownAfterJobFinishes": True,
        "ttlSecondsAfterFinished": cluster.ttl_seconds_after_finished,
        "backoffLimit": 0,
        "submissionMode": "K8sJobMode",
        "rayClusterSpec": ray_cluster_spec(cluster, labels, options, head_resources=head_resources),
    }
    if deadline is not None:
        job_spec["activeDeadlineSeconds"] = deadline
    job_spec.update(extra_spec or {})
    job_labels = dict(labels)
    if spec.queue_name:
        # Kueue admits it: created suspended, in the named LocalQueue. The operator never
        # touches `suspend` again (Kueue owns it from here).
        job_labels[QUEUE_LABEL] = spec.queue_name
        job_spec["suspend"] = True
    return {
        "apiVersion": RAY_API_VERSION,
        "kind": RAYJOB_KIND,
        "metadata": {
            "name": child_name(kind, name),
            "namespace": namespace,
            "labels": job_labels,
            "annotations": {SPEC_ANNOTATION: spec_json(spec), **(annotations or {})},
            "ownerReferences": [owner.reference()],
        },
        "spec": job_spec,
    }


def _driver_args(
    module: str, spec: SweepSpec | RehearsalSpec, namespace: str, name: str
) -> list[str]:
    """``python -m <module>`` with the spec, the store and the parent's namespace and name."""
    return [
        "python", "-m", module,
        "--spec-b64", encode_spec(spec),
        "--storage", spec.storage,
        "--namespace", namespace,
        "--name", name,
    ]  # fmt: skip


# ----------------------------------------------------------------------------- sweeps


def sweep_entrypoint(spec: SweepSpec, namespace: str, name: str) -> str:
    """The Tune driver command line (shell-quoted)."""
    return shlex.join(
        [
            *_driver_args("tunix_rt.tune", spec, namespace, name),
            "--source", f"Sweep {namespace}/{name}",
            "--address", "auto",
        ]
    )  # fmt: skip


def sweep_deadline(spec: SweepSpec, grace: int) -> int | None:
    """activeDeadlineSeconds: the sweep timeout plus grace; else a bound derived from the
    trial timeout (waves of concurrent trials); else none."""
    budget = spec.budget
    if budget.sweep_timeout_seconds is not None:
        return budget.sweep_timeout_seconds + grace
    if budget.trial_timeout_seconds is not None:
        waves = math.ceil(spec.planned_trials() / spec.max_concurrent_trials)
        return budget.trial_timeout_seconds * waves + grace
    return None


def build_sweep_rayjob(
    *,
    name: str,
    namespace: str,
    spec: SweepSpec,
    owner: Owner,
    options: BuildOptions | None = None,
) -> dict[str, Any]:
    """The RayJob of a Sweep: the Tune driver on the head, trials on the worker groups."""
    options = options or BuildOptions()
    multihost = spec.resources.spans_hosts()
    return _rayjob(
        "sweep",
        name,
        namespace,
        spec,
        owner=owner,
        options=options,
        entrypoint=sweep_entrypoint(spec, namespace, name),
        deadline=sweep_deadline(spec, options.deadline_grace_seconds),
        cluster=sweep_cluster(spec),
        head_resources={TRIAL_DRIVER_RESOURCE: TRIAL_DRIVER_SLOTS} if multihost else None,
    )


def sweep_cluster(spec: SweepSpec) -> ClusterSpec:
    """The Ray cluster of a Sweep: ``spec.cluster``; for trials that span hosts, the pool
    their workers use has enough pods (TPU: slices) for ``maxConcurrentTrials`` trials at
    once, and the job runs Ray Train v2.

    A v6e 4x4 trial with 2 concurrent trials: the slice pool gets 2 replicas (2 slices of
    4 hosts each); a pool whose maxReplicas cannot hold them was refused at admission.
    """
    if not spec.resources.spans_hosts():
        return spec.cluster
    fit = spanning_fit(spec)
    if fit is None:
        raise ManifestError(
            "spec.resources",
            "no pool holds this sweep's multi-host trials; run `tunix-rt validate` on the "
            "Sweep for the numbers",
        )
    pools = list(spec.cluster.pools)
    if fit.pool.replicas < fit.pods:
        pools[fit.index] = fit.pool.model_copy(update={"replicas": fit.pods})
    env = {TRAIN_V2_ENV: "1", **(spec.cluster.env or {})}
    return spec.cluster.model_copy(update={"pools": pools, "env": env})


# ----------------------------------------------------------------------------- rehearsals


def rehearsal_entrypoint(
    spec: RehearsalSpec,
    namespace: str,
    name: str,
    source_sweep: str | None = None,
    source_trial: str | None = None,
) -> str:
    """The rehearsal run's command line (shell-quoted); ``spec.trainer`` is resolved inline."""
    args = _driver_args("tunix_rt.rehearsal", spec, namespace, name)
    if source_sweep:
        args += ["--source-sweep", source_sweep]
    if source_trial:
        args += ["--source-trial", source_trial]
    return shlex.join(args)


def entrypoint_resources(resources: TrialResources) -> dict[str, Any]:
    """Where the rehearsal's driver runs: a worker with the run's CPUs, GPUs or TPU chips
    (KubeRay's entrypointNumCpus / entrypointNumGpus / entrypointResources)."""
    out: dict[str, Any] = {"entrypointNumCpus": resources.cpu}
    if resources.gpu:
        out["entrypointNumGpus"] = resources.gpu
    if resources.tpu:
        out["entrypointResources"] = json.dumps({"TPU": resources.tpu})
    return out


def build_rehearsal_rayjob(
    *,
    name: str,
    namespace: str,
    spec: RehearsalSpec,
    owner: Owner,
    options: BuildOptions | None = None,
    source_sweep: str | None = None,
    source_trial: str | None = None,
    params: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The RayJob of a Rehearsal whose ``spec.trainer`` is already resolved inline."""
    if spec.trainer is None:
        raise ManifestError("spec.trainer", "resolve fromSweep into an inline trainer first")
    options = options or BuildOptions()
    annotations: dict[str, str] = {}
    if source_sweep:
        annotations[SOURCE_ANNOTATION] = compact_json(
            {"sweep": source_sweep, "trial": source_trial, "params": dict(params or {})}
        )
    deadline = (
        spec.timeout_seconds + options.deadline_grace_seconds
        if spec.timeout_seconds is not None
        else None
    )
    return _rayjob(
        "rehearsal",
        name,
        namespace,
        spec,
        owner=owner,
        options=options,
        entrypoint=rehearsal_entrypoint(spec, namespace, name, source_sweep, source_trial),
        deadline=deadline,
        annotations=annotations,
        extra_spec=entrypoint_resources(spec.resources),
    )


def spec_annotation(rayjob: Mapping[str, Any]) -> dict[str, Any] | None:
    """The resolved spec recorded on a RayJob by this builder, if readable."""
    raw = (rayjob.get("metadata") or {}).get("annotations", {}).get(SPEC_ANNOTATION)
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
