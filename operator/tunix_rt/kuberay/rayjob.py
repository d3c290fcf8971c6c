"""The RayJob builder: Sweep / Rehearsal specs -> ``ray.io/v1`` RayJob manifests (pure functions).

One RayJob per parent, named ``child_name(kind, parent)`` so that a restarted operator
finds and adopts it (:mod:`tunix_rt.kuberay.metadata`: its labels, annotations and
owner). Its entrypoint runs the driver (``python -m tunix_rt.tune`` or
``python -m tunix_rt.rehearsal``) with the spec; its Ray cluster is
:func:`~tunix_rt.kuberay.raycluster.ray_cluster_spec`.

Every manifest validates against KubeRay's RayJob CRD schema (tested); anything that
cannot become a valid RayJob raises :class:`ManifestError` naming the spec field.

No RayJob carries a credential (:func:`refuse_credentials`), even from a spec that was
never validated (``model_construct``, a bug upstream): the spec is checked before the
manifest is built, and the finished manifest once more. A credential is refused, not
masked: a masked storage URI or dataset path would run something other than what was
written and fail later, while the refusal fails the object once with the field and the
fix named.
"""

from __future__ import annotations

import json
import math
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tunix_rt.api.cluster import ClusterSpec
from tunix_rt.api.common import QUEUE_LABEL
from tunix_rt.api.errors import error_path
from tunix_rt.api.names import child_name, label_value
from tunix_rt.api.placement import spanning_fit
from tunix_rt.api.rehearsal import RehearsalSpec, SourceTrial
from tunix_rt.api.secrets import spec_credentials
from tunix_rt.api.sweep import SweepSpec
from tunix_rt.api.trial_shape import (
    TRAIN_V2_ENV,
    TRIAL_DRIVER_RESOURCE,
    TRIAL_DRIVER_SLOTS,
    TrialResources,
)
from tunix_rt.contract.codec import compact_json, encode_spec, spec_json
from tunix_rt.kuberay.errors import ManifestError
from tunix_rt.kuberay.metadata import (
    COMPONENT_LABEL,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    NAME_LABEL,
    RAY_API_VERSION,
    RAYJOB_KIND,
    REHEARSAL_LABEL,
    SOURCE_ANNOTATION,
    SPEC_ANNOTATION,
    SWEEP_LABEL,
    Owner,
)
from tunix_rt.kuberay.options import BuildOptions
from tunix_rt.kuberay.raycluster import ray_cluster_spec
from tunix_rt.notice import RAY_HOOK, RAY_HOOK_ENV
from tunix_rt.reading import kube_yaml


def _labels(kind: str, name: str, options: BuildOptions) -> dict[str, str]:
    labels = {
        NAME_LABEL: "tunix-rt",
        MANAGED_BY_LABEL: MANAGED_BY,
        COMPONENT_LABEL: kind,
        (SWEEP_LABEL if kind == "sweep" else REHEARSAL_LABEL): label_value(name),
    }
    labels.update(options.extra_labels)
    return labels


SWEEP_WORKER_ENV = {RAY_HOOK_ENV: RAY_HOOK}
"""A sweep's Ray workers run tunix-rt's setup hook: SIGTERM (a node's preemption notice)
checkpoints the trial before the worker exits (:mod:`tunix_rt.notice`)."""


def runtime_env_yaml(env: Mapping[str, str] | None) -> str:
    """``runtimeEnvYAML``: environment variables of the Ray job (driver and trials)."""
    env_vars = {"PYTHONUNBUFFERED": "1", **(env or {})}
    return kube_yaml.dump({"env_vars": env_vars}, sort_keys=True)


def refuse_credentials(value: Any, at: str) -> None:
    """Raise :class:`ManifestError` naming every field of ``value`` (a spec, a manifest)
    that holds a credential; the values are never part of the message."""
    if isinstance(value, SweepSpec | RehearsalSpec):
        value = value.model_dump(mode="json", by_alias=True, exclude_none=True, warnings=False)
    found = spec_credentials(value)
    if found:
        errors = [(error_path(tuple(loc), at), message) for loc, message in found]
        raise ManifestError(*errors[0], errors=errors)


@dataclass(frozen=True)
class _Job:
    """What a kind of RayJob (``sweep``, ``rehearsal``) puts in the frame every one shares
    (:func:`_rayjob`)."""

    kind: str
    entrypoint: str
    deadline: int | None
    """activeDeadlineSeconds (None: none)."""
    annotations: Mapping[str, str] = field(default_factory=dict)
    """After the resolved spec's."""
    extra_spec: Mapping[str, Any] = field(default_factory=dict)
    cluster: ClusterSpec | None = None
    """The Ray cluster (default ``spec.cluster``)."""
    head_resources: Mapping[str, float] | None = None


def _rayjob(
    job: _Job,
    name: str,
    namespace: str,
    spec: SweepSpec | RehearsalSpec,
    owner: Owner,
    options: BuildOptions,
) -> dict[str, Any]:
    """The RayJob ``child_name(job.kind, name)``: labels, the resolved spec as an
    annotation (then the job's), the owner, the Ray cluster."""
    kind = job.kind
    labels = _labels(kind, name, options)
    cluster = job.cluster or spec.cluster
    job_spec: dict[str, Any] = {
        "entrypoint": job.entrypoint,
        "runtimeEnvYAML": runtime_env_yaml(
            {**SWEEP_WORKER_ENV, **(cluster.env or {})} if kind == "sweep" else cluster.env
        ),
        "shutdownAfterJobFinishes": True,
        "ttlSecondsAfterFinished": cluster.ttl_seconds_after_finished,
        "backoffLimit": 0,
        "submissionMode": "K8sJobMode",
        "rayClusterSpec": ray_cluster_spec(
            cluster, labels, options, head_resources=job.head_resources
        ),
    }
    if job.deadline is not None:
        job_spec["activeDeadlineSeconds"] = job.deadline
    job_spec.update(job.extra_spec)
    job_labels = dict(labels)
    if spec.queue_name:
        # Kueue admits it: created suspended, in the named LocalQueue. The operator never
        # touches `suspend` again (Kueue owns it from here).
        job_labels[QUEUE_LABEL] = spec.queue_name
        job_spec["suspend"] = True
    manifest = {
        "apiVersion": RAY_API_VERSION,
        "kind": RAYJOB_KIND,
        "metadata": {
            "name": child_name(kind, name),
            "namespace": namespace,
            "labels": job_labels,
            "annotations": {SPEC_ANNOTATION: spec_json(spec), **job.annotations},
            "ownerReferences": [owner.reference()],
        },
        "spec": job_spec,
    }
    refuse_credentials(manifest, "rayjob")  # whatever the spec check could not see
    return manifest


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


def sweep_entrypoint(
    spec: SweepSpec, namespace: str, name: str, warm_start_uri: str | None = None
) -> str:
    """The Tune driver command line (shell-quoted); ``warm_start_uri``: the results of the
    Sweep ``spec.warmStartFrom.sweep`` names, as the operator resolved them."""
    warm = ["--warm-start-uri", warm_start_uri] if warm_start_uri else []
    return shlex.join(
        [
            *_driver_args("tunix_rt.tune", spec, namespace, name),
            "--source", f"Sweep {namespace}/{name}",
            "--address", "auto",
            *warm,
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
    warm_start_uri: str | None = None,
) -> dict[str, Any]:
    """The RayJob of a Sweep: the Tune driver on the head, trials on the worker groups."""
    refuse_credentials(spec, "spec")
    options = options or BuildOptions()
    multihost = spec.resources.spans_hosts()
    job = _Job(
        "sweep",
        entrypoint=sweep_entrypoint(spec, namespace, name, warm_start_uri),
        deadline=sweep_deadline(spec, options.deadline_grace_seconds),
        cluster=sweep_cluster(spec),
        head_resources={TRIAL_DRIVER_RESOURCE: TRIAL_DRIVER_SLOTS} if multihost else None,
    )
    return _rayjob(job, name, namespace, spec, owner, options)


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
    spec: RehearsalSpec, namespace: str, name: str, source: SourceTrial = SourceTrial()
) -> str:
    """The rehearsal run's command line (shell-quoted); ``spec.trainer`` is resolved inline."""
    args = _driver_args("tunix_rt.rehearsal", spec, namespace, name)
    if source.sweep:
        args += ["--source-sweep", source.sweep]
    if source.trial:
        args += ["--source-trial", source.trial]
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
    source: SourceTrial = SourceTrial(),
    params: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The RayJob of a Rehearsal whose ``spec.trainer`` is already resolved inline;
    ``source`` and its ``params``: the trial it came from."""
    if spec.trainer is None:
        raise ManifestError("spec.trainer", "resolve fromSweep into an inline trainer first")
    refuse_credentials(spec, "spec")
    refuse_credentials(dict(params or {}), "params")
    options = options or BuildOptions()
    annotations: dict[str, str] = {}
    if source.sweep:
        annotations[SOURCE_ANNOTATION] = compact_json(
            {"sweep": source.sweep, "trial": source.trial, "params": dict(params or {})}
        )
    deadline = (
        spec.timeout_seconds + options.deadline_grace_seconds
        if spec.timeout_seconds is not None
        else None
    )
    job = _Job(
        "rehearsal",
        entrypoint=rehearsal_entrypoint(spec, namespace, name, source),
        deadline=deadline,
        annotations=annotations,
        extra_spec=entrypoint_resources(spec.resources),
    )
    return _rayjob(job, name, namespace, spec, owner, options)
