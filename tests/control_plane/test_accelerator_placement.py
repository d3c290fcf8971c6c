"""Each accelerator example, applied with kubectl, through the real KubeRay operator and the
real kube-scheduler onto GKE-shaped kwok nodes: the RayJob tunix-rt built is accepted,
KubeRay makes its RayCluster and pods, and every pod is bound to a node that fits it (GPU
pods on GPU nodes with the GPU toleration, TPU pods on their slice type taking every chip
of a host, the hosts of one multi-host slice in one node pool). Nothing runs in the pods:
kwok marks them Running."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.control_plane import ChartOperator, ControlPlane, wait_for_json

NS = "ml-sweeps"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NODEPOOL = "cloud.google.com/gke-nodepool"
GPU, TPU = "nvidia.com/gpu", "google.com/tpu"


def pods_of(plane: ControlPlane, cluster: str = "") -> list[dict[str, Any]]:
    """The namespace's pods (of one RayCluster, when named)."""
    return plane.list_items("pod", NS, f"ray.io/cluster={cluster}" if cluster else "")


def pods_of_sweep(plane: ControlPlane, sweep: str) -> list[dict[str, Any]]:
    """The pods of the Sweep's RayClusters (KubeRay names them ``<RayJob>-<suffix>``), so the
    wait for them to go does not hang on another test's clusters in the namespace."""
    prefix = f"sweep-{sweep}-"
    return [
        pod
        for pod in pods_of(plane)
        if pod["metadata"].get("labels", {}).get("ray.io/cluster", "").startswith(prefix)
    ]


def expected_pods(cluster: dict[str, Any]) -> int:
    groups = cluster["spec"]["workerGroupSpecs"]
    return 1 + sum(g.get("replicas", 0) * g.get("numOfHosts", 1) for g in groups)


def placed_pods(plane: ControlPlane, cluster: dict[str, Any]) -> list[dict[str, Any]]:
    """The RayCluster's pods once every one is bound and Running (kwok's stage)."""
    name, want = cluster["metadata"]["name"], expected_pods(cluster)

    def probe() -> list[dict[str, Any]] | None:
        pods = pods_of(plane, name)
        done = [p for p in pods if p["spec"].get("nodeName") and p["status"]["phase"] == "Running"]
        return pods if len(pods) == want and len(done) == want else None

    def why() -> str:
        pods = pods_of(plane, name)
        return "; ".join(
            f"{p['metadata']['name']}: {p['status'].get('phase')} "
            f"{[c.get('message') for c in p['status'].get('conditions', [])]}"
            for p in pods
        )

    try:
        return list(wait_for_json(plane, f"{want} pods of {name} placed", probe, timeout=180))
    except Exception as exc:
        raise AssertionError(f"{exc}\npods: {why()}") from exc


def requests(pod: dict[str, Any]) -> dict[str, str]:
    return dict(pod["spec"]["containers"][0]["resources"].get("requests", {}))


def tolerates(pod: dict[str, Any], key: str) -> bool:
    return any(t.get("key") == key for t in pod["spec"].get("tolerations", []))


def check_placement(pod: dict[str, Any], node: dict[str, Any]) -> None:
    """What a GKE node of the right kind shows for this pod."""
    want, labels = requests(pod), node["metadata"]["labels"]
    taints = {t["key"] for t in node["spec"].get("taints", [])}
    if GPU in want:
        assert GPU in taints and tolerates(pod, GPU)
        assert (
            labels["cloud.google.com/gke-accelerator"]
            == pod["spec"]["nodeSelector"]["cloud.google.com/gke-accelerator"]
        )
        assert int(want[GPU]) <= int(node["status"]["allocatable"][GPU])
    elif TPU in want:
        assert TPU in taints and tolerates(pod, TPU)
        # GKE: a container that requests TPUs takes every chip of its host.
        assert want[TPU] == node["status"]["allocatable"][TPU]
        for key in ("cloud.google.com/gke-tpu-accelerator", "cloud.google.com/gke-tpu-topology"):
            assert labels[key] == pod["spec"]["nodeSelector"][key]
    else:
        assert not taints, f"{pod['metadata']['name']} (no accelerator) on tainted {labels}"


@pytest.mark.parametrize(
    "example",
    [
        "sweep-gpu.yaml",
        "sweep-tpu-v6e.yaml",
        "sweep-tpu-v6e-multihost.yaml",
        "sweep-gpu-multiworker.yaml",
        "sweep-tunix-grpo-v6e.yaml",
    ],
)
def test_example_reaches_placed_pods(
    cluster_operator: ChartOperator, trainer_sa: None, example: str
) -> None:
    plane = cluster_operator.plane
    manifest = yaml.safe_load((EXAMPLES / example).read_text())
    name = manifest["metadata"]["name"]
    plane.kubectl("-n", NS, "apply", "-f", str(EXAMPLES / example))
    try:
        rayjob = wait_for_json(
            plane, f"KubeRay's RayCluster for sweep-{name}",
            lambda: (job := plane.get_object("rayjob", NS, f"sweep-{name}"))
            and (job.get("status") or {}).get("rayClusterName") and job,
            timeout=120,
        )  # fmt: skip
        cluster_name = rayjob["status"]["rayClusterName"]
        assert cluster_name.startswith(f"sweep-{name}-")  # what pods_of_sweep relies on
        cluster = wait_for_json(
            plane, "the RayCluster", lambda: plane.get_object("raycluster", NS, cluster_name)
        )
        pods = placed_pods(plane, cluster)
        nodes = {n["metadata"]["name"]: n for n in plane.get_json("nodes")["items"]}
        for pod in pods:
            check_placement(pod, nodes[pod["spec"]["nodeName"]])
        check_slices(cluster, pods, nodes)
    finally:
        plane.kubectl("-n", NS, "delete", "sweep", name, "--wait=true", "--timeout=120s")
        wait_for_json(
            plane, f"the pods of sweep-{name} gone",
            lambda: not pods_of_sweep(plane, name) or None, timeout=120,
        )  # fmt: skip


def check_slices(
    cluster: dict[str, Any], pods: list[dict[str, Any]], nodes: dict[str, dict[str, Any]]
) -> None:
    """Each replica of a multi-host TPU group is one slice: its ``numOfHosts`` pods on the
    distinct hosts of one node pool, which no other replica uses."""
    for group in cluster["spec"]["workerGroupSpecs"]:
        hosts = group.get("numOfHosts", 1)
        if hosts == 1:
            continue
        group_name = group["groupName"]
        mine = [p for p in pods if p["metadata"]["labels"].get("ray.io/group") == group_name]
        by_replica: dict[str, list[str]] = defaultdict(list)
        host_index: dict[str, set[str]] = defaultdict(set)
        for pod in mine:
            labels = pod["metadata"]["labels"]
            replica = labels["ray.io/worker-group-replica-name"]  # KubeRay's indexing
            by_replica[replica].append(pod["spec"]["nodeName"])
            host_index[replica].add(labels["ray.io/replica-host-index"])
            # What GKE's Ray TPU webhook would inject; KubeRay sets none of it.
            env = {e["name"] for e in pod["spec"]["containers"][0].get("env", [])}
            assert not {"TPU_WORKER_ID", "TPU_WORKER_HOSTNAMES", "TPU_NAME"} & env
        assert all(v == {str(i) for i in range(hosts)} for v in host_index.values())
        assert len(by_replica) == group["replicas"]
        pools = []
        for replica, names in by_replica.items():
            assert len(set(names)) == len(names) == hosts, (replica, names)
            (pool,) = {nodes[n]["metadata"]["labels"][NODEPOOL] for n in names}
            pools.append(pool)
        assert len(set(pools)) == len(pools), f"two slices share a node pool: {by_replica}"
