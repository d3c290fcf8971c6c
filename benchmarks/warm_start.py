"""``warm_start_trials_ratio``: how many trials a warm-started TPE sweep needs, against a cold
one, to reach 95 % of the cold sweep's best score (``bench.py --only warmstart``).

Per seed ``s`` (25 seeds of 30-trial sweeps; quick: 5 of 12), on one 3-parameter space
(learningRate loguniform 1e-4..3e-2, warmupSteps randint 0..59, weightDecay uniform
0..0.3) whose score is the deterministic ``support.tune_workloads.surface`` (to 1/512,
the stand-in's eval rows):

* *earlier*: the cold sweep of another seed (1000 + s), N trials (the details also give
  the figure for an earlier sweep of N/2 trials);
* *cold*: a TPE sweep of N trials, seed s; the target is 95 % of its best score, and
  ``cold_n`` the number of its trials up to the first that reaches it;
* *warm*: the same sweep as cold with ``warmStartFrom`` the earlier one: its trials are
  judged (``judge_trials``) and fed to TPE (``mapping.search_algorithm``), and ``warm_n``
  is the number of *new* trials up to the first new one that reaches the target (a
  reused trial reaching it does not count: the figure measures what the warm start
  does for the search, not what the earlier sweep found; N + 1 when none does).

The figure is the median over seeds of ``warm_n / cold_n``. The searches run in this
process, one trial at a time, through the driver's own search algorithm objects, with
the score computed instead of trained: what Ray Tune does with them at
``maxConcurrentTrials: 1``. That it is what the driver does is checked, not assumed: one
seed's earlier, cold and warm sweeps (smaller) also run through ``run_sweep`` with the
``train_surface`` stand-in, and their trials' params and scores must equal the
simulation's (``driver_check`` in the details).
"""

from __future__ import annotations

import copy
import json
import os
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from support.tune_workloads import python_trainer, surface
from tunix_rt.api.sweep import SweepSpec
from tunix_rt.api.trial import TrialResult, TrialState, WarmStartRecord
from tunix_rt.contract.warm_start import Source, algorithm_use, judge_trials
from tunix_rt.scoring import PRIMARY_SCORE
from tunix_rt.tune.warm_search import WarmStart

KEY = "warm_start_trials_ratio"
TARGET = 0.95
EARLIER_SEED = 1000
TRAINER = python_trainer("support.tune_workloads:train_surface", logEvery=5)
SPACE: dict[str, Any] = {
    "learningRate": {"type": "loguniform", "low": 1e-4, "high": 3e-2},
    "warmupSteps": {"type": "randint", "low": 0, "high": 60},
    "weightDecay": {"type": "uniform", "low": 0.0, "high": 0.3},
}


@dataclass(frozen=True)
class Sizes:
    seeds: int
    trials: int
    check_trials: int
    """Trials of each sweep the driver check runs."""


def sizes(quick: bool) -> Sizes:
    return Sizes(5, 12, 3) if quick else Sizes(25, 30, 6)


def spec_doc(seed: int, trials: int, warm: dict[str, Any] | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "searchSpace": copy.deepcopy(SPACE),
        "algorithm": "tpe",
        "maxTrials": trials,
        "maxConcurrentTrials": 1,
        "budget": {"smokeSteps": 10},
        "trainer": dict(TRAINER),
        "seed": seed,
    }
    return doc | ({"warmStartFrom": warm} if warm else {})


def score(spec: SweepSpec, params: dict[str, Any]) -> float:
    """What the stand-in scores: the surface to 1/eval rows (its eval rows' correctness)."""
    config = spec.trial_config(params)
    rows = config.dataset.eval_size
    value = surface(config.learning_rate, config.warmup_steps, config.weight_decay)
    return round(value * rows) / rows


# ----------------------------------------------------------------------------- simulation


def simulate(spec: SweepSpec, name: str, warm: WarmStart | None = None) -> list[TrialResult]:
    """The sweep's trials, one at a time, through the driver's search algorithm."""
    from ray.tune.search import Searcher

    from tunix_rt.tune.mapping import search_algorithm, search_space

    algorithm: Any = search_algorithm(spec, warm)
    algorithm.set_search_properties(None, None, search_space(spec))
    planned = warm.planned() if warm is not None else spec.planned_trials()
    out: list[TrialResult] = []
    for index in range(planned):
        trial_id = f"{name}_{index:05d}"
        params = algorithm.suggest(trial_id)
        if params is None or params == Searcher.FINISHED:
            break
        value = score(spec, params)
        algorithm.on_trial_complete(trial_id, {PRIMARY_SCORE: value})
        out.append(
            TrialResult(
                trial_id=trial_id,
                sweep=name,
                namespace="local",
                params=dict(params),
                state=TrialState.SUCCEEDED,
                primary_score=value,
                steps=spec.budget.smoke_steps,
            )
        )
    return out


def warm_start(spec: SweepSpec, earlier_spec: SweepSpec, earlier: list[TrialResult]) -> WarmStart:
    """The earlier sweep's trials judged for ``spec`` as the driver judges them."""
    base = earlier_spec.trial_config({}).to_wire()
    source = Source("earlier", "file:///bench/earlier", base, None)
    judged = judge_trials(spec, source, earlier, None)
    record = WarmStartRecord(
        source="Sweep earlier",
        uri=source.uri,
        use=algorithm_use(spec, len(judged.reused), False),
        reused=[t.trial_id for t in judged.reused],
        skipped=judged.skipped,
        trials=judged.reused,
    )
    return WarmStart.of(record, spec)


def trials_to(scores: list[float], target: float) -> int | None:
    """1-based position of the first score reaching ``target`` (None: none does)."""
    return next((i for i, s in enumerate(scores, start=1) if s >= target), None)


def one_seed(seed: int, trials: int, earlier_trials: int) -> dict[str, Any]:
    """Earlier, cold and warm sweeps of one seed, and what the figure takes from them."""
    earlier_spec = SweepSpec.model_validate(spec_doc(EARLIER_SEED + seed, earlier_trials))
    earlier = simulate(earlier_spec, f"earlier{seed}")
    cold_spec = SweepSpec.model_validate(spec_doc(seed, trials))
    cold = [t.primary_score or 0.0 for t in simulate(cold_spec, f"cold{seed}")]
    warm_spec = SweepSpec.model_validate(spec_doc(seed, trials, {"sweep": "earlier"}))
    fed = warm_start(warm_spec, earlier_spec, earlier)
    warm = [t.primary_score or 0.0 for t in simulate(warm_spec, f"warm{seed}", fed)]
    target = TARGET * max(cold)
    cold_n = trials_to(cold, target)
    assert cold_n is not None  # its own best reaches it
    warm_n = trials_to(warm, target)
    reused_best = max(fed.values, default=0.0)
    return {
        "seed": seed,
        "target": target,
        "cold_best": max(cold),
        "warm_best_new": max(warm, default=0.0),
        "reused": len(fed.trials),
        "reused_best": reused_best,
        "cold_n": cold_n,
        "warm_n": warm_n if warm_n is not None else trials + 1,
        "censored": warm_n is None,
        "reused_reach_target": reused_best >= target,
    }


# ----------------------------------------------------------------------------- driver check


def check_docs(trials: int) -> dict[str, dict[str, Any]]:
    """The driver check's sweeps: seed 0's earlier, cold and warm sweeps, ``trials`` each."""
    return {
        "earlier": spec_doc(EARLIER_SEED, trials),
        "cold": spec_doc(0, trials),
        "warm": spec_doc(0, trials, {"sweep": "earlier"}),
    }


def run_driver_sweeps(trials: int, out: Path) -> None:
    """In a process of its own (its Ray's workers must import the stand-in): the check's
    sweeps through ``run_sweep``, each one's trials in start order written to ``out``."""
    from tunix_rt.contract.layout import SweepTarget
    from tunix_rt.tune.driver import run_sweep
    from tunix_rt.tune.session import SweepRun

    storage = f"file://{out.parent / 'store'}"
    ran: dict[str, list[tuple[dict[str, Any], float | None]]] = {}
    for name, doc in check_docs(trials).items():
        spec = SweepSpec.model_validate(doc)
        outcome = run_sweep(SweepRun(spec=spec, name=name, storage=storage, fresh=True, echo=False))
        if int(outcome.exit_code) != 0:
            raise RuntimeError(f"bench warm-start sweep {name} failed: {outcome.message}")
        records = SweepTarget(storage, "local", name).files().trials()
        ordered = sorted(records, key=lambda r: (r.started_at is None, r.started_at, r.trial_id))
        ran[name] = [(dict(r.params), r.primary_score) for r in ordered]
    out.write_text(json.dumps(ran), encoding="utf-8")


def driver_check(trials: int) -> dict[str, Any]:
    """Seed 0's earlier, cold and warm sweeps (``trials`` each) through ``run_sweep`` with
    the stand-in, in a child process: their trials (in start order) must be the
    simulation's, params and scores alike."""
    root = Path(__file__).resolve().parent.parent
    path = os.pathsep.join(
        [str(root / "tests"), str(root / "operator"), os.environ.get("PYTHONPATH", "")]
    )
    env = dict(os.environ, PYTHONPATH=path.rstrip(os.pathsep), RAY_USAGE_STATS_ENABLED="0")
    with tempfile.TemporaryDirectory(prefix="tunix-rt-bench-warm-") as tmp:
        out = Path(tmp) / "ran.json"
        cmd = [sys.executable, __file__, "--driver-check", str(trials), str(out)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"the warm-start driver check failed: {proc.stderr[-3000:]}")
        ran = json.loads(out.read_text(encoding="utf-8"))
    specs = {name: SweepSpec.model_validate(doc) for name, doc in check_docs(trials).items()}
    earlier = simulate(specs["earlier"], "earlier")
    fed = warm_start(specs["warm"], specs["earlier"], earlier)
    simulated = {
        "earlier": earlier,
        "cold": simulate(specs["cold"], "cold"),
        "warm": simulate(specs["warm"], "warm", fed),
    }
    same = {
        name: [[dict(t.params), t.primary_score] for t in simulated[name]] == ran[name]
        for name in specs
    }
    return {"trials": trials, "same_as_simulation": same, "driver": ran}


# ----------------------------------------------------------------------------- the section


def medians(rows: list[dict[str, Any]]) -> dict[str, float]:
    """The figure (median of the per-seed ratios) and its neighbours, for the details."""
    ratios = [row["warm_n"] / row["cold_n"] for row in rows]
    counting = [
        0.0 if row["reused_reach_target"] else r for row, r in zip(rows, ratios, strict=True)
    ]
    return {
        "median_ratio": statistics.median(ratios),
        "ratio_of_medians": statistics.median(r["warm_n"] for r in rows)
        / statistics.median(r["cold_n"] for r in rows),
        "median_ratio_counting_reused": statistics.median(counting),
        "censored": sum(row["censored"] for row in rows),
    }


def section(quick: bool) -> tuple[str, list[float], str, dict[str, Any]]:
    """(key, per-seed ratios, definition, details) for bench.py."""
    size = sizes(quick)
    rows = [one_seed(seed, size.trials, size.trials) for seed in range(size.seeds)]
    half = [one_seed(seed, size.trials, size.trials // 2) for seed in range(size.seeds)]
    check = driver_check(size.check_trials)
    if not all(check["same_as_simulation"].values()):
        raise RuntimeError(f"the driver's trials differ from the simulation's: {check}")
    definition = (
        f"new trials to reach {TARGET:.0%} of a cold TPE sweep's best, warm ÷ cold, warm "
        f"started from another seed's cold sweep; {size.trials} trials, 3-parameter "
        f"surface, median over {size.seeds} seeds"
    )
    detail = {
        "per_seed": rows,
        "space": SPACE,
        "trials": size.trials,
        "seeds": size.seeds,
        "earlier_full": medians(rows),
        "earlier_half": medians(half) | {"earlier_trials": size.trials // 2},
        "driver_check": {k: v for k, v in check.items() if k != "driver"},
    }
    return KEY, [row["warm_n"] / row["cold_n"] for row in rows], definition, detail


if __name__ == "__main__":  # the driver check's child process
    if len(sys.argv) == 4 and sys.argv[1] == "--driver-check":
        run_driver_sweeps(int(sys.argv[2]), Path(sys.argv[3]))
    else:
        sys.exit("usage: warm_start.py --driver-check TRIALS OUT_JSON (bench.py runs it)")
