"""``make cluster-demo``: a Sweep on a simulated GKE cluster, without Docker.

Brings up the test harness's simulated cluster (etcd, kube-apiserver, controller-manager,
kube-scheduler, kwok's GKE-shaped nodes from tunix_rt/api/gke_machines.yaml, the real KubeRay
operator and Kueue), installs the chart as the README does, runs the operator with the
chart's ServiceAccount, applies the smoke Sweep, shows it reach placed pods and runs it to
completion, then prints ``kubectl get sweeps``.

Nodes are simulated (kwok) and nothing runs in a pod: the RayJob's own entrypoint runs as
a local process on a local Ray node sized like its RayCluster, and its status is written as
KubeRay's job-status loop would (tests/support/rayjob_runner.py says exactly what is
simulated). ``--keep`` leaves everything up until Ctrl-C (the admin kubeconfig path is
printed); otherwise it stops and removes everything.
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
from support.rayjob_runner import RayJobRunner  # noqa: E402

NS = "ml-sweeps"
SWEEP = ROOT / "examples" / "sweep-smoke.yaml"
RUN_TIMEOUT = 1800.0


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


def finished(plane: Any) -> str | None:
    out = plane.kubectl("-n", NS, "get", "sweep", "sweep-smoke", "-o", "json", check=False)
    status = (json.loads(out.stdout).get("status") or {}) if out.returncode == 0 else {}
    phase = status.get("phase")
    return str(phase) if phase in ("Succeeded", "Failed") else None


def run_smoke(plane: Any, store: Path, *, keep: bool) -> str:
    """Apply the smoke Sweep, show its placed pods, wait for its end and show the table."""
    plane.kubectl("-n", NS, "apply", "-f", str(SWEEP))
    name = rayclusters_name(plane)
    wait_for_json(plane, "the pods placed", lambda: placed(plane, name), timeout=120)
    print(plane.kubectl("-n", NS, "get", "rayjobs,rayclusters").stdout)
    print(plane.kubectl("-n", NS, "get", "pods", "-o", "wide").stdout)
    say("running the RayJob's entrypoint as a local process: 5 trials of 300 steps, 2 at a")
    say("time on the RayCluster's 2 worker CPUs (several minutes)")
    began = time.monotonic()
    phase = str(wait_for_json(plane, "the Sweep to end", lambda: finished(plane),
                              timeout=RUN_TIMEOUT))  # fmt: skip
    say(f"the Sweep ended {phase} after {time.monotonic() - began:.0f} s")
    print(plane.kubectl("-n", NS, "get", "sweeps").stdout)
    say(f"store: {store} (trial records, summary.json, evidence/)")
    if keep:
        say(f"KUBECONFIG={plane.admin_kubeconfig} (Ctrl-C stops everything)")
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    return phase


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
        plane.install_as_readme()
        nodes = cluster.add_gke_nodes()
        say(f"up in {time.monotonic() - start:.0f} s: {len(nodes)} GKE-shaped nodes")
        print(plane.kubectl("get", "nodes", "-L", "cloud.google.com/gke-nodepool",
                            "-L", "node.kubernetes.io/instance-type").stdout)  # fmt: skip
        operator = ChartOperator(plane, storage=f"file://{store}").start()
        try:
            with RayJobRunner(plane, NS):
                phase = run_smoke(plane, store, keep=args.keep)
        finally:
            operator.kill(signal.SIGTERM)
    return 0 if phase == "Succeeded" else 1


if __name__ == "__main__":
    sys.exit(main())
