"""Kueue queues Sweeps on the simulated cluster: ``examples/kueue/queues.yaml`` (a quota of
one TPU v6e 4x4 slice) applied to the real Kueue, two one-slice Sweeps with ``queueName``.
The first is admitted (Kueue unsuspends its RayJob, KubeRay makes the pods, the scheduler
places them on the slice); the second stays suspended and its Sweep is Pending, reason
Queued, in ``kubectl get sweeps``. When the first RayJob ends, its quota comes back and the
second starts.

The first RayJob's end is driven the way KubeRay reports it: its status subresource set to
``jobDeploymentStatus: Complete`` / ``jobStatus: SUCCEEDED`` (KubeRay's job-status loop
asks the Ray dashboard, and no Ray head runs here), with the trials' results written to the
store as the driver would."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import yaml

from support.control_plane import ChartOperator, ControlPlane, wait_for_json
from support.operator import write_summary, write_trial
from tunix_rt.api.trial import TrialState
from tunix_rt.storage import Store

NS = "ml-sweeps"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
QUEUE = "team-a"


def one_slice_sweep(name: str) -> dict[str, Any]:
    """The multi-host v6e example, one trial at a time (one 4x4 slice), in the queue."""
    sweep = yaml.safe_load((EXAMPLES / "sweep-tpu-v6e-multihost.yaml").read_text())
    sweep = copy.deepcopy(sweep)
    sweep["metadata"].update(name=name, namespace=NS)
    spec = sweep["spec"]
    spec["maxConcurrentTrials"] = 1
    spec["cluster"]["pools"][0]["replicas"] = 1
    spec["queueName"] = QUEUE
    return dict(sweep)


def workload_of(plane: ControlPlane, rayjob: str) -> dict[str, Any] | None:
    for wl in plane.list_items("workload", NS):
        owners = wl["metadata"].get("ownerReferences", [])
        if any(o["kind"] == "RayJob" and o["name"] == rayjob for o in owners):
            return dict(wl)
    return None


def condition(obj: dict[str, Any], ctype: str) -> dict[str, Any]:
    found = [c for c in (obj.get("status") or {}).get("conditions", []) if c["type"] == ctype]
    return found[0] if found else {}


def admitted(plane: ControlPlane, rayjob: str) -> dict[str, Any]:
    return dict(
        wait_for_json(
            plane, f"Kueue admits {rayjob}",
            lambda: (wl := workload_of(plane, rayjob))
            and condition(wl, "Admitted").get("status") == "True" and wl,
            timeout=120,
        )
    )  # fmt: skip


def sweep_rows(plane: ControlPlane) -> dict[str, list[str]]:
    table = plane.kubectl("-n", NS, "get", "sweeps").stdout.splitlines()
    return {line.split()[0]: line.split() for line in table[1:]}


def running_pods(plane: ControlPlane, rayjob: str) -> list[dict[str, Any]]:
    def probe() -> list[dict[str, Any]] | None:
        job = plane.get_object("rayjob", NS, rayjob) or {}
        name = (job.get("status") or {}).get("rayClusterName")
        if not name:
            return None
        pods = plane.list_items("pod", NS, f"ray.io/cluster={name}")
        ok = [p for p in pods if p["spec"].get("nodeName") and p["status"]["phase"] == "Running"]
        return pods if len(pods) == 5 and len(ok) == 5 else None  # head + 4 hosts

    return list(wait_for_json(plane, f"the pods of {rayjob} placed", probe, timeout=180))


def pools_of(pods: list[dict[str, Any]], nodes: dict[str, dict[str, Any]]) -> set[str]:
    """The node pools of the worker pods."""
    return {
        nodes[p["spec"]["nodeName"]]["metadata"]["labels"]["cloud.google.com/gke-nodepool"]
        for p in pods
        if p["metadata"]["labels"]["ray.io/node-type"] == "worker"
    }


def test_one_slice_quota_queues_the_second_sweep(
    cluster_operator: ChartOperator, trainer_sa: None, store_uri: str
) -> None:
    plane = cluster_operator.plane
    plane.kubectl("apply", "-f", str(EXAMPLES / "kueue" / "queues.yaml"))
    first, second = one_slice_sweep("queued-first"), one_slice_sweep("queued-second")
    try:
        plane.apply(first)
        admitted(plane, "sweep-queued-first")
        pods = running_pods(plane, "sweep-queued-first")
        nodes = {n["metadata"]["name"]: n for n in plane.get_json("nodes")["items"]}
        slice_pools = pools_of(pods, nodes)
        workers = [p for p in pods if p["metadata"]["labels"]["ray.io/node-type"] == "worker"]
        assert len(slice_pools) == 1 and len({p["spec"]["nodeName"] for p in workers}) == 4

        plane.apply(second)
        wait_for_json(
            plane, "the second Sweep Pending, reason Queued",
            lambda: (s := plane.get_object("sweep", NS, "queued-second"))
            and condition(s, "Progressing").get("reason") == "Queued" and s,
        )  # fmt: skip
        job = plane.get_object("rayjob", NS, "sweep-queued-second")
        assert job and job["spec"]["suspend"] is True
        wl = workload_of(plane, "sweep-queued-second")
        assert wl and condition(wl, "QuotaReserved").get("status") == "False", wl
        # Kueue 0.17's message names why each flavor failed for the *head* pod set (the
        # accelerator flavors' taints), not the TPU quota the v6e-16 pod set lacks.
        assert condition(wl, "QuotaReserved").get("reason") == "Pending", wl
        assert condition(wl, "Admitted").get("status") != "True", wl
        assert sweep_rows(plane)["queued-second"][1] == "Pending"

        # The first ends as KubeRay reports it; its results are in the store.
        store = Store(store_uri)
        trial = write_trial(store, NS, "queued-first", "t_00000", TrialState.SUCCEEDED, 0.5)
        write_summary(store, NS, "queued-first", [trial], best="t_00000")
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        ended = {"status": {"jobDeploymentStatus": "Complete", "jobStatus": "SUCCEEDED",
                            "endTime": now}}  # fmt: skip
        plane.kubectl("-n", NS, "patch", "rayjob", "sweep-queued-first", "--subresource=status",
                      "--type=merge", "-p", json.dumps(ended))  # fmt: skip
        plane.kubectl("-n", NS, "wait", "sweep/queued-first", "--for=condition=Succeeded",
                      "--timeout=120s")  # fmt: skip
        admitted(plane, "sweep-queued-second")
        second = running_pods(plane, "sweep-queued-second")
        assert sweep_rows(plane)["queued-first"][1] == "Succeeded"
        # Kueue gave the quota back at Complete; KubeRay keeps the first RayCluster, and
        # its pods on the first slice, for ttlSecondsAfterFinished (600 s): the second
        # runs on the cluster's other slice (docs/kubernetes.md, Kueue).
        first_cluster = (plane.get_object("rayjob", NS, "sweep-queued-first") or {})["status"]
        assert plane.get_object("raycluster", NS, first_cluster["rayClusterName"]) is not None
        assert not slice_pools & pools_of(second, nodes)
    finally:
        for name in ("queued-first", "queued-second"):
            plane.kubectl("-n", NS, "delete", "sweep", name, "--ignore-not-found",
                          "--wait=true", "--timeout=120s")  # fmt: skip
        plane.kubectl("delete", "-f", str(EXAMPLES / "kueue" / "queues.yaml"),
                      "--ignore-not-found", "--wait=false")  # fmt: skip
