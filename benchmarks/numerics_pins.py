"""What the numerics pins cost and what they change (issue 23; ``tunix_rt.contract.numerics``).

    uv run python benchmarks/numerics_pins.py [--steps 120] [--repeats 2]

The demo's best config (learning rate 0.003066, the default smoke model) trains as a
1-CPU trial does, each run in its own process on one core (``taskset``), two runs at a
time side by side, swapping cores between repeats so both variants share the machine's
noise:

* ``before``: what a 1-CPU trial ran with before the pins (single-threaded Eigen only);
* ``pinned``: the pins (ISA cap AVX2, no YNNPACK fusions, single-threaded Eigen);
* ``pinned_sse4_2``: the pins with the ISA capped lower, SSE4_2, to show that the cap
  reaches the code (the loss changes in the last bits; on an AVX-512 host the default
  would differ from AVX2 the same way).

Reports steps/s (train steps after the first, eval excluded) and the final loss of each
run. Prints JSON; with ``--write`` merges it into benchmarks/results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
import json, sys
from tunix_rt.contract import numerics
variant, steps = sys.argv[1], int(sys.argv[2])
if variant == "before":
    numerics.pinned_flags = lambda machine=None: {"xla_cpu_multi_thread_eigen": "false"}
elif variant == "pinned_sse4_2":
    pins = numerics.pinned_flags()
    numerics.pinned_flags = lambda machine=None: {**pins, "xla_cpu_max_isa": "SSE4_2"}
from tunix_rt.api.trainer import TrainerConfig
from tunix_rt.train import run_trial
cfg = TrainerConfig.model_validate({
    "learningRate": 0.003066, "maxSteps": steps, "logEvery": 20,
    "dataset": {"evalSize": 8}, "eval": {"evalEvery": 100000},
})
r = run_trial(cfg, log=lambda *a: None)
import os
print(json.dumps({"variant": variant, "steps_per_second": r.metrics["steps_per_second"],
                  "loss": r.metrics["loss"], "xla_flags": os.environ.get("XLA_FLAGS", "")}))
"""


def run_pair(a: str, b: str, steps: int) -> list[dict[str, object]]:
    """``a`` on core 0 and ``b`` on core 1, at the same time."""
    env = dict(os.environ, JAX_COMPILATION_CACHE_DIR="", JAX_PLATFORMS="cpu")
    env.pop("XLA_FLAGS", None)
    env["PYTHONPATH"] = str(ROOT / "operator")
    procs = [
        subprocess.Popen(
            ["taskset", "-c", str(core), sys.executable, "-c", PROBE, variant, str(steps)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for core, variant in enumerate((a, b))
    ]
    out = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=1800)
        if proc.returncode != 0:
            raise SystemExit(stderr[-3000:])
        out.append(json.loads(stdout.strip().splitlines()[-1]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    runs: list[dict[str, object]] = []
    for i in range(args.repeats):
        pair = ("before", "pinned") if i % 2 == 0 else ("pinned", "before")
        runs += run_pair(*pair, args.steps)
    runs += run_pair("pinned", "pinned_sse4_2", args.steps)
    summary: dict[str, object] = {"steps": args.steps, "load_1min": os.getloadavg()[0]}
    for variant in ("before", "pinned", "pinned_sse4_2"):
        mine = [r for r in runs if r["variant"] == variant]
        summary[variant] = {
            "steps_per_second": [round(float(str(r["steps_per_second"])), 3) for r in mine],
            "median_steps_per_second": round(
                statistics.median(float(str(r["steps_per_second"])) for r in mine), 3
            ),
            "loss": sorted({r["loss"] for r in mine}, key=str),
        }
    print(json.dumps(summary, indent=2))
    if args.write:
        path = ROOT / "benchmarks" / "results.json"
        results = json.loads(path.read_text()) if path.exists() else {}
        results["numerics_pins"] = summary
        path.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
