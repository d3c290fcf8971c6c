"""Admission agrees with the real kube-scheduler (issue 22): for generated trial shapes and
pools, ``tunix-rt validate``'s model accepts a Sweep if and only if the scheduler binds

1. every worker pod of the Sweep's RayJob (KubeRay's pods: each worker group's template,
   ``maxReplicas`` x ``numOfHosts`` of them) on GKE-shaped nodes of the pool's machine
   (``tests/support/gke_nodes.py``: capacity, allocatable after GKE's reservations, labels,
   taints), one GKE node per pod (as a node-pool autoscaler would provide), and
2. the pods of ``maxConcurrentTrials`` trials on the Ray nodes those worker pods make: one
   simulated Ray node per bound worker pod, offering what the pod requested (its CPUs,
   memory, GPUs, TPU chips; a whole-slice trial takes one slice whose hosts all bound),
   and one pod per trial (per worker for trials over several workers) asking the trial's
   resources. Ray's own placement is thus played by the kube-scheduler too: for identical
   trials, any feasible packing holds the same number, so the count is Ray's.

Both levels run in one real control plane with kube-scheduler (nodelifecycle is off, so
Node objects with a Ready condition are schedulable without kwok). A pod either binds or is
marked Unschedulable; a canary pod pinned to the last node created proves the scheduler's
cache holds every node before the real pods arrive.

Not modelled: the Ray head pod (it takes no trials), Ray's object-store share of a node's
memory, and the GKE DaemonSets that the pod-size headroom stands for.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from support.control_plane import ControlPlane, control_plane
from support.gke_nodes import node_manifest
from tunix_rt.api.cluster import ClusterSpec, NodePool
from tunix_rt.api.errors import ManifestError
from tunix_rt.api.machines import Machine, catalog
from tunix_rt.api.manifests import check_document
from tunix_rt.api.placement import SKIP_PLACEMENT, check_placement
from tunix_rt.api.pool_machine import gpu_machines_holding, pod_size
from tunix_rt.api.quantities import quantity_value
from tunix_rt.api.sweep import SweepSpec
from tunix_rt.kuberay.options import BuildOptions
from tunix_rt.kuberay.raycluster import ray_cluster_spec
from tunix_rt.kuberay.rayjob import sweep_cluster

NS = "admission"
T = "test.tunix-rt.io"
NODEPOOL = "cloud.google.com/gke-nodepool"
RAY_TAINT = {"key": f"{T}/ray-node", "value": "true", "effect": "NoSchedule"}
RAY_TOLERATION = {"key": f"{T}/ray-node", "operator": "Exists", "effect": "NoSchedule"}
LR = {"type": "loguniform", "low": 1e-4, "high": 3e-2}
DECIDE_TIMEOUT = 60.0


@pytest.fixture(scope="module")
def sched() -> Iterator[ControlPlane]:
    with control_plane(with_scheduler=True) as plane:
        plane.kubectl("create", "namespace", NS)
        deadline = time.monotonic() + 60
        while plane.kubectl("-n", NS, "get", "sa", "default", check=False).returncode:
            assert time.monotonic() < deadline, "the namespace's default ServiceAccount"
            time.sleep(0.2)
        yield plane


# ------------------------------------------------------------------------------ generation

CPU_MACHINES = ["n2-standard-8", "n2-standard-16", "e2-standard-8"]
GPU_MACHINES = {
    "nvidia-l4": ["g2-standard-8", "g2-standard-24", "g2-standard-48"],
    "nvidia-tesla-a100": ["a2-highgpu-1g", "a2-highgpu-4g"],
}
TPU_SLICES = [  # (accelerator, topology, machineType or None)
    ("tpu-v6e-slice", "1x1", None),
    ("tpu-v6e-slice", "2x2", None),
    ("tpu-v6e-slice", "2x4", "ct6e-standard-8t"),
    ("tpu-v6e-slice", "2x4", "ct6e-standard-4t"),
    ("tpu-v6e-slice", "4x4", None),
    ("tpu-v5-lite-podslice", "2x2", None),
]
# Small asks more often than large ones, so that accepted Sweeps and Sweeps that fit only
# some of their trials at once are as common as refused ones.
CPU_AMOUNTS = [0.5, 1, 1, 2, 2, 4, 4, 8, 16, 40, 80, 178, 200]
MEMORIES = [None, None, "4Gi", "16Gi", "16Gi", "64Gi", "200Gi"]
POOL_CPUS = [None, None, None, "2", "4", "8", "16", "40", "100"]
POOL_MEMORIES = [None, None, None, "8Gi", "30Gi", "64Gi", "160Gi"]


@st.composite
def pools(draw: st.DrawFn, kind: str, name: str) -> dict[str, Any]:
    pool: dict[str, Any] = {"name": name, "accelerator": kind}
    if kind == "cpu":
        pool["machineType"] = draw(st.sampled_from(CPU_MACHINES))
    elif kind == "gpu":
        gpu_type = draw(st.sampled_from(sorted(GPU_MACHINES)))
        machine = draw(st.sampled_from([None, *GPU_MACHINES[gpu_type]]))
        most = catalog().machines[machine].gpu.count if machine else 8  # type: ignore[union-attr]
        pool["gpuType"] = gpu_type
        pool["gpusPerPod"] = draw(st.sampled_from([n for n in (1, 2, 4, 8) if n <= most]))
        if machine:
            pool["machineType"] = machine
    else:
        accelerator, topology, machine = draw(st.sampled_from(TPU_SLICES))
        pool |= {"tpuAccelerator": accelerator, "tpuTopology": topology}
        if machine:
            pool["machineType"] = machine
    if cpu := draw(st.sampled_from(POOL_CPUS)):
        pool["cpu"] = cpu
    if memory := draw(st.sampled_from(POOL_MEMORIES)):
        pool["memory"] = memory
    pool["replicas"] = draw(st.integers(1, 2))
    if draw(st.booleans()):
        pool["maxReplicas"] = pool["replicas"] + draw(st.integers(0, 1))
    return pool


@st.composite
def sweeps(draw: st.DrawFn) -> dict[str, Any]:
    shape = draw(st.sampled_from(["cpu", "gpu", "tpu", "slice", "gpu-workers", "cpu-workers"]))
    kinds = {
        "cpu": "cpu",
        "gpu": "gpu",
        "tpu": "tpu",
        "slice": "tpu",
        "gpu-workers": "gpu",
        "cpu-workers": "cpu",
    }
    first = draw(pools(kinds[shape], "a"))
    extra = draw(st.sampled_from([None, "cpu", "gpu", "tpu"]))
    declared = [first] + ([draw(pools(extra, "b"))] if extra else [])
    resources: dict[str, Any] = {"cpu": draw(st.sampled_from(CPU_AMOUNTS))}
    if memory := draw(st.sampled_from(MEMORIES)):
        resources["memory"] = memory
    if shape == "gpu":
        resources["gpu"] = draw(st.sampled_from([0.5, 1, 2, 4]))
    elif shape == "tpu":
        resources["tpu"] = draw(st.sampled_from([1, 2, 4, 8]))
    elif shape == "slice":
        pick = draw(st.sampled_from([p for p in declared if p["accelerator"] == "tpu"]))
        topology = draw(st.sampled_from([pick["tpuTopology"], "4x4", "2x2"]))
        resources["tpuSlice"] = {"accelerator": pick["tpuAccelerator"], "topology": topology}
    elif shape == "gpu-workers":
        resources["workers"] = draw(st.integers(2, 3))
        resources["gpusPerWorker"] = draw(st.sampled_from([1, 2, 4]))
    elif shape == "cpu-workers":
        resources["workers"] = draw(st.integers(2, 3))
    concurrent = draw(st.integers(1, 6))
    return {
        "searchSpace": {"learningRate": LR},
        "maxTrials": max(concurrent, 2),
        "maxConcurrentTrials": concurrent,
        "resources": resources,
        "cluster": {"pools": declared},
    }


# ------------------------------------------------------------------------------ the plane


@dataclass
class Placed:
    """Pods that bound and pods the scheduler marked Unschedulable, by name."""

    bound: dict[str, dict[str, Any]]
    refused: dict[str, str]


_ids = itertools.count()


def _create(plane: ControlPlane, path: str, body: dict[str, Any]) -> dict[str, Any]:
    code, out = plane.request("POST", path, json.dumps(body).encode())
    assert code == 201, (code, out)
    return out


def _add_nodes(plane: ControlPlane, nodes: list[dict[str, Any]]) -> None:
    """Create each node, then write its status and its own taints (the TaintNodesByCondition
    admission plugin adds node.kubernetes.io/not-ready at create; no kubelet clears it)."""
    for node in nodes:
        name = node["metadata"]["name"]
        _create(plane, "/api/v1/nodes", {k: v for k, v in node.items() if k != "status"})
        for sub, patch in (
            ("/status", {"status": node["status"]}),
            ("", {"spec": {"taints": node["spec"].get("taints", [])}}),
        ):
            code, out = plane.request(
                "PATCH",
                f"/api/v1/nodes/{name}{sub}",
                json.dumps(patch).encode(),
                "application/merge-patch+json",
            )
            assert code == 200, (code, out)


def _pod(name: str, labels: dict[str, str], spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {"terminationGracePeriodSeconds": 0, **spec},
    }


def _canary(plane: ControlPlane, run: str, node: dict[str, Any]) -> None:
    """Wait until the scheduler's cache holds ``node`` (the last created; node events reach
    it in order, so it holds all the earlier ones too)."""
    name = f"canary-{node['metadata']['name']}"
    taints = node["spec"].get("taints", [])
    pod = _pod(
        name,
        {f"{T}/run": run},
        {
            "containers": [{"name": "c", "image": "none"}],
            "nodeSelector": {"kubernetes.io/hostname": node["metadata"]["name"]},
            "tolerations": [{"key": t["key"], "operator": "Exists"} for t in taints],
        },
    )
    _create(plane, f"/api/v1/namespaces/{NS}/pods", pod)
    placed = _decide(plane, run, [name])
    assert name in placed.bound, f"canary not bound: {placed.refused}"


def _decide(plane: ControlPlane, run: str, names: list[str]) -> Placed:
    """Wait until each pod is bound or Unschedulable."""
    deadline = time.monotonic() + DECIDE_TIMEOUT
    while True:
        code, out = plane.request(
            "GET", f"/api/v1/namespaces/{NS}/pods?labelSelector={T}/run%3D{run}"
        )
        assert code == 200, out
        by_name = {p["metadata"]["name"]: p for p in out["items"]}
        bound = {n: by_name[n] for n in names if by_name.get(n, {}).get("spec", {}).get("nodeName")}
        refused = {}
        for n in names:
            for cond in by_name.get(n, {}).get("status", {}).get("conditions", []):
                if cond["type"] == "PodScheduled" and cond.get("reason") == "Unschedulable":
                    refused[n] = cond.get("message", "")
        if len(bound) + len(refused) == len(names):
            return Placed(bound, refused)
        assert time.monotonic() < deadline, f"undecided pods: {set(names) - set(bound)}"
        time.sleep(0.1)


def _cleanup(plane: ControlPlane, run: str) -> None:
    selector = f"labelSelector={T}/run%3D{run}"
    plane.request("DELETE", f"/api/v1/namespaces/{NS}/pods?{selector}&gracePeriodSeconds=0")
    plane.request("DELETE", f"/api/v1/nodes?{selector}")


# ------------------------------------------------------------------------------ the two levels


def _worker_groups(spec: SweepSpec) -> tuple[ClusterSpec, list[dict[str, Any]]]:
    """The RayJob's cluster and worker groups (for a multi-host trial, the builder's pool
    sizing; where admission found no pool for it, the pools as declared)."""
    try:
        cluster = sweep_cluster(spec)
    except ManifestError:
        cluster = spec.cluster
    groups = ray_cluster_spec(cluster, {}, BuildOptions())["workerGroupSpecs"]
    return cluster, groups


def _node_machine(pool: NodePool) -> Machine:
    """The GKE machine of the pool's nodes: the one admission knows (machineType, or the only
    one GKE builds the TPU slice from); for a GPU pool that states its pod size but no
    machineType, the smallest machine of its GPU type that holds the pod (the user's
    cluster is assumed to have one); else the data file's default for its GPUs."""
    size = pod_size(pool)
    if size.machine is not None and size.machine_certain:
        return size.machine
    if pool.gpu_type and (pool.cpu or pool.memory):
        fits = gpu_machines_holding(pool.gpu_type, pool.gpus_per_pod, size.cpu, size.memory)
        if fits:
            return fits[0]
    assert size.machine is not None, f"the test gives every pool a machine: {pool}"
    return size.machine


def _level_one(plane: ControlPlane, run: str, spec: SweepSpec) -> tuple[Placed, list[str]]:
    """GKE nodes for each pool (one per pod the group can have) and the group's pods."""
    cluster, groups = _worker_groups(spec)
    nodes, pods = [], []
    for pool, group in zip(cluster.pools, groups, strict=True):
        machine = _node_machine(pool)
        hosts = group.get("numOfHosts", 1)
        nodepool = f"{run}-{group['groupName']}"
        topology = pool.tpu_shape().topology if machine.tpu else None
        for i in range(group["maxReplicas"] * hosts):
            node = node_manifest(
                f"{nodepool}-n{i}",
                machine,
                nodepool,
                topology=topology,
                extra_labels={f"{T}/run": run},
            )
            nodes.append(node)
        template = group["template"]["spec"]
        for replica, host in itertools.product(range(group["maxReplicas"]), range(hosts)):
            labels = {f"{T}/run": run, f"{T}/group": group["groupName"], f"{T}/slice": str(replica)}
            container = template["containers"][0]
            pods.append(
                _pod(
                    f"{nodepool}-{replica}-{host}",
                    labels,
                    {
                        "containers": [
                            {
                                "name": "ray-worker",
                                "image": "none",
                                "resources": container["resources"],
                            }
                        ],
                        "nodeSelector": {**template.get("nodeSelector", {}), NODEPOOL: nodepool},
                        "tolerations": template.get("tolerations", []),
                    },
                )
            )
    _add_nodes(plane, nodes)
    _canary(plane, run, nodes[-1])
    for pod in pods:
        _create(plane, f"/api/v1/namespaces/{NS}/pods", pod)
    return _decide(plane, run, [p["metadata"]["name"] for p in pods]), [
        n["metadata"]["name"] for n in nodes
    ]


def _ray_node(name: str, run: str, labels: dict[str, str], offer: dict[str, Any]) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                f"{T}/run": run,
                f"{T}/level": "ray",
                "kubernetes.io/hostname": name,
                **labels,
            },
        },
        "spec": {"taints": [RAY_TAINT]},
        "status": {
            "capacity": offer,
            "allocatable": offer,
            "conditions": [{"type": "Ready", "status": "True", "reason": "Ray"}],
        },
    }


def _offer(pod: dict[str, Any]) -> dict[str, str]:
    """What a bound worker pod gives Ray: its requests, accelerators as countable units."""
    req = pod["spec"]["containers"][0]["resources"]["requests"]
    gpus = int(req.get("nvidia.com/gpu", "0"))
    return {
        "cpu": req["cpu"],
        "memory": req["memory"],
        "pods": "110",
        f"{T}/gpu-milli": str(1000 * gpus),
        f"{T}/tpu": req.get("google.com/tpu", "0"),
    }


def _level_two(plane: ControlPlane, run: str, spec: SweepSpec, workers: Placed) -> Placed:
    """Ray nodes from the bound worker pods, then the pods of maxConcurrentTrials trials."""
    res = spec.resources
    nodes: list[dict[str, Any]] = []
    if res.tpu_slice is not None:
        want = res.tpu_slice.shape()
        cluster, groups = _worker_groups(spec)
        for pool, group in zip(cluster.pools, groups, strict=True):
            if pool.accelerator.value != "tpu":
                continue
            shape = pool.tpu_shape()
            if (shape.gke_accelerator, shape.topology, shape.hosts) != (
                want.gke_accelerator,
                want.topology,
                want.hosts,
            ):
                continue
            for replica in range(group["maxReplicas"]):
                hosts = [
                    p
                    for p in workers.bound.values()
                    if p["metadata"]["labels"][f"{T}/group"] == group["groupName"]
                    and p["metadata"]["labels"][f"{T}/slice"] == str(replica)
                ]
                if len(hosts) == shape.hosts:  # a slice is there only when all hosts are
                    offer = _offer(hosts[0]) | {f"{T}/slice": "1"}
                    nodes.append(
                        _ray_node(f"{run}-ray-{group['groupName']}-{replica}", run, {}, offer)
                    )
    else:
        for name, pod in workers.bound.items():
            nodes.append(_ray_node(f"{name}-ray", run, {}, _offer(pod)))
    pods = []
    per_trial = 1 if res.tpu_slice is not None else res.worker_count()
    ask = {"cpu": f"{round(res.cpu * 1000)}m"}
    if res.memory:
        ask["memory"] = res.memory
    if res.gpu or res.gpus_per_worker:
        ask[f"{T}/gpu-milli"] = str(round(1000 * (res.gpu or res.gpus_per_worker or 0)))
    if res.tpu:
        ask[f"{T}/tpu"] = str(res.tpu)
    if res.tpu_slice is not None:
        ask[f"{T}/slice"] = "1"
    for trial, worker in itertools.product(range(spec.max_concurrent_trials), range(per_trial)):
        pods.append(
            _pod(
                f"{run}-t{trial}-w{worker}",
                {f"{T}/run": run},
                {
                    "containers": [
                        {
                            "name": "trial",
                            "image": "none",
                            "resources": {"requests": ask, "limits": ask},
                        }
                    ],
                    "nodeSelector": {f"{T}/level": "ray", f"{T}/run": run},
                    "tolerations": [RAY_TOLERATION],
                },
            )
        )
    if not nodes:
        return Placed({}, {p["metadata"]["name"]: "no Ray node" for p in pods})
    _add_nodes(plane, nodes)
    _canary(plane, run, nodes[-1])
    for pod in pods:
        _create(plane, f"/api/v1/namespaces/{NS}/pods", pod)
    return _decide(plane, run, [p["metadata"]["name"] for p in pods])


def scheduler_verdict(plane: ControlPlane, spec: SweepSpec) -> tuple[bool, str]:
    """Whether the scheduler binds the RayJob's worker pods and maxConcurrentTrials trials
    on them, and what it said."""
    run = f"x{next(_ids)}"
    try:
        workers, _ = _level_one(plane, run, spec)
        if workers.refused:
            return False, f"worker pods unschedulable: {next(iter(workers.refused.values()))}"
        trials = _level_two(plane, run, spec, workers)
        if trials.refused:
            return False, (
                f"{len(trials.bound)} trial pods bound, {len(trials.refused)} not: "
                f"{next(iter(trials.refused.values()))}"
            )
        return True, f"{len(workers.bound)} worker pods, {len(trials.bound)} trial pods bound"
    finally:
        _cleanup(plane, run)


# ------------------------------------------------------------------------------ the property

V6E_2X2 = {
    "name": "a",
    "accelerator": "tpu",
    "tpuAccelerator": "tpu-v6e-slice",
    "tpuTopology": "2x2",
}
L4 = {"name": "a", "accelerator": "gpu", "gpuType": "nvidia-l4", "gpusPerPod": 1, "replicas": 4}


def _sweep(resources: dict[str, Any], pool: dict[str, Any], concurrent: int) -> dict[str, Any]:
    return {
        "searchSpace": {"learningRate": LR},
        "maxTrials": 8,
        "maxConcurrentTrials": concurrent,
        "resources": resources,
        "cluster": {"pools": [pool]},
    }


EXAMPLES = int(os.environ.get("TUNIX_RT_ADMISSION_EXAMPLES", "25"))
"""Generated Sweeps per run; more (e.g. 300) explore further, with a fresh random seed."""


def _two_pools(
    resources: dict[str, Any], a: dict[str, Any], b: dict[str, Any], concurrent: int
) -> dict[str, Any]:
    return _sweep(resources, a, concurrent) | {"cluster": {"pools": [a, b]}}


# found by the property: both were refused though Ray spreads workers (slices) over pools
CAPPED_CPU = {"name": "a", "accelerator": "cpu", "machineType": "n2-standard-8", "maxReplicas": 1}


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize="TUNIX_RT_ADMISSION_EXAMPLES" not in os.environ,
    suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow],
)
@given(wire=sweeps())
@example(wire=_sweep({"cpu": 4, "gpu": 1, "memory": "16Gi"}, L4, 4))  # issue: was refused
@example(wire=_sweep({"cpu": 8, "tpu": 1}, V6E_2X2, 4))  # issue: was refused
@example(wire=_sweep({"cpu": 80, "tpu": 1}, V6E_2X2, 4))  # issue: was accepted, 2 run
@example(wire=_two_pools({"cpu": 2, "workers": 2}, CAPPED_CPU, {**L4, "name": "b"}, 2))
@example(
    wire=_two_pools(
        {"tpuSlice": {"accelerator": "v6e", "topology": "2x2"}},
        {**V6E_2X2, "maxReplicas": 1},
        {**V6E_2X2, "name": "b", "maxReplicas": 1},
        2,
    )
)
def test_admission_accepts_exactly_what_the_scheduler_places(
    sched: ControlPlane, wire: dict[str, Any]
) -> None:
    try:
        spec = SweepSpec.model_validate(wire, context=SKIP_PLACEMENT)
    except ValidationError:
        assume(False)  # not a placement question: the shape itself is refused
        return
    problems = check_placement(spec)
    validate = check_document(
        {
            "apiVersion": "tunixrt.io/v1alpha1",
            "kind": "Sweep",
            "metadata": {"name": "s"},
            "spec": wire,
        }
    ).errors
    assert (problems == []) == (validate == []), (problems, validate)
    placed, said = scheduler_verdict(sched, spec)
    print(f"{'accept' if not problems else 'refuse'} | {said} | {json.dumps(wire['resources'])}")
    assert (problems == []) == placed, (
        f"admission {'accepts' if not problems else 'refuses'} but the scheduler "
        f"{'places it' if placed else 'does not'}: {said}\nadmission: {problems}\n"
        f"spec: {json.dumps(wire)}"
    )


def test_quantities_in_the_generator_are_valid() -> None:
    """The generator's pool sizes parse (a typo there would only ever show as refusals)."""
    for value in [*filter(None, POOL_CPUS), *filter(None, POOL_MEMORIES)]:
        assert quantity_value(value) > 0
