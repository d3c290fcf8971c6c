"""Why two 1-CPU trials side by side are slower than one alone: a measurement.

    uv run python benchmarks/concurrency.py [--steps 60] [--repeats 3] [--out FILE]

Every worker is a fresh process set up as a trial is (``tune/trainable.py``:
``limit_threads(1)``), then runs a workload whose steady state it times, reporting its
rate, its CPU seconds, involuntary context switches and how that CPU time splits over its
threads (``/proc/self/task``). Workloads:

* ``train``: the smoke trainer's compiled train step (batch 96, 36 tokens/row), compiled
  before the timing starts;
* ``spin``: a pure-Python integer loop (one thread, no memory traffic): do the two vCPUs
  give two cores' worth of compute?

Each runs alone and two at once, in two variants: ``before`` (the trial's thread flags only,
as trials ran until now) and ``after`` (plus ``size_cpu_pools(1)``: JAX's CPU backend
started with the affinity narrowed to one core, then given back). The thread split and
the CPU seconds per step do not depend on how busy the machine is; the rates do.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
WORKLOADS = ("spin", "train")
VARIANTS = ("before", "after")
VARIANT_ENV = "BENCH_CONCURRENCY_VARIANT"


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


def _thread_cpu() -> dict[int, float]:
    """CPU seconds of each thread of this process so far (``/proc/self/task``)."""
    out = {}
    tick = os.sysconf("SC_CLK_TCK")
    for tid in os.listdir("/proc/self/task"):
        try:
            fields = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(tid)] = (int(fields[11]) + int(fields[12])) / tick  # utime + stime
    return out


def _timed(run: Any, units: int) -> dict[str, Any]:
    """Rate of ``run(units)`` with this process's CPU time and context switches."""
    before = resource.getrusage(resource.RUSAGE_SELF)
    threads_before = _thread_cpu()
    start = time.perf_counter()
    run(units)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    used = sorted(
        (cpu - threads_before.get(tid, 0.0) for tid, cpu in _thread_cpu().items()), reverse=True
    )
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "rate": units / wall,
        "wall_s": wall,
        "cpu_s": cpu,
        "cpu_per_wall": cpu / wall,
        "involuntary_switches": after.ru_nivcsw - before.ru_nivcsw,
        "threads": _threads(),
        # Share of the CPU time spent by the busiest thread, and by the next ones: a
        # trial limited to 1 CPU should do (almost) all its work on one thread.
        "busiest_thread_share": [round(u / max(sum(used), 1e-9), 3) for u in used[:3]],
    }


def worker(kind: str, units: int) -> dict[str, Any]:
    """One measured process: the trial's thread limits (``after``: and pool sizing)."""
    sys.path.insert(0, str(HERE.parent / "operator"))
    from tunix_rt.tune.trainable import limit_threads, size_cpu_pools

    limit_threads(1.0)
    if os.environ.get(VARIANT_ENV) == "after":
        size_cpu_pools(1)
    if kind == "spin":
        return _timed(_spin, units)
    return _timed(train_steps(), units)


def train_steps() -> Any:
    """The smoke trainer's compiled step on device-resident batches, compiled up front:
    what the returned function times is the steady state only."""
    import jax
    import numpy as np

    from tunix_rt.api.trainer import TrainerConfig
    from tunix_rt.train import data, sharding
    from tunix_rt.train.loop import build_model
    from tunix_rt.train.sharding import data_mesh
    from tunix_rt.train.train_step import Hyperparams, init_state, jitted_train_step

    config = TrainerConfig()
    mesh = data_mesh(config.batch_size)
    encoded = data.encode_train(data.load_dataset(config.dataset).train, config.model.context)
    graphdef, params = build_model(config)
    state = jax.device_put(init_state(params), sharding.replicated(mesh))
    hp = jax.device_put(Hyperparams.from_config(config), sharding.replicated(mesh))
    step_fn = jitted_train_step(mesh)
    rows = np.random.default_rng(0).choice(len(encoded.tokens), config.batch_size, replace=False)
    batch = (
        jax.device_put(encoded.tokens[rows], sharding.rows(mesh)),
        jax.device_put(encoded.loss_mask[rows], sharding.rows(mesh)),
    )
    box = [state]
    box[0], loss = step_fn(graphdef, box[0], *batch, hp)
    sharding.wait(loss)

    def run(n: int) -> None:
        for _ in range(n):
            box[0], _ = step_fn(graphdef, box[0], *batch, hp)
        sharding.wait(box[0])

    return run


def launch(kind: str, units: int, variant: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, __file__, "--worker", kind, "--units", str(units)]
    env = dict(os.environ, **{VARIANT_ENV: variant})
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)


def collect(procs: list[subprocess.Popen[str]]) -> list[dict[str, Any]]:
    out = []
    for proc in procs:
        stdout, _ = proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"worker failed with exit {proc.returncode}")
        out.append(json.loads(stdout.strip().splitlines()[-1]))
    return out


def summary(runs: list[dict[str, Any]], units: int, base: float) -> dict[str, Any]:
    rates = [r["rate"] for r in runs]
    return {
        "rate_median": statistics.median(rates),
        "vs_alone_before": statistics.median(rates) / base,
        "rate_spread": [min(rates), max(rates)],
        "cpu_s_per_unit": statistics.median(r["cpu_s"] / units for r in runs),
        "cpu_per_wall": statistics.median(r["cpu_per_wall"] for r in runs),
        "involuntary_switches": statistics.median(r["involuntary_switches"] for r in runs),
        "busiest_thread_share": statistics.median(r["busiest_thread_share"][0] for r in runs),
    }


def measure(kind: str, units: int, repeats: int) -> dict[str, Any]:
    """Alone and paired, before and after, interleaved, ``repeats`` rounds."""
    runs: dict[str, list[dict[str, Any]]] = {}
    for _ in range(repeats):
        for variant in VARIANTS if kind == "train" else VARIANTS[:1]:
            runs.setdefault(f"{variant}_alone", []).extend(collect([launch(kind, units, variant)]))
            runs.setdefault(f"{variant}_paired", []).extend(
                collect([launch(kind, units, variant), launch(kind, units, variant)])
            )
    base = statistics.median(r["rate"] for r in runs["before_alone"])
    return {name: summary(group, units, base) for name, group in runs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", choices=WORKLOADS, help=argparse.SUPPRESS)
    parser.add_argument("--units", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=60, help="train steps per worker")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of alone and paired")
    parser.add_argument("--only", choices=WORKLOADS, action="append", help="workloads to run")
    parser.add_argument("--out", help="write the figures as JSON here")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.units)), flush=True)
        return
    units = {"spin": 40, "train": args.steps}
    report: dict[str, Any] = {"loadavg_before": os.getloadavg()[0]}
    for kind in args.only or WORKLOADS:
        report[kind] = measure(kind, units[kind], args.repeats)
        print(kind, json.dumps(report[kind]), flush=True)
    report["loadavg_after"] = os.getloadavg()[0]
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
