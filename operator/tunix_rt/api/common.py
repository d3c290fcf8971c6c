"""Pieces shared by the Sweep and Rehearsal resources: metadata, pools, conditions, phases."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from tunix_rt.api.base import ApiModel, cel, cel_rules, field_error
from tunix_rt.api.errors import ManifestError
from tunix_rt.api.tpu import GENERATIONS, accelerator_names, tpu_slice

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
STORAGE_PATTERN = r"^(file://.+|(s3|gs)://[^/]+(/.*)?)$"
"""Pattern of a storage URI in the CRDs (pydantic checks it with ``check_storage``): a
bucket stores need their bucket (``s3:///prefix`` has none)."""

QUANTITY_PATTERN = r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$"
"""A memory quantity of a trial (``4Gi``, ``512M``): what Ray Tune's memory resource takes."""
K8S_QUANTITY_PATTERN = (
    r"^(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
"""A non-negative Kubernetes resource.Quantity, as the API server reads pod requests."""
_K8S_QUANTITY = re.compile(K8S_QUANTITY_PATTERN)
_QUANTITY_SUFFIXES = {
    "": 1.0,
    "n": 1e-9,
    "u": 1e-6,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
    **{f"{s}i": float(2 ** (10 * (i + 1))) for i, s in enumerate("KMGTPE")},
}
NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
NAME_MAX = 253
NAME_RULE = (
    "a lowercase DNS-1123 name (a-z, 0-9, '-' and '.', starting and ending with a letter or "
    f"digit, at most {NAME_MAX} characters), e.g. sweep-smoke"
)
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
    """Raise a field error unless ``value`` is a file://, s3:// or gs:// URI (with a bucket)."""
    if not value.startswith(STORAGE_SCHEMES) or value in STORAGE_SCHEMES:
        raise field_error(
            field,
            f"{value!r} is not a store URI; use file://PATH, s3://BUCKET/PREFIX or "
            "gs://BUCKET/PREFIX",
            value,
        )
    scheme, _, rest = value.partition("://")
    if scheme in ("s3", "gs") and "@" in rest.split("/", 1)[0]:
        # Never echo the value: it holds a credential, which would land in the spec,
        # the status, the RayJob and the evidence.
        raise field_error(
            field,
            f"a {scheme}:// URI must not carry credentials (user:secret@); put them in a "
            "Secret (the chart's storage.credentialsSecret) and use "
            f"{scheme}://BUCKET/PREFIX",
            None,
        )
    if scheme in ("s3", "gs") and ("?" in rest or "#" in rest):
        raise field_error(
            field,
            f"a {scheme}:// URI takes no query string or fragment (region, endpoint and "
            "credentials come from the environment or the Secret); use "
            f"{scheme}://BUCKET/PREFIX",
            None,
        )
    if scheme in ("s3", "gs") and not rest.split("/", 1)[0]:
        raise field_error(
            field,
            f"{value!r} names no bucket; use {scheme}://BUCKET/PREFIX",
            value,
        )


def quantity_value(quantity: str) -> float:
    """A Kubernetes quantity as a number: ``500m`` -> 0.5, ``8Gi`` -> 8589934592."""
    text = quantity.strip()
    if not _K8S_QUANTITY.match(text):
        raise ValueError(f"not a quantity: {quantity!r}")
    match = re.match(r"^([0-9.]+)(.*)$", text)
    assert match is not None
    number, suffix = match.groups()
    if suffix[:1] in ("e", "E"):
        return float(number + suffix)
    return float(number) * _QUANTITY_SUFFIXES[suffix]


def _quantity_check(example: str, pattern: re.Pattern[str]) -> AfterValidator:
    def check(value: str) -> str:
        if not pattern.match(value):
            raise ValueError(f"{value!r} is not a quantity; use a quantity such as {example}")
        return value

    return AfterValidator(check)


def _quantity_field(default: str | None, description: str, pattern: str) -> Any:
    return Field(default, description=description, json_schema_extra={"pattern": pattern})


CpuQuantity = Annotated[str, _quantity_check("2 or 500m", _K8S_QUANTITY)]
"""A pod's CPU request (Kubernetes quantity)."""
MemoryQuantity = Annotated[str, _quantity_check("4Gi", _K8S_QUANTITY)]
"""A pod's memory request (Kubernetes quantity)."""
TrialMemory = Annotated[str, _quantity_check("4Gi", re.compile(QUANTITY_PATTERN))]
"""A trial's memory (``QUANTITY_PATTERN``)."""


def check_name(value: str) -> str:
    """A DNS-1123 object name, or a ValueError that says what one is."""
    if len(value) > NAME_MAX or not re.match(NAME_PATTERN, value):
        raise ValueError(f"{value!r} is not {NAME_RULE}")
    return value


SEED_MAX = 2**32 - 1
"""Largest seed numpy's and JAX's generators take (the CRD says so too)."""


def _check_namespace(value: str) -> str:
    if len(value) > 63 or not re.match(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", value):
        raise ValueError(
            f"{value!r} is not a namespace name (a lowercase DNS-1123 label: a-z, 0-9 and "
            "'-', starting and ending with a letter or digit, at most 63 characters)"
        )
    return value


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

    name: Annotated[str, AfterValidator(check_name)] = Field(
        description="DNS-1123 name: lowercase letters, digits, '-' and '.'.",
    )
    namespace: Annotated[str, AfterValidator(_check_namespace)] | None = None
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
    memory: TrialMemory | None = _quantity_field(
        None, "Memory per trial as a Kubernetes quantity (e.g. 4Gi).", QUANTITY_PATTERN
    )
    gpu: float = Field(0, ge=0, le=16, description="GPUs per trial (fractions share a GPU).")
    tpu: int = Field(0, ge=0, le=256, description="TPU chips per trial.")


def _tpu_cel() -> list[dict[str, str]]:
    """CEL mirrors of the TPU table: a known accelerator, a topology it offers."""
    names = accelerator_names()
    rules = [
        cel(
            "!has(self.tpuAccelerator) || self.tpuAccelerator in "
            + "["
            + ", ".join(f"'{n}'" for n in names)
            + "]",
            "unknown TPU accelerator; use one of "
            + ", ".join(g.gke_accelerator for g in GENERATIONS),
            ".tpuAccelerator",
        ),
        cel(
            "(has(self.accelerator) && self.accelerator == 'tpu') || "
            "(!has(self.tpuAccelerator) && !has(self.tpuTopology))",
            "tpuAccelerator and tpuTopology are only valid with accelerator: tpu",
            ".tpuAccelerator",
        ),
    ]
    for gen in GENERATIONS:
        aliases = ", ".join(f"'{n}'" for n in (gen.gke_accelerator, *gen.aliases))
        guard = f"!has(self.tpuAccelerator) || !(self.tpuAccelerator in [{aliases}]) || "
        guard += "!has(self.tpuTopology) || "
        if gen.multi_host is not None:
            offered = [*gen.single_host, *gen.multi_host]
            rules.append(
                cel(
                    guard + "self.tpuTopology in [" + ", ".join(f"'{t}'" for t in offered) + "]",
                    f"{gen.gke_accelerator} offers the topologies {', '.join(offered)}",
                    ".tpuTopology",
                )
            )
        else:
            rules.append(
                cel(
                    guard + "self.tpuTopology.matches('^[0-9]+x[0-9]+x[0-9]+$')",
                    f"{gen.gke_accelerator} topologies take 3 dimensions, e.g. 2x2x2",
                    ".tpuTopology",
                )
            )
    return rules


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
            cel(
                "!has(self.minReplicas) || self.minReplicas <= "
                "(has(self.replicas) ? self.replicas : 1)",
                "minReplicas must not exceed replicas",
                ".minReplicas",
            ),
            cel(
                "!has(self.maxReplicas) || self.maxReplicas >= "
                "(has(self.replicas) ? self.replicas : 1)",
                "maxReplicas must not be below replicas",
                ".maxReplicas",
            ),
            *_tpu_cel(),
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
    cpu: CpuQuantity = _quantity_field(
        "2", "CPU request/limit per pod (quantity).", K8S_QUANTITY_PATTERN
    )
    memory: MemoryQuantity = _quantity_field(
        "8Gi", "Memory request/limit per pod (quantity).", K8S_QUANTITY_PATTERN
    )
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
        if self.accelerator is not Accelerator.TPU and (self.tpu_accelerator or self.tpu_topology):
            raise field_error(
                "tpuAccelerator" if self.tpu_accelerator else "tpuTopology",
                "tpuAccelerator and tpuTopology are only valid with accelerator: tpu; "
                "set accelerator: tpu or remove them",
            )
        if self.accelerator is Accelerator.TPU:
            self.tpu_shape()
        low, high = self.min_replicas, self.max_replicas
        if low is not None and low > self.replicas:
            raise field_error(
                "minReplicas",
                f"minReplicas ({low}) exceeds replicas ({self.replicas}); lower minReplicas "
                f"to at most {self.replicas} or raise replicas",
                low,
            )
        if high is not None and high < self.replicas:
            raise field_error(
                "maxReplicas",
                f"maxReplicas ({high}) is below replicas ({self.replicas}); raise maxReplicas "
                f"to at least {self.replicas} or lower replicas",
                high,
            )
        return self

    def tpu_shape(self) -> Any:
        """The TPU slice of a tpu pool (a field error naming what the table refuses)."""
        accelerator = self.tpu_accelerator or ""
        if accelerator not in accelerator_names():
            known = ", ".join(g.gke_accelerator for g in GENERATIONS)
            short = ", ".join(g.name for g in GENERATIONS)
            raise field_error(
                "tpuAccelerator",
                f"unknown TPU accelerator {accelerator!r}; use one of {known} (or {short})",
                accelerator,
            )
        try:
            return tpu_slice(accelerator, self.tpu_topology or "")
        except ManifestError as exc:
            raise field_error(exc.field, exc.reason, self.tpu_topology) from None

    def pods(self) -> int:
        """The most pods the pool can have (replicas, or maxReplicas when autoscaling)."""
        return max(self.replicas, self.max_replicas or 0)


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
    head_cpu: CpuQuantity = _quantity_field(
        "1", "Head pod CPU (it runs the Tune driver, no trials).", K8S_QUANTITY_PATTERN
    )
    head_memory: MemoryQuantity = _quantity_field("4Gi", "Head pod memory.", K8S_QUANTITY_PATTERN)
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

    def declares_pools(self) -> bool:
        """Whether the spec itself names its pools (not the implicit one CPU pool that the
        operator may replace with its default pools, and that local runs ignore)."""
        return "pools" in self.model_fields_set and self.pools != [NodePool()]


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


QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
"""The label by which Kueue queues a job (here: the RayJob) in a LocalQueue."""


def queue_field() -> Any:
    """``spec.queueName``: the Kueue LocalQueue the RayJob waits in (None: no queue)."""
    return Field(
        None,
        max_length=63,
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        description="Kueue LocalQueue (same namespace) that admits the RayJob: it is "
        "created suspended with the kueue.x-k8s.io/queue-name label and starts when Kueue "
        "admits it. Unset: the operator's default queue, else none.",
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
