"""The Optuna-based algorithms cmaes, qmc and gp: the driver builds each seeded sampler,
the GP sampler proposes what expected improvement says, and a tiny sweep of each runs
through the real driver and Ray Tune (stand-in workload, see support/tune_workloads.py)."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from optuna.distributions import FloatDistribution, IntDistribution
from optuna.samplers import CmaEsSampler, QMCSampler, TPESampler
from ray.tune.search import ConcurrencyLimiter

from tunix_rt.api.sweep import SweepSpec
from tunix_rt.api.trial import TrialResult, TrialState
from tunix_rt.tune import mapping
from tunix_rt.tune.gp_sampler import GPSampler, from_unit, to_unit

LR = {"type": "loguniform", "low": 1e-4, "high": 3e-2}


def spec(**fields: Any) -> SweepSpec:
    doc: dict[str, Any] = {
        "searchSpace": {
            "learningRate": LR,
            "warmupSteps": {"type": "randint", "low": 0, "high": 50},
        }
    }
    return SweepSpec.model_validate(doc | fields)


@pytest.mark.parametrize(
    ("algorithm", "sampler_type"),
    [("tpe", TPESampler), ("cmaes", CmaEsSampler), ("qmc", QMCSampler), ("gp", GPSampler)],
)
def test_each_model_based_algorithm_is_its_seeded_sampler(
    algorithm: str, sampler_type: type
) -> None:
    alg = mapping.search_algorithm(
        spec(algorithm=algorithm, seed=4, maxTrials=10, maxConcurrentTrials=3)
    )
    assert isinstance(alg, ConcurrencyLimiter) and alg.max_concurrent == 3
    sampler = alg.searcher._sampler
    assert isinstance(sampler, sampler_type)


def test_qmc_is_scrambled_so_seeds_differ() -> None:
    """Unscrambled Sobol would give every seed the same points."""

    def points(seed: int) -> list[float]:
        sampler = mapping.optuna_sampler(spec(algorithm="qmc", seed=seed))
        study = optuna.create_study(sampler=sampler)
        dist = {"x": FloatDistribution(0.0, 1.0)}
        out = []
        for _ in range(4):
            trial = study.ask(dist)
            out.append(trial.params["x"])
            study.tell(trial, trial.params["x"])
        return out

    assert points(1) == points(1)
    assert points(1)[1:] != points(2)[1:]


def test_unit_mapping_round_trips_log_and_integer_ranges() -> None:
    log = FloatDistribution(1e-4, 1e-2, log=True)
    assert to_unit(log, 1e-3) == pytest.approx(0.5)
    assert from_unit(log, 0.5) == pytest.approx(1e-3)
    steps = IntDistribution(0, 49)
    assert from_unit(steps, 0.5) == 24 or from_unit(steps, 0.5) == 25
    assert isinstance(from_unit(steps, 0.5), int)
    assert from_unit(steps, 1.7) == 49 and from_unit(steps, -1.0) == 0


def test_gp_proposes_near_the_optimum_of_a_smooth_function() -> None:
    """Twelve points of (x - 0.3)^2 + (y - 0.7)^2 (minimised): expected improvement puts
    the next point near (0.3, 0.7), closer than the best point so far. (With fewer points
    the GP is unsure away from them and EI rightly explores a corner.)"""
    rng = np.random.default_rng(0)
    points = rng.random((12, 2))
    values = (points[:, 0] - 0.3) ** 2 + (points[:, 1] - 0.7) ** 2
    best = GPSampler(seed=0).next_point(points, values, np.empty((0, 2)))
    assert math.dist(best, (0.3, 0.7)) < 0.1
    assert math.dist(best, (0.3, 0.7)) < math.dist(points[int(values.argmin())], (0.3, 0.7))


def test_gp_spreads_concurrent_trials() -> None:
    """A running trial at the proposed point counts as the worst so far, so the next
    proposal moves away from it."""
    rng = np.random.default_rng(1)
    points = rng.random((8, 1))
    values = (points[:, 0] - 0.4) ** 2
    first = GPSampler(seed=3).next_point(points, values, np.empty((0, 1)))
    second = GPSampler(seed=3).next_point(points, values, first.reshape(1, 1))
    assert abs(first[0] - second[0]) > 0.02


@pytest.mark.slow
def test_gp_beats_random_on_a_two_parameter_sweep() -> None:
    """20 trials of the stand-in score over learningRate x warmupSteps, 3 seeds: the GP's
    median best is at least random's (the benchmark measures it on the real trainer)."""

    def objective(trial: optuna.Trial) -> float:
        lr = trial.suggest_float("lr", 1e-4, 3e-2, log=True)
        warm = trial.suggest_int("warm", 0, 49)
        return 1.0 - abs(math.log10(lr) - math.log10(3e-3)) / 2 - ((warm - 20) / 50) ** 2

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def best(sampler: optuna.samplers.BaseSampler) -> float:
        study = optuna.create_study(direction="maximize", sampler=sampler)
        study.optimize(objective, n_trials=20)
        return study.best_value

    gp = sorted(best(GPSampler(seed=s)) for s in range(3))[1]
    rand = sorted(best(optuna.samplers.RandomSampler(seed=s)) for s in range(3))[1]
    assert gp >= rand


SWEEPS = """
import sys
from tunix_rt.api.sweep import SweepSpec
from tunix_rt.tune.driver import run_sweep
from tunix_rt.tune.session import SweepRun
storage = sys.argv[1]
for algorithm in ("cmaes", "qmc", "gp"):
    spec = SweepSpec.model_validate({
        "searchSpace": {
            "learningRate": {"type": "loguniform", "low": 1e-4, "high": 5e-2},
            "warmupSteps": {"type": "randint", "low": 0, "high": 20},
            "batchSize": {"type": "choice", "values": [16, 32]},
        },
        "algorithm": algorithm, "maxTrials": 4, "maxConcurrentTrials": 2, "seed": 1,
        "budget": {"smokeSteps": 20},
        "trainer": {"backend": "python", "entrypoint": "support.tune_workloads:train",
                    "logEvery": 10},
    })
    out = run_sweep(SweepRun(spec=spec, name=algorithm, namespace="ns",
                             storage=f"file://{storage}", num_cpus=2, echo=False))
    print(algorithm, int(out.exit_code), out.message, flush=True)
    assert int(out.exit_code) == 0, out.message
"""


@pytest.mark.slow
def test_a_tiny_sweep_of_each_new_algorithm_runs(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    """cmaes, qmc and gp each run 4 trials (2 at a time, past their random start) on one
    local Ray: every trial succeeds with params inside the space.

    Four trials are enough to reach the model: the random start of a 4-trial sweep is 2
    completed trials (``mapping.optuna_sampler``), and with 2 at a time the 4th trial is
    asked for only once a second trial has completed (the 3rd is asked for after the
    first), so at least the 4th comes from the sampler's model. Each trial is a Ray
    worker process of its own (a user's trainer is never reused), most of its cost."""
    env = subprocess_env
    storage = tmp_path / "runs"
    out = subprocess.run(
        [sys.executable, "-c", SWEEPS, str(storage)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    for algorithm in ("cmaes", "qmc", "gp"):
        folder = storage / "ns" / algorithm / "trials"
        trials = [TrialResult.model_validate_json(p.read_text()) for p in folder.glob("*.json")]
        assert len(trials) == 4, algorithm
        lrs = set()
        for t in trials:
            assert t.state is TrialState.SUCCEEDED and t.primary_score is not None, t
            assert 1e-4 <= t.params["learningRate"] <= 5e-2
            assert t.params["warmupSteps"] in range(20)
            assert t.params["batchSize"] in (16, 32)
            lrs.add(t.params["learningRate"])
        assert len(lrs) == 4, (algorithm, lrs)  # no point proposed twice
