"""``make cluster-demo``: a Sweep on a simulated GKE cluster, without Docker.

Brings up the test harness's simulated cluster (etcd, kube-apiserver, controller-manager,
kube-scheduler, kwok's GKE-shaped nodes from tunix_rt/api/gke_machines.yaml, the real KubeRay
operator and Kueue), installs the chart as the README does, runs the operator with the
chart's ServiceAccount, applies the smoke Sweep and shows it reach placed pods.

Nodes are simulated (kwok) and nothing runs in a pod: the RayJob's trials do not run here
yet, so the Sweep stays Running. ``--keep`` leaves everything up until Ctrl-C (the admin
kubeconfig path is printed); otherwise it stops and removes everything.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support.cluster import start_simulated_cluster  # noqa: E402
from support.control_plane import ChartOperator, wait_for_json  # noqa: E402
from support.readme import kubernetes_quick_path  # noqa: E402

NS = "ml-sweeps"
SWEEP = ROOT / "examples" / "sweep-smoke.yaml"


def say(text: str) -> None:
    print(f"[cluster-demo] {text}", flush=True)


def rayclusters_name(plane: Any) -> str:
    """The RayCluster KubeRay made for the smoke Sweep's RayJob."""

    def probe() -> str | None:
        out = plane.kubectl("-n", NS, "get", "rayjob", "sweep-sweep-smoke", "-o", "json",
                            check=False)  # fmt: skip
        job = json.loads(out.stdout) if out.returncode == 0 else {}
        return (job.get("status") or {}).get("rayClusterName")

    return str(wait_for_json(plane, "KubeRay's RayCluster", probe, timeout=120))


def placed(plane: Any, name: str) -> bool:
    pods = plane.get_json("pods", "-n", NS, "-l", f"ray.io/cluster={name}")["items"]
    return bool(pods) and all(p["status"]["phase"] == "Running" for p in pods)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="stay up until Ctrl-C")
    args = parser.parse_args()
    say("nodes are simulated by kwok and pods run no containers; building or finding the")
    say("binaries (make control-plane), then starting the cluster (about a minute)")
    start = time.monotonic()
    store = Path(tempfile.mkdtemp(prefix="tunix-rt-demo-store-"))
    with start_simulated_cluster() as cluster:
        plane = cluster.plane
        for command in kubernetes_quick_path():
            if command[0] == "kubectl" and "apply" in command:
                break
            plane.run(command[0], *command[1:])
        nodes = cluster.add_gke_nodes()
        say(f"up in {time.monotonic() - start:.0f} s: {len(nodes)} GKE-shaped nodes")
        print(plane.kubectl("get", "nodes", "-L", "cloud.google.com/gke-nodepool",
                            "-L", "node.kubernetes.io/instance-type").stdout)  # fmt: skip
        operator = ChartOperator(plane, storage=f"file://{store}").start()
        try:
            plane.kubectl("-n", NS, "apply", "-f", str(SWEEP))
            name = rayclusters_name(plane)
            wait_for_json(plane, "the pods placed", lambda: placed(plane, name), timeout=120)
            print(plane.kubectl("-n", NS, "get", "sweeps").stdout)
            print(plane.kubectl("-n", NS, "get", "rayjobs,rayclusters").stdout)
            print(plane.kubectl("-n", NS, "get", "pods", "-o", "wide").stdout)
            say("the trials do not run on the simulated cluster yet; the Sweep stays Running")
            if args.keep:
                say(f"KUBECONFIG={plane.admin_kubeconfig} (Ctrl-C stops everything)")
                signal.sigwait({signal.SIGINT, signal.SIGTERM})
        finally:
            operator.kill(signal.SIGTERM)
    return 0


if __name__ == "__main__":
    sys.exit(main())
