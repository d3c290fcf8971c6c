"""Why two 1-CPU trials side by side are slower than one alone: a measurement.

    uv run python benchmarks/concurrency.py [--steps 80] [--quick]

Three workloads, each run (a) alone, (b) two at once unpinned, (c) two at once pinned one
per core with ``taskset``; every worker is a fresh process with a trial's environment
(``tune/trainable.py``: ``limit_threads(1)``), and reports its own rate, CPU seconds and
context switches for the timed part only:

* ``train``: the smoke trainer's compiled train step (batch 96, 36 tokens/row);
* ``matmul``: a jitted 512x512 f32 matmul (1 MiB operands: cache-resident, compute-bound);
* ``spin``: a pure-Python integer loop (no memory traffic, one thread).

If ``spin`` slows as much as ``train`` when paired, the two vCPUs themselves do not give
two cores' worth of compute (the hypervisor's SMT siblings, or a shared host core); if
only ``train`` slows, it is memory bandwidth or cache; if pinning helps, it is the
scheduler moving threads. ``paired ÷ alone`` per process is the figure.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
WORKLOADS = ("spin", "matmul", "train")


def _threads() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return 0


def _spin(units: int) -> float:
    total = 0
    for i in range(units * 1_000_000):
        total += i & 7
    return float(total)


def _timed(run: Any, units: int) -> dict[str, Any]:
    """Rate of ``run(units)`` with this process's CPU time and context switches."""
    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    run(units)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "rate": units / wall,
        "wall_s": wall,
        "cpu_s": cpu,
        "cpu_per_wall": cpu / wall,
        "involuntary_switches": after.ru_nivcsw - before.ru_nivcsw,
        "threads": _threads(),
    }


def worker(kind: str, units: int) -> dict[str, Any]:
    """One measured process: the trial's thread limits, then the workload."""
    sys.path.insert(0, str(HERE.parent / "operator"))
    from tunix_rt.tune.trainable import limit_threads

    limit_threads(1.0)
    if kind == "spin":
        return _timed(_spin, units)
    import jax
    import jax.numpy as jnp

    if kind == "matmul":
        a = jnp.ones((512, 512), jnp.float32)
        mm = jax.jit(lambda x: x @ x * 1e-3)
        mm(a).block_until_ready()

        def run_mm(n: int) -> None:
            x = a
            for _ in range(n * 20):
                x = mm(x)
            x.block_until_ready()

        return _timed(run_mm, units)
    sys.path.insert(0, str(HERE))
    from trainer import bare_steps_per_second  # the benchmark's own bare step
    from tunix_rt.api.trainer import TrainerConfig

    # bare_steps_per_second times its own loop; wrap it for CPU time and switches.
    out: dict[str, Any] = {}

    def run_train(n: int) -> None:
        out["steps_per_s"] = bare_steps_per_second(TrainerConfig(), n)

    result = _timed(run_train, units)
    result["rate"] = out["steps_per_s"]  # compile excluded
    return result


def launch(kind: str, units: int, cpu: int | None) -> subprocess.Popen[str]:
    cmd = [sys.executable, __file__, "--worker", kind, "--units", str(units)]
    if cpu is not None and shutil.which("taskset"):
        cmd = ["taskset", "-c", str(cpu), *cmd]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)


def collect(procs: list[subprocess.Popen[str]]) -> list[dict[str, Any]]:
    out = []
    for proc in procs:
        stdout, _ = proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"worker failed with exit {proc.returncode}")
        out.append(json.loads(stdout.strip().splitlines()[-1]))
    return out


def measure(kind: str, units: int, repeats: int) -> dict[str, Any]:
    """alone, paired (unpinned), paired pinned: ``repeats`` rounds, interleaved."""
    alone, paired, pinned = [], [], []
    for _ in range(repeats):
        alone += collect([launch(kind, units, None)])
        paired += collect([launch(kind, units, None), launch(kind, units, None)])
        pinned += collect([launch(kind, units, 0), launch(kind, units, 1)])
    base = statistics.median(r["rate"] for r in alone)

    def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
        rates = [r["rate"] for r in runs]
        return {
            "rate_median": statistics.median(rates),
            "vs_alone": statistics.median(rates) / base,
            "vs_alone_spread": [min(rates) / base, max(rates) / base],
            "cpu_per_wall": statistics.median(r["cpu_per_wall"] for r in runs),
            "involuntary_switches": statistics.median(r["involuntary_switches"] for r in runs),
            "threads": max(r["threads"] for r in runs),
        }

    return {"alone": summary(alone), "paired": summary(paired), "pinned": summary(pinned)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", choices=WORKLOADS, help=argparse.SUPPRESS)
    parser.add_argument("--units", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=80, help="train steps per worker")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of alone/paired/pinned")
    parser.add_argument("--only", choices=WORKLOADS, action="append", help="workloads to run")
    parser.add_argument("--out", help="write the figures as JSON here")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.units)), flush=True)
        return
    units = {"spin": 40, "matmul": max(1, args.steps // 2), "train": args.steps}
    report: dict[str, Any] = {"loadavg_before": os.getloadavg()[0]}
    for kind in args.only or WORKLOADS:
        report[kind] = measure(kind, units[kind], args.repeats)
        print(kind, json.dumps(report[kind]), flush=True)
    report["loadavg_after"] = os.getloadavg()[0]
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
