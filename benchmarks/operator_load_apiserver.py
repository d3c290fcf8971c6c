"""The operator against a real API server under load: 200 Sweeps created at once.

A control plane from ``scripts/control-plane/build.sh`` (etcd, kube-apiserver,
kube-controller-manager; tests/support/control_plane.py), the chart installed with helm,
KubeRay's CRDs, and ``tunix-rt operator`` run as the chart runs it (its Deployment's args and
env, its ServiceAccount's token). This client creates ``--sweeps`` Sweeps at once (16
concurrent creates) and watches RayJobs appear.

Records in ``benchmarks/results.json`` (merged):

* ``operator_p95_create_s_200_apiserver``: p95 seconds from a Sweep's create (its POST
  answered) to its RayJob seen on a watch, median over ``--repeats`` fresh runs (beside
  ``operator_p95_create_s_200``, the same figure against the kmock emulator);
* ``operator_load_apiserver``: p50/p95, the operator's CPU seconds and peak RSS, its API
  requests per Sweep (counted in the API server's audit log), the machine and its load.

    uv run --frozen --no-sync python benchmarks/operator_load_apiserver.py [--sweeps 200]

Not yet a figure to trust, so it records only with ``--record``: its one run (200 Sweeps,
load 0.7) saw every RayJob at the same instant on the ``kubectl get --watch`` pipe (p50 =
p95 = 3.23 s; 6.03 operator requests per Sweep from the audit log, 2.55 operator CPU-s,
214 MiB peak RSS). The watch's output seems to arrive in one burst; reading the API
server's watch stream directly is the next step.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "operator")]

import yaml  # noqa: E402

from recording import cpu_name, merge_results  # noqa: E402
from support.control_plane import ChartOperator, ControlPlane, control_plane  # noqa: E402
from support.load import percentile  # noqa: E402
from support.operator import sweep_body  # noqa: E402

NS = "bench"
SA = "system:serviceaccount:tunix-rt-system:tunix-rt"
KUBERAY_CRDS = ROOT.parent / "shared" / "kuberay-crds"


def install(plane: ControlPlane) -> None:
    for crd in sorted(KUBERAY_CRDS.glob("ray.io_*.yaml")):
        plane.kubectl("apply", "--server-side", "-f", str(crd))
    plane.kubectl("create", "namespace", NS)
    plane.helm("install", "tunix-rt", "charts/tunix-rt", "-n", "tunix-rt-system",
               "--create-namespace", "--set", f"watch.namespaces={{{NS}}}",
               "--set", "storage.uri=s3://bench/tunix-rt")  # fmt: skip
    plane.wait_established("sweeps.tunixrt.io", "rayjobs.ray.io")


class RayJobWatch:
    """``kubectl get rayjobs --watch``: the time each RayJob name was first seen."""

    def __init__(self, plane: ControlPlane) -> None:
        self.seen: dict[str, float] = {}
        self.proc = subprocess.Popen(
            [str(plane.bin / "kubectl"), "-n", NS, "get", "rayjobs", "--watch",
             "-o", "jsonpath={.metadata.name}{\"\\n\"}"],
            env=plane.env(), stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.seen.setdefault(line.strip(), time.monotonic())

    def stop(self) -> None:
        self.proc.terminate()


def proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_hwm_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def one_run(n: int) -> dict[str, Any]:
    with control_plane() as plane:
        install(plane)
        store = tempfile.mkdtemp(prefix="tunix-rt-bench-store-")
        operator = ChartOperator(plane, storage=f"file://{store}").start()
        assert operator.popen is not None
        pid = operator.popen.pid
        watch = RayJobWatch(plane)
        cpu0, requests0 = proc_cpu(pid), len(plane.requests_by(SA))
        created: dict[str, float] = {}
        path = f"/apis/tunixrt.io/v1alpha1/namespaces/{NS}/sweeps"

        def create(i: int) -> None:
            body = sweep_body(f"load-{i:03d}", NS)
            code, answer = plane.request("POST", path, yaml.safe_dump(body).encode(),
                                         "application/yaml")  # fmt: skip
            assert code == 201, answer
            created[f"sweep-load-{i:03d}"] = time.monotonic()

        with ThreadPoolExecutor(16) as pool:
            list(pool.map(create, range(n)))
        deadline = time.monotonic() + 600
        while len(set(created) & set(watch.seen)) < n and time.monotonic() < deadline:
            time.sleep(0.1)
        latencies = [watch.seen[name] - at for name, at in created.items() if name in watch.seen]
        cpu = proc_cpu(pid) - cpu0
        rss = proc_hwm_mib(pid)
        time.sleep(2)  # the audit log is written asynchronously (batch backend: blocking here)
        requests = len(plane.requests_by(SA)) - requests0
        watch.stop()
        operator.kill()
        assert len(latencies) == n, f"only {len(latencies)} of {n} RayJobs appeared"
        return {
            "p50_s": round(percentile(latencies, 50), 3),
            "p95_s": round(percentile(latencies, 95), 3),
            "operator_cpu_s": round(cpu, 3),
            "operator_rss_mib": round(rss, 1),
            "requests_per_sweep": round(requests / n, 2),
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweeps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--record", action="store_true", help="merge into results.json")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()[0]
    runs = [one_run(args.sweeps) for _ in range(args.repeats)]
    p95 = statistics.median(r["p95_s"] for r in runs)
    report = {
        "runs": runs,
        "sweeps": args.sweeps,
        "command": "python benchmarks/operator_load_apiserver.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_1min_before": round(load_before, 2),
        "load_1min_after": round(os.getloadavg()[0], 2),
        "cpu": cpu_name(),
        "server": "kube-apiserver v1.36.3 + etcd v3.6.8 (scripts/control-plane/build.sh)",
    }
    print(yaml.safe_dump(report, sort_keys=False))
    if args.record:
        merge_results({
            f"operator_p95_create_s_{args.sweeps}_apiserver": round(p95, 3),
            "operator_load_apiserver": report,
        })  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
