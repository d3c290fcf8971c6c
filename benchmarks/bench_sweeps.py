"""``make bench``'s sweep sections: ``overhead``, ``search`` and ``demo`` (each through the
real driver and Ray Tune), and ``warmstart`` (benchmarks/warm_start.py). See bench.py's
docstring for what each figure is."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench_core import FAKE_ENTRYPOINT, SEARCHERS, Figure, Settings

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class SweepStats:
    wall: float
    compute: float
    steps: int
    best: float | None
    trials: int


def run_bench_sweep(settings: Settings, spec_doc: dict[str, Any], name: str) -> SweepStats:
    """One sweep through the driver in this process (Ray started once, kept for the next)."""
    from tunix_rt.api.sweep import SweepSpec
    from tunix_rt.contract.layout import SweepTarget
    from tunix_rt.tune.driver import run_sweep
    from tunix_rt.tune.session import SweepRun

    store = tempfile.mkdtemp(prefix="tunix-rt-bench-sweep-")
    spec = SweepSpec.model_validate(spec_doc)
    run = SweepRun(
        spec=spec,
        name=name,
        storage=f"file://{store}",
        fresh=True,
        num_cpus=os.cpu_count(),
        echo=False,
        env=settings.sweep_env,
    )
    started = time.monotonic()
    outcome = run_sweep(run)
    wall = time.monotonic() - started
    if int(outcome.exit_code) != 0:
        raise RuntimeError(f"bench sweep {name} failed: {outcome.message} (store {store})")
    records = SweepTarget(f"file://{store}", run.namespace, name).files().trials()
    shutil.rmtree(store, ignore_errors=True)
    scores = [r.primary_score for r in records if r.primary_score is not None]
    return SweepStats(
        wall=wall,
        compute=sum(r.wall_seconds or 0.0 for r in records),
        steps=sum(r.steps or 0 for r in records),
        best=max(scores) if scores else None,
        trials=len(records),
    )


def _trainer_block(settings: Settings) -> dict[str, Any]:
    """Trials of the sweep sections: the stand-in, or a smaller-batch smoke trainer."""
    if settings.fake:
        return {"backend": "python", "entrypoint": FAKE_ENTRYPOINT, "logEvery": 5}
    return {"batchSize": 64, "logEvery": 25, "dataset": {"evalSize": 256}}


def overhead_section(settings: Settings) -> tuple[list[Figure], dict[str, Any]]:
    """20 short trials one at a time: what Ray Tune and the driver add around them."""
    steps = 10 if settings.fake else 30
    trials = settings.sweep_trials()
    doc = {
        "searchSpace": {"learningRate": {"type": "loguniform", "low": 1e-4, "high": 3e-2}},
        "maxTrials": trials,
        "maxConcurrentTrials": 1,
        "budget": {"smokeSteps": steps},
        "trainer": _trainer_block(settings),
    }
    fractions, rows = [], []
    for i in range(settings.repeats):
        stats = run_bench_sweep(settings, doc | {"seed": i}, f"bench-overhead-{i}")
        fractions.append((stats.wall - stats.compute) / stats.wall)
        rows.append(
            {
                "wall_s": stats.wall,
                "trial_compute_s": stats.compute,
                "overhead_s_per_trial": (stats.wall - stats.compute) / stats.trials,
            }
        )
    figure = Figure(
        "tune_overhead_fraction",
        fractions,
        f"(run_sweep wall - Σ trial run_trial wall) ÷ wall; {trials} trials x {steps} steps, "
        "1 at a time",
    )
    return [figure], {"runs": rows, "trials": trials, "steps": steps}


def search_doc(settings: Settings, seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The 20-trial space every search figure shares, and the ASHA block for it."""
    steps = 40 if settings.fake else 200
    doc = {
        "searchSpace": {
            "learningRate": {"type": "loguniform", "low": 1e-4, "high": 3e-2},
            "warmupSteps": {"type": "randint", "low": 0, "high": 60},
        },
        "maxTrials": settings.sweep_trials(),
        "maxConcurrentTrials": 2,
        "budget": {"smokeSteps": steps},
        "trainer": _trainer_block(settings),
        "seed": seed,
    }
    grace = 10 if settings.fake else 25
    asha = {"type": "asha", "gracePeriod": grace, "reductionFactor": 3}
    return doc, asha


def search_section(settings: Settings) -> tuple[list[Figure], dict[str, Any]]:
    """Per seed: FIFO random (the baseline), ASHA random, then each new sampler (FIFO)."""
    fraction, gap = [], []
    vs_random: dict[str, list[float]] = {alg: [] for alg in SEARCHERS}
    rows = []
    for seed in range(settings.repeats):
        doc, asha = search_doc(settings, seed)
        fifo = run_bench_sweep(settings, doc, f"bench-fifo-{seed}")
        early = run_bench_sweep(settings, doc | {"scheduler": asha}, f"bench-asha-{seed}")
        row: dict[str, Any] = {"seed": seed, "random_best": fifo.best, "asha_best": early.best}
        row |= {"fifo_steps": fifo.steps, "asha_steps": early.steps}
        fraction.append(early.steps / fifo.steps)
        gap.append((early.best or 0.0) - (fifo.best or 0.0))
        for alg in SEARCHERS:
            stats = run_bench_sweep(settings, doc | {"algorithm": alg}, f"bench-{alg}-{seed}")
            vs_random[alg].append((stats.best or 0.0) - (fifo.best or 0.0))
            row[f"{alg}_best"] = stats.best
        rows.append(row)
    figures = [
        Figure("asha_step_fraction", fraction, "Σ trial steps ASHA ÷ FIFO, same space and seed"),
        Figure("asha_score_gap", gap, "best primary_score ASHA - FIFO, same space and seed"),
    ]
    for alg in SEARCHERS:
        figures.append(
            Figure(
                f"search_{alg}_vs_random",
                vs_random[alg],
                f"best primary_score {alg} - random (FIFO), same 20-trial budget, per seed",
            )
        )
    doc, asha = search_doc(settings, 0)
    space = {"space": doc["searchSpace"], "trials": doc["maxTrials"], "steps": doc["budget"]}
    return figures, {"per_seed": rows, "asha": asha} | space


def demo_section(settings: Settings) -> tuple[list[Figure], dict[str, Any]]:
    """The demo sweep one at a time, then two at a time (its own setting), per repeat."""
    from tunix_rt.api.manifests import load_sweep

    spec = load_sweep(ROOT / "examples" / "sweep-smoke.yaml").spec
    doc = spec.to_wire()
    doc.pop("storage", None)
    if settings.trials or settings.quick:
        doc["maxTrials"] = min(doc["maxTrials"], max(2, settings.trials or 2))
    if settings.fake:
        doc["trainer"] = _trainer_block(settings)
        doc["budget"] = {"smokeSteps": 40}
    slots = int(doc.get("maxConcurrentTrials", 2))
    effs, literal, rows = [], [], []
    for i in range(settings.repeats):
        one = run_bench_sweep(settings, doc | {"maxConcurrentTrials": 1}, f"bench-demo1-{i}")
        two = run_bench_sweep(settings, doc, f"bench-demo2-{i}")
        effs.append(one.wall / (slots * two.wall))
        literal.append(two.wall / two.compute)
        rows.append(
            {
                "wall_1_s": one.wall,
                "wall_2_s": two.wall,
                "compute_1_s": one.compute,
                "compute_2_s": two.compute,
            }
        )
    figure = Figure(
        "demo_parallel_efficiency",
        effs,
        f"wall 1 at a time ÷ ({slots} x wall {slots} at a time), examples/sweep-smoke.yaml",
    )
    detail = {"runs": rows, "wall2_over_trial_compute": literal, "slots": slots}
    return [figure], detail


def warm_start_section(settings: Settings) -> tuple[list[Figure], dict[str, Any]]:
    """``warm_start_trials_ratio`` (benchmarks/warm_start.py): one figure, its runs the
    per-seed ratios (the repeats are seeds there)."""
    import warm_start

    key, ratios, definition, detail = warm_start.section(settings.quick)
    return [Figure(key, ratios, definition)], detail
