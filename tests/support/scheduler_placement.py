"""Whether the real kube-scheduler places a Sweep: its RayJob's worker pods on GKE-shaped
nodes, then the pods of ``maxConcurrentTrials`` trials on the Ray nodes those make (the
machinery of ``tests/control_plane/test_admission_vs_scheduler.py``, whose docstring says
what is modelled and what is not)."""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass
from typing import Any

from support.control_plane import ControlPlane
from support.gke_nodes import node_manifest
from tunix_rt.api.cluster import ClusterSpec, NodePool
from tunix_rt.api.errors import ManifestError
from tunix_rt.api.machines import Machine
from tunix_rt.api.pool_machine import gpu_machines_holding, pod_size
from tunix_rt.api.sweep import SweepSpec
from tunix_rt.kuberay.options import BuildOptions
from tunix_rt.kuberay.raycluster import ray_cluster_spec
from tunix_rt.kuberay.rayjob import sweep_cluster

NS = "admission"
T = "test.tunix-rt.io"
NODEPOOL = "cloud.google.com/gke-nodepool"
RAY_TAINT = {"key": f"{T}/ray-node", "value": "true", "effect": "NoSchedule"}
RAY_TOLERATION = {"key": f"{T}/ray-node", "operator": "Exists", "effect": "NoSchedule"}
DECIDE_TIMEOUT = 60.0


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
