"""The operator against a real API server under load: 200 Sweeps created at once.

A control plane from ``scripts/control-plane/build.sh`` (etcd, kube-apiserver,
kube-controller-manager; tests/support/control_plane.py), the chart installed with helm,
KubeRay's CRDs, and ``tunix-rt operator`` run as the chart runs it (its Deployment's args and
env, its ServiceAccount's token). This client creates ``--sweeps`` Sweeps at once (16
concurrent creates) and waits for their RayJobs.

Records in ``benchmarks/results.json`` (merged):

* ``operator_p95_create_s_200_apiserver``: p95 seconds from a Sweep's create (its POST
  answered) to its RayJob's create answered, both from the audit log, median over
  ``--repeats`` fresh runs (beside
  ``operator_p95_create_s_200``, the same figure against the kmock emulator);
* ``operator_load_apiserver``: p50/p95, the operator's CPU seconds and peak RSS, its API
  requests per Sweep (counted in the API server's audit log), the machine and its load.

    uv run --frozen --no-sync python benchmarks/operator_load_apiserver.py [--sweeps 200]

Timings are the API server's own: the audit log (tests/support/control_plane.py's policy
logs every Sweep create and every request of a ServiceAccount) gives, to the microsecond,
when each Sweep's create was answered and when the operator's create of its RayJob was.
The client takes ``creates_spread_s`` to create them all, so the later Sweeps queue behind
the API server, not the operator. An earlier version read ``kubectl get --watch`` and passed
50/95 to a percentile() that takes fractions: it reported the maximum as p50 and p95.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "operator")]

import yaml  # noqa: E402

from recording import QUICK_ENV, cpu_name, merge_results  # noqa: E402
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
               "--create-namespace", "-f", plane.images_values(),
               "--set", f"watch.namespaces={{{NS}}}",
               "--set", "storage.uri=s3://bench/tunix-rt")  # fmt: skip
    plane.wait_established("sweeps.tunixrt.io", "rayjobs.ray.io")


def stamp(event: dict[str, Any]) -> float:
    """An audit event's ResponseComplete time (microseconds, the API server's clock)."""
    return datetime.fromisoformat(event["stageTimestamp"].replace("Z", "+00:00")).timestamp()


def created(
    events: list[dict[str, Any]], resource: str, user: str | None = None
) -> dict[str, float]:
    """name -> when the API server answered its successful create (first one per name)."""
    out: dict[str, float] = {}
    for e in events:
        ref = e.get("objectRef", {})
        if (
            e.get("verb") == "create"
            and ref.get("resource") == resource
            and e.get("responseStatus", {}).get("code") == 201
            and (user is None or e.get("user", {}).get("username") == user)
        ):
            out.setdefault(ref.get("name", ""), stamp(e))
    return out


def settled(
    plane: ControlPlane, quiet_s: float = 3.0, bound_s: float = 120.0
) -> list[dict[str, Any]]:
    """The audit log once the operator has gone ``quiet_s`` without a request (its status
    writes follow its RayJob creates), so requests per Sweep count the whole first pass."""
    deadline = time.monotonic() + bound_s
    count, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        events = plane.audit_events()
        now = len([e for e in events if e.get("user", {}).get("username") == SA])
        if now != count:
            count, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return events
        time.sleep(0.5)
    return plane.audit_events()


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
        cpu0, requests0 = proc_cpu(pid), len(plane.requests_by(SA))
        path = f"/apis/tunixrt.io/v1alpha1/namespaces/{NS}/sweeps"

        def create(i: int) -> None:
            body = sweep_body(f"load-{i:03d}", NS)
            code, answer = plane.request("POST", path, yaml.safe_dump(body).encode(),
                                         "application/yaml")  # fmt: skip
            assert code == 201, answer

        with ThreadPoolExecutor(16) as pool:
            list(pool.map(create, range(n)))
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            jobs = created(plane.audit_events(), "rayjobs", SA)
            if len(jobs) >= n:
                break
            time.sleep(0.5)
        events = settled(plane)
        cpu = proc_cpu(pid) - cpu0
        rss = proc_hwm_mib(pid)
        requests = len([e for e in events if e.get("user", {}).get("username") == SA]) - requests0
        operator.kill()
        sweeps = created(events, "sweeps")
        jobs = created(events, "rayjobs", SA)
        # The operator names a Sweep's RayJob sweep-<sweep> (one attempt here).
        latencies = [jobs[f"sweep-{s}"] - at for s, at in sweeps.items() if f"sweep-{s}" in jobs]
        assert len(latencies) == n, f"only {len(latencies)} of {n} RayJobs appeared"
        return {
            "p50_s": round(percentile(latencies, 0.50), 3),
            "p95_s": round(percentile(latencies, 0.95), 3),
            "max_s": round(max(latencies), 3),
            "creates_spread_s": round(max(sweeps.values()) - min(sweeps.values()), 3),
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
    if os.environ.get(QUICK_ENV):  # BENCH_QUICK=1 make bench: proves the harness only
        args.sweeps, args.repeats = 20, 1
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
