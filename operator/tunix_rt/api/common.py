"""Pieces shared by the Sweep and Rehearsal resources: metadata, pools, conditions, phases."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tunix_rt.api.base import ApiModel, cel, cel_rules, field_error

GROUP = "tunixrt.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
CATEGORY = "tunixrt"

DEFAULT_STORAGE = "file://./runs"
"""The embedded default: a local folder as the object store."""
RUNTIME_DEFAULT = "x-tunix-rt-runtime-default"
"""Schema marker: the default is chosen at run time (the operator's configured storage, or
the local folder), so the CRD must not let the API server fill it in."""

STORAGE_SCHEMES = ("file://", "s3://", "gs://")
STORAGE_PATTERN = r"^(file|s3|gs)://.+$"
"""Pattern of a storage URI in the CRDs (pydantic checks it with ``check_storage``)."""

QUANTITY_PATTERN = r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$"
_QUANTITY_FACTORS = {
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}


def check_storage(field: str, value: str) -> None:
    """Raise a field error unless ``value`` is a file://, s3:// or gs:// URI."""
    if not value.startswith(STORAGE_SCHEMES) or value in STORAGE_SCHEMES:
        raise field_error(field, "storage must be a file://, s3:// or gs:// URI", value)


def quantity_bytes(quantity: str) -> int:
    """A Kubernetes memory quantity (``4Gi``, ``512M``, ``1000``) in bytes."""
    number = quantity.rstrip("KMGTik")
    suffix = quantity[len(number) :]
    if suffix not in _QUANTITY_FACTORS:
        raise ValueError(f"not a memory quantity: {quantity!r}")
    return int(float(number) * _QUANTITY_FACTORS[suffix])


class ObjectMeta(BaseModel):
    """The slice of Kubernetes metadata tunix-rt reads; everything else is kept as given."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(
        min_length=1,
        max_length=63,
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        description="DNS-1123 label: lowercase letters, digits and '-'.",
    )
    namespace: str | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


class Phase(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


TERMINAL_PHASES = frozenset({Phase.SUCCEEDED, Phase.FAILED})


class Condition(ApiModel):
    """A standard Kubernetes condition (Ready, Progressing, Failed)."""

    type: str = Field(description="Condition type, e.g. Ready, Progressing, Failed.")
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str = Field(
        pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
        description="CamelCase reason for the last transition.",
    )
    message: str = Field("", description="Human-readable details.")
    last_transition_time: datetime | None = Field(None, description="When the status last changed.")
    observed_generation: int | None = Field(
        None, description="metadata.generation the condition was set for."
    )


class Accelerator(StrEnum):
    CPU = "cpu"
    GPU = "gpu"
    TPU = "tpu"


class TrialResources(ApiModel):
    """What one trial reserves on a Ray node (Ray Tune resources per trial)."""

    cpu: float = Field(1.0, gt=0, le=512, description="CPUs per trial.")
    memory: str | None = Field(
        None,
        pattern=QUANTITY_PATTERN,
        description="Memory per trial as a Kubernetes quantity (e.g. 4Gi).",
    )
    gpu: float = Field(0, ge=0, le=16, description="GPUs per trial (fractions share a GPU).")
    tpu: int = Field(0, ge=0, le=256, description="TPU chips per trial.")


class NodePool(ApiModel):
    """One Ray worker group: a kind of node the trials run on."""

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            cel(
                "!has(self.accelerator) || self.accelerator != 'tpu' || "
                "(has(self.tpuAccelerator) && has(self.tpuTopology))",
                "a tpu pool needs tpuAccelerator (e.g. tpu-v6e-slice) and tpuTopology (e.g. 2x2)",
                ".accelerator",
            ),
            cel(
                "!has(self.accelerator) || self.accelerator != 'gpu' || "
                "(has(self.gpusPerPod) && self.gpusPerPod >= 1)",
                "a gpu pool needs gpusPerPod >= 1",
                ".gpusPerPod",
            ),
            cel(
                "(has(self.accelerator) && self.accelerator == 'gpu') || "
                "!has(self.gpusPerPod) || self.gpusPerPod == 0",
                "gpusPerPod is only valid with accelerator: gpu",
                ".gpusPerPod",
            ),
        )
    )

    name: str = Field(
        "workers",
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        max_length=40,
        description="Worker group name.",
    )
    accelerator: Accelerator = Field(Accelerator.CPU, description="cpu, gpu or tpu.")
    replicas: int = Field(1, ge=0, le=1000, description="Worker pods (TPU: slices).")
    min_replicas: int | None = Field(None, ge=0, description="Autoscaling floor.")
    max_replicas: int | None = Field(None, ge=0, description="Autoscaling ceiling.")
    cpu: str = Field("2", description="CPU request/limit per pod (quantity).")
    memory: str = Field("8Gi", description="Memory request/limit per pod (quantity).")
    gpus_per_pod: int = Field(0, ge=0, le=16, description="nvidia.com/gpu per pod (gpu pools).")
    gpu_type: str | None = Field(
        None, description="Node label value of cloud.google.com/gke-accelerator, e.g. nvidia-l4."
    )
    tpu_accelerator: str | None = Field(
        None,
        description="GKE TPU type, e.g. tpu-v6e-slice (cloud.google.com/gke-tpu-accelerator).",
    )
    tpu_topology: str | None = Field(
        None, pattern=r"^[0-9]+(x[0-9]+){1,2}$", description="TPU slice topology, e.g. 2x2 or 4x4."
    )
    image: str | None = Field(None, description="Trainer image; default chosen per accelerator.")
    node_selector: dict[str, str] | None = Field(None, description="Extra node selector labels.")

    @model_validator(mode="after")
    def _accelerator_fields(self) -> NodePool:
        if self.accelerator is Accelerator.TPU and not (self.tpu_accelerator and self.tpu_topology):
            raise field_error(
                "tpuAccelerator" if not self.tpu_accelerator else "tpuTopology",
                "a tpu pool needs tpuAccelerator (e.g. tpu-v6e-slice) and tpuTopology (e.g. 2x2)",
            )
        if self.accelerator is Accelerator.GPU and self.gpus_per_pod < 1:
            raise field_error("gpusPerPod", "a gpu pool needs gpusPerPod >= 1", self.gpus_per_pod)
        if self.accelerator is not Accelerator.GPU and self.gpus_per_pod:
            raise field_error(
                "gpusPerPod", "gpusPerPod is only valid with accelerator: gpu", self.gpus_per_pod
            )
        return self


class ClusterSpec(ApiModel):
    """The Ray cluster a sweep or rehearsal runs on (KubeRay); ignored by local runs."""

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            cel(
                "!has(self.pools) || self.pools.all(p, self.pools.exists_one(q, "
                "(has(q.name) ? q.name : 'workers') == (has(p.name) ? p.name : 'workers')))",
                "pool names must be unique",
                ".pools",
            )
        )
    )

    ray_version: str = Field("2.60.0", description="Ray version in the images.")
    image: str | None = Field(None, description="Head image; default from the operator config.")
    head_cpu: str = Field("1", description="Head pod CPU (it runs the Tune driver, no trials).")
    head_memory: str = Field("4Gi", description="Head pod memory.")
    pools: list[NodePool] = Field(
        default_factory=lambda: [NodePool()],
        min_length=1,
        max_length=8,
        description="Worker groups; one per node pool kind.",
    )
    service_account: str | None = Field(
        None, description="Pod service account (workload identity)."
    )
    env: dict[str, str] | None = Field(None, description="Extra environment for the Ray job.")
    ttl_seconds_after_finished: int = Field(600, ge=0, description="Keep the finished RayJob.")

    @model_validator(mode="after")
    def _unique_pool_names(self) -> ClusterSpec:
        names = [p.name for p in self.pools]
        if len(names) != len(set(names)):
            raise field_error("pools", f"pool names must be unique, got {names}", names)
        return self


# Fields both specs (Sweep, Rehearsal) declare: helpers rather than a base class, because
# each spec places them at its own position and the CRD lists properties in field order.


def resources_field(holder: str) -> Any:
    """``spec.resources``: what ``holder`` (one trial, the run) reserves."""
    return Field(
        default_factory=TrialResources,
        description=f"What {holder} reserves (cpu, memory, gpu, tpu).",
    )


def cluster_field() -> Any:
    """``spec.cluster``: the KubeRay cluster."""
    return Field(
        default_factory=ClusterSpec,
        description="The Ray cluster on Kubernetes (ignored by local runs).",
    )


def storage_field(contents: str) -> Any:
    """``spec.storage``: the store URI for ``contents``; its default is chosen at run time."""
    return Field(
        DEFAULT_STORAGE,
        description=f"Store URI for {contents}: file://, s3:// or gs://.",
        json_schema_extra={"pattern": STORAGE_PATTERN, RUNTIME_DEFAULT: True},
    )


class RunStatus(ApiModel):
    """The first status fields of both resources (each adds its own after them)."""

    phase: Phase = Field(Phase.PENDING, description="Pending, Running, Succeeded or Failed.")
    message: str | None = Field(None, description="Human-readable state or failure reason.")
    conditions: list[Condition] = Field(
        default_factory=list, description="Ready, Progressing and Failed conditions."
    )
    observed_generation: int | None = Field(
        None, description="metadata.generation of the spec this status describes."
    )


SpecT = TypeVar("SpecT", bound=BaseModel)
StatusT = TypeVar("StatusT", bound=BaseModel)


class Resource(ApiModel, Generic[SpecT, StatusT]):
    """A full manifest as applied with kubectl; each kind pins ``kind`` to its name."""

    api_version: Literal["tunixrt.io/v1alpha1"] = "tunixrt.io/v1alpha1"
    kind: str
    metadata: ObjectMeta
    spec: SpecT
    status: StatusT | None = None
