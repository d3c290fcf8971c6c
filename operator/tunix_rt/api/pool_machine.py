"""The GKE machine a pool's pods run on, and what one pod of the pool asks.

A pool may name its ``machineType`` (a machine of ``gke_machines.yaml``). Without one, a TPU
pool's machine follows from its slice when GKE builds that slice from one machine type only
(a v6e 2x2 is one ct6e-standard-4t; a v5e/v6e 2x4 is one 8-chip VM or two 4-chip VMs, so such
a pool must name it), and a GPU pool with ``gpuType`` takes the data file's default machine
for that many GPUs (tunix-rt's assumption, said in admission's messages). CPU pools have no
assumed machine.

A pool that states ``cpu``/``memory`` asks that per pod. One that does not asks its
machine's share: GKE's allocatable less a DaemonSet headroom, split over the pods one node
holds (a TPU host holds one pod, which takes all its chips; a 4-GPU node holds 4 pods of 1
GPU). Without a machine it asks the old defaults, 2 CPUs and 8Gi. The RayJob builder requests
exactly this, and Ray sizes its node by it, so admission checks trials against the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from tunix_rt.api.errors import ManifestError
from tunix_rt.api.machines import GIB, Machine, catalog
from tunix_rt.api.quantities import quantity_value
from tunix_rt.api.tpu import TpuSlice, generation_for, tpu_slice

if TYPE_CHECKING:
    from tunix_rt.api.cluster import NodePool

DEFAULT_CPU = "2"
DEFAULT_MEMORY = "8Gi"
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"
"""Node label holding the machine type on GKE nodes (Kubernetes well-known label)."""


def tpu_machines(accelerator: str, topology: str) -> list[Machine]:
    """Machine types GKE builds an ``accelerator`` ``topology`` slice from (plan-tpus:
    https://cloud.google.com/kubernetes-engine/docs/concepts/plan-tpus)."""
    gen = generation_for(accelerator)
    base = tpu_slice(accelerator, topology)
    out = []
    for m in catalog().machines.values():
        if m.tpu is None or m.tpu.accelerator != gen.gke_accelerator or base.chips % m.tpu.chips:
            continue
        if m.tpu.serves(base.topology, base.chips // m.tpu.chips):
            out.append(m)
    return out


def pool_machine(pool: NodePool) -> tuple[Machine | None, str]:
    """The pool's machine and how it was chosen (for messages); (None, "") when unknown."""
    cat = catalog()
    if pool.machine_type:
        machine = cat.machines.get(pool.machine_type)
        return (machine, f"machineType {pool.machine_type}") if machine else (None, "")
    if pool.tpu_accelerator and pool.tpu_topology:
        try:
            found = tpu_machines(pool.tpu_accelerator, pool.tpu_topology)
        except ManifestError:
            return None, ""
        if len(found) == 1:
            gen = generation_for(pool.tpu_accelerator)
            return found[0], f"GKE builds {gen.gke_accelerator} {pool.tpu_topology} from it"
        return None, ""
    if pool.gpu_type and pool.gpus_per_pod:
        machine = cat.gpu_default(pool.gpu_type, pool.gpus_per_pod)
        if machine is not None:
            return machine, (
                f"assumed for {pool.gpus_per_pod} {pool.gpu_type}; set machineType to change"
            )
    return None, ""


def gpu_machines_holding(gpu_type: str, gpus: int, cpu: float, memory: int) -> list[Machine]:
    """Known machines with ``gpus`` or more ``gpu_type`` GPUs whose allocatable holds a pod
    of ``cpu`` and ``memory`` bytes, smallest first."""
    cat = catalog()
    found = []
    for m in cat.machines.values():
        if m.gpu is None or m.gpu.type != gpu_type or m.gpu.count < gpus:
            continue
        free_cpu, free_memory = cat.allocatable(m)
        if cpu <= free_cpu + 1e-9 and memory <= free_memory:
            found.append(m)
    return sorted(found, key=lambda m: (m.vcpus, m.memory_gib))


def pool_tpu_slice(
    pool: NodePool,
    *,
    accelerator_field: str = "tpuAccelerator",
    topology_field: str = "tpuTopology",
) -> TpuSlice:
    """The pool's slice as GKE builds it on the pool's machine type: a v6e 2x4 on
    ct6e-standard-4t is 2 hosts of 4 chips, not the 1 host of 8 the topology alone implies."""
    base = tpu_slice(
        pool.tpu_accelerator or "",
        pool.tpu_topology or "",
        accelerator_field=accelerator_field,
        topology_field=topology_field,
    )
    machine = catalog().machines.get(pool.machine_type or "")
    if machine is None or machine.tpu is None or machine.tpu.chips == base.chips_per_host:
        return base
    if base.chips % machine.tpu.chips:
        return base  # NodePool's validation refuses the pair
    return replace(base, hosts=base.chips // machine.tpu.chips, chips_per_host=machine.tpu.chips)


def machine_problems(pool: NodePool) -> list[tuple[str, str]]:
    """``(field, message)`` for a ``machineType`` that contradicts the pool's accelerator, or
    a pool that must name one (GKE rules a scheduler alone does not enforce)."""
    if pool.machine_type is None:
        return _ambiguous_slice(pool)
    machine = catalog().machines.get(pool.machine_type)
    if machine is None:
        known = ", ".join(sorted(catalog().machines))
        return [("machineType", f"unknown machine type {pool.machine_type!r}; use one of {known}")]
    kind = "tpu" if machine.tpu else "gpu" if machine.gpu else "cpu"
    if kind != pool.accelerator.value:
        return [
            (
                "machineType",
                f"{machine.name} is a {kind.upper()} machine but the pool has accelerator: "
                f"{pool.accelerator.value}; use a {pool.accelerator.value.upper()} machine type "
                f"or set accelerator: {kind}",
            )
        ]
    if machine.gpu is not None:
        return _gpu_problems(pool, machine)
    if machine.tpu is not None:
        return _tpu_problems(pool, machine)
    return []


def _gpu_problems(pool: NodePool, machine: Machine) -> list[tuple[str, str]]:
    assert machine.gpu is not None
    if pool.gpu_type and pool.gpu_type != machine.gpu.type:
        return [
            (
                "gpuType",
                f"gpuType {pool.gpu_type} but {machine.name} has {machine.gpu.type} GPUs; "
                f"set gpuType: {machine.gpu.type} or leave it out",
            )
        ]
    if pool.gpus_per_pod > machine.gpu.count:
        return [
            (
                "gpusPerPod",
                f"gpusPerPod ({pool.gpus_per_pod}) exceeds the {machine.gpu.count} GPU"
                f"{'s' if machine.gpu.count > 1 else ''} of a {machine.name} node; lower "
                "gpusPerPod or choose a larger machineType",
            )
        ]
    return []


def _tpu_problems(pool: NodePool, machine: Machine) -> list[tuple[str, str]]:
    assert machine.tpu is not None
    try:
        gen = generation_for(pool.tpu_accelerator or "")
        found = tpu_machines(pool.tpu_accelerator or "", pool.tpu_topology or "")
    except ManifestError:
        return []  # the pool's own TPU checks say what is wrong
    if gen.gke_accelerator != machine.tpu.accelerator:
        return [
            (
                "machineType",
                f"{machine.name} carries {machine.tpu.accelerator} chips, not "
                f"{gen.gke_accelerator}; use one of {_names(found)}",
            )
        ]
    if machine not in found:
        # GKE: a container that requests TPUs requests all the chips of its node, so a
        # slice's hosts are whole VMs of one type
        # (https://cloud.google.com/kubernetes-engine/docs/how-to/tpus).
        return [
            (
                "machineType",
                f"GKE builds a {gen.gke_accelerator} {pool.tpu_topology} slice from "
                f"{_names(found)}, not from {machine.name} ({machine.tpu.chips} chips per VM)",
            )
        ]
    return []


def _ambiguous_slice(pool: NodePool) -> list[tuple[str, str]]:
    """A v5e/v6e 2x4 slice is one 8-chip VM or two 4-chip VMs; the
    cloud.google.com/gke-tpu-topology label is 2x4 on both, so the pool must say which
    (https://cloud.google.com/kubernetes-engine/docs/concepts/plan-tpus)."""
    if not (pool.tpu_accelerator and pool.tpu_topology):
        return []
    try:
        found = tpu_machines(pool.tpu_accelerator, pool.tpu_topology)
    except ManifestError:
        return []
    if len(found) < 2:
        return []
    ways = " or ".join(
        f"{tpu_slice(pool.tpu_accelerator, pool.tpu_topology).chips // m.tpu.chips} x "
        f"{m.name} ({m.tpu.chips} chips each)"
        for m in found
        if m.tpu is not None
    )
    return [
        (
            "machineType",
            f"a {pool.tpu_accelerator} {pool.tpu_topology} slice may be {ways}, and the "
            "node labels do not say which; set machineType to the one your node pool uses",
        )
    ]


def _names(machines: list[Machine]) -> str:
    return " or ".join(m.name for m in machines) or "no machine type tunix-rt knows"


@dataclass(frozen=True)
class PodSize:
    """What one pod of a pool requests (= its limits, = what Ray sees), and why."""

    cpu: float
    memory: int
    cpu_quantity: str
    memory_quantity: str
    cpu_note: str
    """Empty when the pool states cpu; else where the figure comes from."""
    memory_note: str
    machine: Machine | None
    machine_note: str
    pods_per_node: int
    machine_certain: bool = False
    """The machine is named (machineType) or the only one GKE builds the TPU slice from;
    an assumed GPU machine only sizes pods that state nothing, it never refuses a size."""


def pods_per_node(pool: NodePool, machine: Machine | None) -> int:
    """Pods of the pool one node of ``machine`` holds by accelerators (TPU: one, which
    takes all the host's chips; GPU: the node's GPUs / gpusPerPod; CPU: one)."""
    if machine is not None and machine.gpu is not None and pool.gpus_per_pod:
        return max(machine.gpu.count // pool.gpus_per_pod, 1)
    return 1


def pod_size(pool: NodePool) -> PodSize:
    """The pod a pool's worker group requests (quantities as the builder writes them).
    Raises ValueError for a stated quantity that is not one."""
    machine, how = pool_machine(pool)
    per_node = pods_per_node(pool, machine)
    share = catalog().pod_share(machine, per_node) if machine is not None else None
    split = f" / {per_node} pods per node" if per_node > 1 else ""
    if pool.cpu is not None:
        cpu_q, cpu_note = pool.cpu, ""
    elif share is not None and machine is not None:
        cpu_q = str(share[0])
        cpu_note = f"not stated: {machine.name}'s allocatable less system headroom{split}"
    else:
        cpu_q, cpu_note = DEFAULT_CPU, "not stated: the default"
    if pool.memory is not None:
        mem_q, mem_note = pool.memory, ""
    elif share is not None and machine is not None:
        mem_q = f"{share[1] // GIB}Gi"
        mem_note = f"not stated: {machine.name}'s allocatable less system headroom{split}"
    else:
        mem_q, mem_note = DEFAULT_MEMORY, "not stated: the default"
    return PodSize(
        cpu=quantity_value(cpu_q),
        memory=int(quantity_value(mem_q)),
        cpu_quantity=cpu_q,
        memory_quantity=mem_q,
        cpu_note=cpu_note,
        memory_note=mem_note,
        machine=machine,
        machine_note=how,
        pods_per_node=per_node,
        machine_certain=machine is not None and not how.startswith("assumed"),
    )


def machine_fit_problems(pools: Sequence[NodePool], prefix: str = "spec") -> list[tuple[str, str]]:
    """A pool whose stated cpu or memory exceeds what GKE leaves to pods on its machine
    (allocatable: capacity less GKE's reservations,
    https://cloud.google.com/kubernetes-engine/docs/concepts/plan-node-sizes): its pods
    never schedule. Pools whose machine is not known for certain (no machineType; a GPU
    pool's assumed machine) are not checked on these axes: the cluster may have larger
    nodes."""
    out: list[tuple[str, str]] = []
    top = f"{prefix}.cluster" if prefix else "cluster"
    for i, pool in enumerate(pools):
        try:
            size = pod_size(pool)
        except ValueError:
            continue
        machine = size.machine
        if machine is None or not size.machine_certain:
            out += _gpu_type_problems(pool, size, f"{top}.pools[{i}]")
            continue
        cpu, memory = catalog().allocatable(machine)
        share_cpu, share_memory = catalog().pod_share(machine, size.pods_per_node)
        node = f"a {machine.name} node ({machine.vcpus} vCPUs, {_gib(machine.memory_bytes)}"
        node += f"; {size.machine_note})"
        if size.cpu > cpu + 1e-9:
            out.append(
                (
                    f"{top}.pools[{i}].cpu",
                    f"pool '{pool.name}' asks cpu {pool.cpu} per pod, but {node} leaves "
                    f"{cpu:g} CPUs to pods after GKE's reservations, so its pods never "
                    f"schedule; lower cpu to at most {cpu:g}, or leave it out (pods then ask "
                    f"{share_cpu})",
                )
            )
        if size.memory > memory:
            out.append(
                (
                    f"{top}.pools[{i}].memory",
                    f"pool '{pool.name}' asks memory {pool.memory} per pod, but {node} "
                    f"leaves {memory / 2**30:.1f}Gi to pods after GKE's reservations, so its "
                    f"pods never schedule; lower memory, or leave it out (pods then ask "
                    f"{_gib(share_memory)})",
                )
            )
    return out


def _gpu_type_problems(pool: NodePool, size: PodSize, at: str) -> list[tuple[str, str]]:
    """A GPU pool of a known gpuType but no machineType: its stated cpu/memory must fit
    some GKE machine with that GPU (which one the cluster has is not known)."""
    if not (pool.gpu_type and (pool.cpu or pool.memory)):
        return []
    if gpu_machines_holding(pool.gpu_type, pool.gpus_per_pod, size.cpu, size.memory):
        return []
    known = [m for m in catalog().machines.values() if m.gpu and m.gpu.type == pool.gpu_type]
    if not known:
        return []  # a GPU type tunix-rt has no shapes for: not checked
    largest = max(known, key=lambda m: m.vcpus)
    cpu, memory = catalog().allocatable(largest)
    what = "cpu" if pool.cpu and size.cpu > cpu else "memory"
    return [
        (
            f"{at}.{what}",
            f"pool '{pool.name}' asks cpu {_num(size.cpu)}, memory {_gib(size.memory)} per pod "
            f"with {pool.gpus_per_pod} {pool.gpu_type}, but no GKE machine with that GPU "
            f"leaves that much to pods (the largest, {largest.name}, leaves {cpu:g} CPUs, "
            f"{memory / 2**30:.1f}Gi); lower {what}",
        )
    ]


def _num(value: float) -> str:
    return f"{value:g}"


def _gib(value: float) -> str:
    return f"{value / 2**30:g}Gi"
