"""The Ray cluster a run asks for: its worker pools (cpu, gpu, tpu) and head pod."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import ConfigDict, Field, model_validator

from tunix_rt.api.base import ApiModel, cel, cel_list, cel_rules, field_error
from tunix_rt.api.errors import ManifestError
from tunix_rt.api.machines import catalog
from tunix_rt.api.pool_machine import machine_problems, pool_tpu_slice
from tunix_rt.api.quantities import (
    K8S_QUANTITY_PATTERN,
    CpuQuantity,
    MemoryQuantity,
    quantity_field,
)
from tunix_rt.api.tpu import GENERATIONS, accelerator_names


class Accelerator(StrEnum):
    CPU = "cpu"
    GPU = "gpu"
    TPU = "tpu"


def _tpu_cel() -> list[dict[str, str]]:
    """CEL mirrors of the TPU table: a known accelerator, a topology it offers."""
    names = accelerator_names()
    rules = [
        cel(
            "!has(self.tpuAccelerator) || self.tpuAccelerator in " + cel_list(names),
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
        aliases = cel_list((gen.gke_accelerator, *gen.aliases))
        guard = f"!has(self.tpuAccelerator) || !(self.tpuAccelerator in {aliases}) || "
        guard += "!has(self.tpuTopology) || "
        if gen.multi_host is not None:
            offered = [*gen.single_host, *gen.multi_host]
            rules.append(
                cel(
                    guard + "self.tpuTopology in " + cel_list(offered),
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


def _machine_cel() -> list[dict[str, str]]:
    """CEL mirrors of the machine checks: a known machine type, of the pool's accelerator
    kind, with at least gpusPerPod GPUs of gpuType; a v5e/v6e 2x4 pool names its machine."""
    machines = catalog().machines
    names = sorted(machines)
    gpus = {n: m.gpu for n, m in machines.items() if m.gpu is not None}
    tpus = [n for n, m in machines.items() if m.tpu is not None]
    cpus = [n for n, m in machines.items() if m.gpu is None and m.tpu is None]
    gpu_count = "{" + ", ".join(f"'{n}': {g.count}" for n, g in gpus.items()) + "}"
    gpu_type = "{" + ", ".join(f"'{n}': '{g.type}'" for n, g in gpus.items()) + "}"
    two_by_four = [
        name
        for gen in GENERATIONS
        if gen.multi_host is not None
        for name in (gen.gke_accelerator, *gen.aliases)
    ]
    unset = "!has(self.machineType) || "
    return [
        cel(
            unset + "self.machineType in " + cel_list(names),
            "unknown machine type; use one of " + ", ".join(names),
            ".machineType",
        ),
        cel(
            unset + f"!(self.machineType in {cel_list(gpus)}) || "
            "(has(self.accelerator) && self.accelerator == 'gpu')",
            "a GPU machine type needs accelerator: gpu",
            ".machineType",
        ),
        cel(
            unset + f"!(self.machineType in {cel_list(tpus)}) || "
            "(has(self.accelerator) && self.accelerator == 'tpu')",
            "a TPU machine type needs accelerator: tpu",
            ".machineType",
        ),
        cel(
            unset + f"!(self.machineType in {cel_list(cpus)}) || "
            "!has(self.accelerator) || self.accelerator == 'cpu'",
            "a CPU machine type is for accelerator: cpu",
            ".machineType",
        ),
        cel(
            unset + f"!has(self.gpusPerPod) || !(self.machineType in {cel_list(gpus)}) || "
            f"self.gpusPerPod <= {gpu_count}[self.machineType]",
            "gpusPerPod exceeds the GPUs of the machine type",
            ".gpusPerPod",
        ),
        cel(
            unset + f"!has(self.gpuType) || !(self.machineType in {cel_list(gpus)}) || "
            f"self.gpuType == {gpu_type}[self.machineType]",
            "gpuType differs from the GPUs of the machine type",
            ".gpuType",
        ),
        cel(
            "!has(self.tpuTopology) || self.tpuTopology != '2x4' || !has(self.tpuAccelerator) "
            f"|| !(self.tpuAccelerator in {cel_list(two_by_four)}) || has(self.machineType)",
            "a v5e/v6e 2x4 slice may be one 8-chip VM or two 4-chip VMs; set machineType",
            ".machineType",
        ),
    ]


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
            *_machine_cel(),
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
    machine_type: str | None = Field(
        None,
        max_length=64,
        description="GKE machine type of the pool's nodes (e.g. ct6e-standard-4t, "
        "g2-standard-8): sizes pods that state no cpu/memory and is checked against them.",
    )
    cpu: CpuQuantity | None = quantity_field(
        None,
        "CPU request/limit per pod (quantity). Unset: the machine's allocatable CPUs less "
        "system headroom (machineType, or the one a TPU slice or GPU type implies), else 2.",
        K8S_QUANTITY_PATTERN,
    )
    memory: MemoryQuantity | None = quantity_field(
        None,
        "Memory request/limit per pod (quantity). Unset: the machine's allocatable memory "
        "less system headroom, else 8Gi.",
        K8S_QUANTITY_PATTERN,
    )
    gpus_per_pod: int = Field(0, ge=0, le=16, description="nvidia.com/gpu per pod (gpu pools).")
    gpu_type: str | None = Field(
        None, description="Node label value of cloud.google.com/gke-accelerator, e.g. nvidia-l4."
    )
    tpu_accelerator: str | None = Field(
        None,
        max_length=64,  # bounds the cost of the pool's CEL rules on the API server
        description="GKE TPU type, e.g. tpu-v6e-slice (cloud.google.com/gke-tpu-accelerator).",
    )
    tpu_topology: str | None = Field(
        None,
        max_length=32,  # bounds the cost of the pool's CEL rules (a regex match) on the server
        pattern=r"^[0-9]+(x[0-9]+){1,2}$",
        description="TPU slice topology, e.g. 2x2 or 4x4.",
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
        for field, message in machine_problems(self):
            raise field_error(field, message, getattr(self, _snake(field)))
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
            return pool_tpu_slice(self)
        except ManifestError as exc:
            raise field_error(exc.field, exc.reason, self.tpu_topology) from None

    def pods(self) -> int:
        """The most pods the pool can have (replicas, or maxReplicas when autoscaling)."""
        return max(self.replicas, self.max_replicas or 0)


def _snake(field: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in field)


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
    head_cpu: CpuQuantity = quantity_field(
        "1", "Head pod CPU (it runs the Tune driver, no trials).", K8S_QUANTITY_PATTERN
    )
    head_memory: MemoryQuantity = quantity_field("4Gi", "Head pod memory.", K8S_QUANTITY_PATTERN)
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


def cluster_field() -> Any:
    """``spec.cluster``: the KubeRay cluster."""
    return Field(
        default_factory=ClusterSpec,
        description="The Ray cluster on Kubernetes (ignored by local runs).",
    )
