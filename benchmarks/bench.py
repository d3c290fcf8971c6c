"""``make bench``: every performance figure of tunix-rt, side by side in one run.

    make bench                         # everything, full size (2-2.5 h on 2 idle cores)
    BENCH_QUICK=1 make bench           # smallest sizes, stand-in trial workload (minutes)
    uv run python benchmarks/bench.py --only trainer,compile [--repeats 3] [--out-dir DIR]

Each figure is a ratio of two things measured in the same run, repeated (3 times by
default, the two sides interleaved) so that it holds on a shared machine; the median is
the figure, min and max its spread. Full runs write ``benchmarks/results.json`` (top-level
keys as named in issue 15, each the median; ``bench`` holds runs, spreads, definitions and
details) and the table between the ``bench`` markers of ``benchmarks/README.md``. Quick runs
write both under ``--out-dir`` (default: a temporary folder), never over recorded figures.

Sections (``--only``):

* ``trainer``: ``trainer_vs_bare_ratio`` (run_trial's steps/s ÷ the bare jitted step's, per
  pair), ``trainer_mfu_cpu`` (analytic FLOP/s ÷ best jitted matmul, measured each repeat);
* ``compile``: ``compile_cache_ratio``: N fresh trial processes sharing an empty persistent
  compilation cache: mean train-step compile seconds of trials 2..N ÷ trial 1's;
* ``overhead``: ``tune_overhead_fraction``: a 20-trial sweep one at a time of short trials:
  (sweep wall - Σ trials' own run_trial wall) ÷ sweep wall;
* ``search``: the same 20-trial space (learningRate x warmupSteps), seeds 0..repeats-1:
  FIFO random is the baseline; ``asha_step_fraction`` (Σ steps ASHA ÷ Σ steps FIFO),
  ``asha_score_gap`` (best ASHA - best FIFO), ``search_<alg>_vs_random`` (best - best of
  random) for cmaes, qmc and gp;
* ``warmstart``: ``warm_start_trials_ratio`` (issue 26): new trials a TPE sweep warm-started
  from another seed's sweep needs to reach 95 % of a cold sweep's best ÷ the cold sweep's,
  median over seeds (benchmarks/warm_start.py: the searches in process, checked against
  the driver);
* ``demo``: ``demo_parallel_efficiency``: the demo sweep 1 at a time and 2 at a time:
  wall(1) ÷ (2 x wall(2)), i.e. speedup ÷ slots (1.0: two slots give twice the
  throughput; 0.5: none). The issue's literal ratio wall(2) ÷ Σ trial compute is kept beside;
* ``concurrency``: benchmarks/concurrency.py (why paired trials are slow; details only);
* ``external``: benchmarks/operator_load.py, benchmarks/tunix_backend.py and
  benchmarks/ui_pages.py when present, run as scripts with ``BENCH_QUICK`` /
  ``BENCH_RESULTS`` set; they merge their own keys (operator_*, ``tunix_vs_bare_ratio``,
  ``ui_*``) and the table shows them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT / "operator"), str(ROOT / "tests")]

from recording import (  # noqa: E402
    QUICK_ENV,
    RESULTS,
    RESULTS_ENV,
    cpu_name,
    merge_results,
    quick,
    read_results,
    replace_section,
)

README = HERE / "README.md"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
SECTIONS = (
    "trainer",
    "compile",
    "overhead",
    "search",
    "demo",
    "warmstart",
    "concurrency",
    "external",
)
EXTERNAL: dict[str, list[str]] = {
    "operator_load.py": [],
    "operator_load_apiserver.py": ["--record"],
    "tunix_backend.py": [],
    "ui_pages.py": [],
}

from bench_core import GOALS, Figure, Settings  # noqa: E402
from bench_core import SEARCHERS as SEARCHERS  # noqa: E402  (tests read bench.SEARCHERS)
from bench_sweeps import (  # noqa: E402
    demo_section,
    overhead_section,
    search_section,
    warm_start_section,
)

# ----------------------------------------------------------------------------- trainer


def small_config(settings: Settings) -> Any:
    """The trainer config the trainer and compile sections time."""
    from tunix_rt.api.trainer import TrainerConfig

    if settings.quick:
        config = TrainerConfig(width=32, layers=1, batch_size=16, max_steps=12, log_every=4)
    else:
        config = TrainerConfig(max_steps=120, log_every=25)
    return config.model_copy(
        update={
            "eval": config.eval.model_copy(update={"batch_size": 64}),
            "dataset": config.dataset.model_copy(update={"eval_size": 64}),
        }
    )


def trainer_section(settings: Settings) -> tuple[list[Figure], dict[str, Any]]:
    """Bare step and trainer loop alternated; the matmul peak measured every repeat."""
    import trainer as tb
    from tunix_rt.train.model import train_flops_per_token

    config = small_config(settings)
    seq = tb.sequence_length(config)
    flops_per_step = train_flops_per_token(config.model, seq) * config.batch_size * seq
    sizes = (256, 512) if settings.quick else (1024, 2048, 3072)
    ratios, mfus, rows = [], [], []
    for _ in range(settings.repeats):
        bare = tb.bare_steps_per_second(config, config.max_steps)
        loop = tb.trainer_run(config)["steps_per_second"]
        peak = tb.matmul_peak(sizes, repeats=3)
        ratios.append(loop / bare)
        mfus.append(flops_per_step * loop / peak)
        rows.append({"trainer_steps_per_s": loop, "bare_steps_per_s": bare, "peak_flops": peak})
    figures = [
        Figure("trainer_vs_bare_ratio", ratios, "run_trial steps/s ÷ bare jitted step, per pair"),
        Figure("trainer_mfu_cpu", mfus, "analytic FLOPs/step x trainer steps/s ÷ matmul peak"),
    ]
    detail = {
        "config": f"L{config.model.layers}-W{config.model.width}, batch {config.batch_size}, "
        f"{seq} tokens/row, {config.max_steps} steps",
        "flops_per_step": flops_per_step,
        "runs": rows,
    }
    return figures, detail


# ----------------------------------------------------------------------------- compile


def compile_worker(config_json: str) -> None:
    """One fresh trial process: the trial's environment, then run_trial; prints metrics."""
    from tunix_rt.api.trainer import TrainerConfig
    from tunix_rt.tune.trainable import limit_threads, use_compile_cache

    use_compile_cache()
    limit_threads(1.0)
    from tunix_rt.train import run_trial

    result = run_trial(TrainerConfig.model_validate_json(config_json), log=lambda line: None)
    print(json.dumps({k: float(v) for k, v in result.metrics.items()}), flush=True)


def compile_section(settings: Settings) -> tuple[list[Figure], dict[str, Any]]:
    """Per repeat, with a new empty cache each: a sweep of ``trials`` trials one at a time
    with the real trainer (what a sweep pays: the first trial compiles, the rest run in
    the same worker: the figure), and ``trials`` fresh processes one after another (what
    a new worker pays: the persistent cache alone, in the details)."""
    config = small_config(settings).model_copy(update={"max_steps": 2, "log_every": 1})
    trials = 2 if settings.quick else 4
    sweep_ratios, fresh_ratios, rows = [], [], []
    for _ in range(settings.repeats):
        row: dict[str, Any] = {"fresh_processes": fresh_process_compiles(settings, config, trials)}
        fresh_ratios.append(statistics.mean(row["fresh_processes"][1:]) / row["fresh_processes"][0])
        row["sweep"] = sweep_compiles(config, trials)  # the real trainer, quick or not
        sweep_ratios.append(statistics.mean(row["sweep"][1:]) / row["sweep"][0])
        rows.append(row)
    figure = Figure(
        "compile_cache_ratio",
        sweep_ratios,
        f"mean train-step compile s of trials 2..{trials} ÷ trial 1, one sweep, one at a "
        "time, empty cache (fresh processes, the cache alone: details)",
    )
    detail = {
        "compile_seconds_per_trial": rows,
        "fresh_process_ratio": fresh_ratios,
        "sweep_ratio": sweep_ratios,
    }
    return [figure], detail


def fresh_process_compiles(settings: Settings, config: Any, trials: int) -> list[float]:
    """Compile seconds of ``trials`` fresh processes, one after another, one new cache."""
    cache = tempfile.mkdtemp(prefix="tunix-rt-bench-cache-")
    env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=cache)
    if settings.quick:  # tiny programs compile under the trainable's 0.5 s floor
        env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    times = []
    for _ in range(trials):
        cmd = [sys.executable, __file__, "--compile-worker", config.model_dump_json()]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
        times.append(json.loads(out.stdout.strip().splitlines()[-1])["compile_seconds"])
    shutil.rmtree(cache, ignore_errors=True)
    return times


def sweep_compiles(config: Any, trials: int) -> list[float]:
    """Compile seconds of each trial, in start order, of a sweep run by the driver's own
    command in a process of its own (its Ray, its workers) with a new, empty cache."""
    work = Path(tempfile.mkdtemp(prefix="tunix-rt-bench-compile-"))
    doc = {
        "apiVersion": "tunixrt.io/v1alpha1",
        "kind": "Sweep",
        "metadata": {"name": "bench-compile"},
        "spec": {
            "searchSpace": {"learningRate": {"type": "loguniform", "low": 1e-4, "high": 3e-2}},
            "maxTrials": trials,
            "maxConcurrentTrials": 1,
            "budget": {"smokeSteps": config.max_steps},
            "trainer": {k: v for k, v in config.to_wire().items() if k != "maxSteps"},
        },
    }
    (work / "sweep.json").write_text(json.dumps(doc), encoding="utf-8")
    env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=str(work / "cache"))
    cmd = [sys.executable, "-m", "tunix_rt.tune", "--spec", str(work / "sweep.json")]
    cmd += ["--storage", f"file://{work / 'store'}", "--namespace", "bench"]
    cmd += ["--name", "bench-compile"]
    subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    from tunix_rt.contract.layout import SweepTarget

    records = SweepTarget(f"file://{work / 'store'}", "bench", "bench-compile").files().trials()
    ordered = sorted(records, key=lambda r: r.trial_id)  # one at a time: start order
    shutil.rmtree(work, ignore_errors=True)
    return [float(r.metrics["compile_seconds"]) for r in ordered]


# ----------------------------------------------------------------------------- others


def concurrency_section(settings: Settings) -> tuple[list[Figure], dict[str, Any]]:
    out = settings.out / "concurrency.json"
    steps = "10" if settings.quick else "80"
    cmd = [sys.executable, str(HERE / "concurrency.py"), "--steps", steps, "--out", str(out)]
    cmd += ["--repeats", str(settings.repeats)]
    if settings.quick:
        cmd += ["--only", "spin"]
    subprocess.run(cmd, check=True)
    detail: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return [], detail


def external_section(settings: Settings) -> tuple[list[Figure], dict[str, Any]]:
    """Other owners' scripts: run when present; they merge their own keys."""
    env = dict(os.environ, **{RESULTS_ENV: str(settings.out / "results.json")})
    if settings.quick:
        env[QUICK_ENV] = "1"
    ran: dict[str, Any] = {}
    for script, args in EXTERNAL.items():
        path = HERE / script
        if not path.exists():
            ran[script] = "absent"
            continue
        started = time.monotonic()
        proc = subprocess.run([sys.executable, str(path), *args], env=env, cwd=ROOT)
        ran[script] = {"exit": proc.returncode, "seconds": round(time.monotonic() - started, 1)}
    return [], ran


SECTION_FUNCS: dict[str, Callable[[Settings], tuple[list[Figure], dict[str, Any]]]] = {
    "trainer": trainer_section,
    "compile": compile_section,
    "overhead": overhead_section,
    "search": search_section,
    "demo": demo_section,
    "warmstart": warm_start_section,
    "concurrency": concurrency_section,
    "external": external_section,
}


# ----------------------------------------------------------------------------- recording


def loadavg() -> float:
    return round(os.getloadavg()[0], 2)


def table(record: dict[str, Any], results: dict[str, Any]) -> str:
    """The README section: the runs the figures come from (command, date, machine, load),
    then one row per figure of issue 15 naming its run."""
    figures = record["figures"]
    runs: list[dict[str, Any]] = []
    for key in GOALS:
        run = figures.get(key, {}).get("run")
        if run and run not in runs:
            runs.append(run)
    letter = {json.dumps(run, sort_keys=True): chr(ord("A") + i) for i, run in enumerate(runs)}
    lines = [
        "## Every figure side by side (`make bench` = `benchmarks/bench.py`)",
        "",
        f"On {record['machine']}; each row names the run it comes from (median of "
        "its repeats, min to max):",
        "",
    ]
    for run in runs:
        lines.append(
            f"* {letter[json.dumps(run, sort_keys=True)]}: `bench.py {run['args']}` at "
            f"{run['date']}, load average (1 min) {run['load_before']} at the start of the "
            f"section, {run['load_after']} at its end; {run['repeats']} repeat(s)"
            + (f"; {run['note']}" if run.get("note") else "")
        )
    if record["quick"]:
        lines.append("* QUICK MODE: sizes too small for the figures to mean anything.")
    lines += [
        "",
        "| figure | key | goal | median | spread | run | definition |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for key, (what, goal) in GOALS.items():
        if key in figures:
            f = figures[key]
            run_id = letter.get(json.dumps(f.get("run"), sort_keys=True), "")
            lines.append(
                f"| {what} | `{key}` | {goal} | **{f['median']:.3f}** | "
                f"{f['min']:.3f} to {f['max']:.3f} | {run_id} | {f['definition']} |"
            )
        elif isinstance(results.get(key), int | float):
            lines.append(
                f"| {what} | `{key}` | {goal} | **{results[key]:.3f}** | | its own script | "
                "see its section |"
            )
        else:
            lines.append(f"| {what} | `{key}` | {goal} | not measured | | | |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help=f"comma-separated sections of {', '.join(SECTIONS)}")
    parser.add_argument("--repeats", type=int, help="repeats of each figure (3; quick: 1)")
    parser.add_argument("--quick", action="store_true", help="smallest sizes (BENCH_QUICK=1)")
    parser.add_argument("--out-dir", help="write results.json and README.md here")
    parser.add_argument("--trials", type=int, help="trials of the 20-trial sweeps (a trial run)")
    parser.add_argument(
        "--render", action="store_true", help="only rewrite the README table from results.json"
    )
    parser.add_argument("--compile-worker", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace) -> Settings:
    is_quick = args.quick or quick()
    if args.out_dir:
        out = Path(args.out_dir)
    elif is_quick:
        out = Path(tempfile.gettempdir()) / "tunix-rt-bench-quick"
    else:
        out = HERE
    out.mkdir(parents=True, exist_ok=True)
    env: dict[str, str] = {}
    if is_quick:
        # Ray's workers inherit this process's environment: the stand-in must import.
        path = os.environ.get("PYTHONPATH", "")
        os.environ["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(ROOT / "tests"), str(ROOT / "operator"), path) if p
        )
    return Settings(
        quick=is_quick,
        repeats=args.repeats or (1 if is_quick else 3),
        out=out,
        readme=README if out == HERE else out / "README.md",
        sweep_env=env,
        trials=args.trials,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.compile_worker:
        compile_worker(args.compile_worker)
        return 0
    settings = settings_from(args)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    results_file = RESULTS if settings.out == HERE else settings.out / "results.json"
    sections = args.only.split(",") if args.only else list(SECTIONS)
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        print(f"bench: unknown section(s) {unknown}; choose from {', '.join(SECTIONS)}")
        return 2
    previous = read_results(results_file).get("bench", {})
    if args.render:
        results = read_results(results_file)
        replace_section(settings.readme, BEGIN, END, table(previous, results))
        print(f"bench: rewrote the table in {settings.readme}")
        return 0
    record: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": cpu_name(),
        "quick": settings.quick,
        "repeats": settings.repeats,
        "load_before": loadavg(),
        "figures": dict(previous.get("figures", {})) if not settings.quick else {},
        "details": dict(previous.get("details", {})) if not settings.quick else {},
        "section_seconds": {},
    }
    started = time.monotonic()
    for name in SECTIONS:
        if name not in sections:
            continue
        load = loadavg()
        print(f"bench: {name} (load {load})", flush=True)
        t0 = time.monotonic()
        figures, detail = SECTION_FUNCS[name](settings)
        record["section_seconds"][name] = round(time.monotonic() - t0, 1)
        record["details"][name] = detail | {"load_after": loadavg()}
        run = {
            "args": " ".join(argv if argv is not None else sys.argv[1:]),
            "date": record["date"],
            "load_before": load,
            "load_after": loadavg(),
            "repeats": settings.repeats,
        }
        for figure in figures:
            record["figures"][figure.key] = figure.record() | {"run": run}
            print(f"bench: {figure.key} = {figure.record()['median']:.4f}", flush=True)
    record["load_after"] = loadavg()
    record["seconds"] = time.monotonic() - started
    medians = {key: f["median"] for key, f in record["figures"].items()}
    merge_results(medians | {"bench": record}, results_file)
    results = read_results(results_file)
    replace_section(settings.readme, BEGIN, END, table(record, results))
    print(table(record, results))
    print(f"bench: wrote {results_file} and {settings.readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
