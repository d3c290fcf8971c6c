"""Node manifests shaped like GKE's, from ``tunix_rt/api/gke_machines.yaml``.

Each node carries what GKE puts on it: ``cloud.google.com/gke-nodepool``, the machine type
(``node.kubernetes.io/instance-type``), GPU nodes ``cloud.google.com/gke-accelerator`` and
the ``nvidia.com/gpu=present:NoSchedule`` taint, TPU nodes
``cloud.google.com/gke-tpu-accelerator`` / ``-topology`` and ``google.com/tpu=present:NoSchedule``;
``status.capacity`` is the machine (vCPUs, memory, accelerators, 110 pods) and
``status.allocatable`` is what GKE leaves to pods after its reservations
(:meth:`tunix_rt.api.machines.Catalog.allocatable`: the tiered CPU/memory reservations and
the 100 MiB eviction threshold of the GKE "plan node sizes" page). The kwok annotation
``kwok.x-k8s.io/node: fake`` lets kwok own the node's lifecycle; the Ready condition makes it
schedulable without kwok (the harness runs no node-lifecycle controller).

Create the nodes, then set their status (the status subresource): ``create_nodes(plane, ...)``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from tunix_rt.api.machines import Catalog, Machine, catalog
from tunix_rt.api.tpu import tpu_slice

KWOK_ANNOTATION = {"kwok.x-k8s.io/node": "fake"}
MAX_PODS = "110"  # GKE Standard's default maximum Pods per node


def _quantity_cpu(cores: float) -> str:
    return f"{round(cores * 1000)}m"


def _quantity_memory(nbytes: int) -> str:
    return f"{nbytes // 1024}Ki"


def node_manifest(
    name: str,
    machine: Machine,
    pool: str,
    *,
    topology: str | None = None,
    extra_labels: Mapping[str, str] | None = None,
    cat: Catalog | None = None,
) -> dict[str, Any]:
    """One Ready GKE node of ``machine`` in node pool ``pool`` (TPU: a host of a
    ``topology`` slice)."""
    cat = cat or catalog()
    conv = cat.node_conventions
    labels = {
        conv.nodepool_label: pool,
        conv.machine_label: machine.name,
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "type": "kwok",
    }
    taints: list[dict[str, str]] = []
    cpu, memory = cat.allocatable(machine)
    capacity = {
        "cpu": str(machine.vcpus),
        "memory": _quantity_memory(machine.memory_bytes),
        "pods": MAX_PODS,
    }
    allocatable = {"cpu": _quantity_cpu(cpu), "memory": _quantity_memory(memory), "pods": MAX_PODS}
    if machine.gpu is not None:
        labels[conv.gpu_label] = machine.gpu.type
        taints.append(conv.gpu_taint.model_dump())
        capacity[conv.gpu_resource] = allocatable[conv.gpu_resource] = str(machine.gpu.count)
    if machine.tpu is not None:
        if topology is None:
            raise ValueError(f"{machine.name} is a TPU machine: give its slice topology")
        labels[conv.tpu_accelerator_label] = machine.tpu.accelerator
        labels[conv.tpu_topology_label] = topology
        taints.append(conv.tpu_taint.model_dump())
        capacity[conv.tpu_resource] = allocatable[conv.tpu_resource] = str(machine.tpu.chips)
    labels.update(extra_labels or {})
    spec: dict[str, Any] = {"taints": taints} if taints else {}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels, "annotations": dict(KWOK_ANNOTATION)},
        "spec": spec,
        "status": {
            "capacity": capacity,
            "allocatable": allocatable,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "message": "simulated GKE node",
                }
            ],
            "nodeInfo": {"architecture": "amd64", "operatingSystem": "linux"},
        },
    }


def pool_nodes(
    pool: str,
    machine_name: str,
    nodes: int,
    *,
    topology: str | None = None,
    prefix: str = "gke",
    cat: Catalog | None = None,
) -> list[dict[str, Any]]:
    """``nodes`` nodes of one GKE node pool. A TPU pool's ``nodes`` must be a whole number
    of slices of ``topology`` (a multi-host slice is one node pool of its hosts)."""
    cat = cat or catalog()
    machine = cat.machines[machine_name]
    if machine.tpu is not None:
        if topology is None:
            raise ValueError(f"node pool {pool}: {machine_name} needs a topology")
        hosts = tpu_slice(machine.tpu.accelerator, topology).chips // machine.tpu.chips
        if not machine.tpu.serves(topology, max(hosts, 1)) or nodes % max(hosts, 1):
            raise ValueError(
                f"node pool {pool}: {nodes} x {machine_name} is no whole number of {topology} "
                "slices GKE builds"
            )
    return [
        node_manifest(f"{prefix}-{pool}-{i}", machine, pool, topology=topology, cat=cat)
        for i in range(nodes)
    ]


def simulated_cluster(cat: Catalog | None = None) -> list[dict[str, Any]]:
    """Every node of the data file's ``node_pools`` (the simulated GKE cluster)."""
    cat = cat or catalog()
    out: list[dict[str, Any]] = []
    for name, shape in cat.node_pools.items():
        out += pool_nodes(name, shape.machine, shape.nodes, topology=shape.topology, cat=cat)
    return out


def create_nodes(plane: Any, nodes: Iterable[dict[str, Any]]) -> list[str]:
    """Create ``nodes`` on a ``support.control_plane.ControlPlane`` and write their status
    (capacity, allocatable, Ready), which a create ignores: the admin's own requests, not
    two kubectl processes a node (tens of nodes in a second). Returns their names."""
    names = []
    for node in nodes:
        name = node["metadata"]["name"]
        body = {k: v for k, v in node.items() if k != "status"}
        for method, path, data, kind in (
            ("POST", "/api/v1/nodes", body, "application/json"),
            ("PATCH", f"/api/v1/nodes/{name}/status", {"status": node["status"]},
             "application/merge-patch+json"),
        ):  # fmt: skip
            code, answer = plane.request(method, path, json.dumps(data).encode(), kind)
            if code >= 300:
                raise AssertionError(f"{method} {path}: {code} {answer.get('message')}")
        names.append(name)
    return names
