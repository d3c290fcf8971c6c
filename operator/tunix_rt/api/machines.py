"""GKE machine shapes and the simulated node pools (``gke_machines.yaml``), typed.

One data file serves admission (what a pool's pod can be on its machine), the RayJob
builder (what a pool without stated sizes asks), the simulated cluster of the tests
(``tests/support/gke_nodes.py``) and the docs. Each figure in the file names its source.
"""

from __future__ import annotations

import math
from functools import cache
from importlib import resources
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

GIB = 2**30
MIB = 2**20


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Taint(_Strict):
    key: str
    value: str
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]


class NodeConventions(_Strict):
    """Label keys, taints and resource names GKE puts on its nodes."""

    nodepool_label: str
    machine_label: str
    gpu_label: str
    gpu_taint: Taint
    tpu_accelerator_label: str
    tpu_topology_label: str
    tpu_taint: Taint
    gpu_resource: str
    tpu_resource: str


class Reservations(_Strict):
    """GKE Standard's reservations: tiers of (size, fraction reserved); last size None."""

    source: str
    checked: str
    cpu_cores: list[tuple[float | None, float]]
    memory_gib: list[tuple[float | None, float]]
    small_machine_memory_mib: int
    eviction_threshold_mib: int


class Headroom(_Strict):
    cpu: float = Field(ge=0)
    memory_gib: float = Field(ge=0)


class GpuSpec(_Strict):
    type: str
    count: int = Field(ge=1)


class TpuSpec(_Strict):
    accelerator: str
    chips: int = Field(ge=1)
    single_host: list[str]
    multi_host: list[str]
    """Multi-host topologies built from VMs of this type; ``["any"]``: any valid 3D one."""

    def serves(self, topology: str, hosts: int) -> bool:
        """Whether a slice of ``topology`` over ``hosts`` VMs is built from this machine."""
        if hosts == 1:
            return topology in self.single_host
        return "any" in self.multi_host or topology in self.multi_host


class Machine(_Strict):
    """One Compute Engine machine type as a GKE node: capacity and accelerators."""

    name: str = ""
    vcpus: int = Field(ge=1)
    memory_gib: float = Field(gt=0)
    gpu: GpuSpec | None = None
    tpu: TpuSpec | None = None
    source: str
    checked: Literal["excerpt", "catalog", "recalled"]

    @property
    def memory_bytes(self) -> int:
        return int(self.memory_gib * GIB)

    @property
    def accelerators(self) -> int:
        return self.gpu.count if self.gpu else self.tpu.chips if self.tpu else 0


class NodePoolShape(_Strict):
    """One simulated GKE node pool: ``nodes`` VMs of ``machine`` (a TPU slice: its hosts)."""

    machine: str
    nodes: int = Field(ge=1)
    topology: str | None = None


class Catalog(_Strict):
    """The whole data file."""

    sources: dict[str, str]
    node_conventions: NodeConventions
    reservations: Reservations
    daemonset_headroom: Headroom
    machines: dict[str, Machine]
    gpu_defaults: dict[str, dict[str, str]]
    node_pools: dict[str, NodePoolShape]

    @model_validator(mode="after")
    def _consistent(self) -> Catalog:
        for name, machine in self.machines.items():
            if machine.source not in self.sources:
                raise ValueError(f"machine {name}: unknown source {machine.source!r}")
            object.__setattr__(machine, "name", name)
        for gpu, by_count in self.gpu_defaults.items():
            for count, name in by_count.items():
                m = self.machines.get(name)
                if m is None or m.gpu is None or (m.gpu.type, m.gpu.count) != (gpu, int(count)):
                    raise ValueError(f"gpu_defaults {gpu} x{count}: {name} is not such a machine")
        for name, pool in self.node_pools.items():
            if pool.machine not in self.machines:
                raise ValueError(f"node pool {name}: unknown machine {pool.machine!r}")
        return self

    def allocatable(self, machine: Machine) -> tuple[float, int]:
        """(CPUs, memory bytes) GKE leaves to pods on ``machine`` (capacity - reserved -
        eviction threshold), per ``reservations``."""
        res = self.reservations
        cpu = machine.vcpus - _tiered(machine.vcpus, res.cpu_cores)
        if machine.memory_gib < 1:
            reserved = res.small_machine_memory_mib * MIB
        else:
            reserved = int(_tiered(machine.memory_gib, res.memory_gib) * GIB)
        memory = machine.memory_bytes - reserved - res.eviction_threshold_mib * MIB
        return round(cpu, 3), memory

    def pod_share(self, machine: Machine, pods_per_node: int = 1) -> tuple[int, int]:
        """(whole CPUs, bytes in whole GiB) one of ``pods_per_node`` pods may ask on
        ``machine``: allocatable less the DaemonSet headroom, split evenly, rounded down."""
        cpu, memory = self.allocatable(machine)
        head = self.daemonset_headroom
        cpus = math.floor((cpu - head.cpu) / pods_per_node)
        gib = math.floor((memory / GIB - head.memory_gib) / pods_per_node)
        return max(cpus, 0), max(gib, 0) * GIB

    def tpu_machines(self, accelerator: str, topology: str, hosts: int) -> list[Machine]:
        """Machine types GKE builds a ``topology`` slice of ``hosts`` VMs from."""
        return [
            m
            for m in self.machines.values()
            if m.tpu and m.tpu.accelerator == accelerator and m.tpu.serves(topology, hosts)
        ]

    def gpu_default(self, gpu_type: str, count: int) -> Machine | None:
        name = self.gpu_defaults.get(gpu_type, {}).get(str(count))
        return self.machines[name] if name else None


def _tiered(amount: float, tiers: list[tuple[float | None, float]]) -> float:
    """Sum of fraction x the part of ``amount`` in each tier."""
    total, left = 0.0, amount
    for size, fraction in tiers:
        part = left if size is None else min(left, size)
        total += part * fraction
        left -= part
        if left <= 0:
            break
    return total


@cache
def catalog() -> Catalog:
    """The data file, parsed and checked once."""
    text = resources.files("tunix_rt.api").joinpath("gke_machines.yaml").read_text("utf-8")
    return Catalog.model_validate(yaml.safe_load(text))


def machine_names() -> list[str]:
    """Every machine type the data file knows (admission accepts these as machineType)."""
    return sorted(catalog().machines)
