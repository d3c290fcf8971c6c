"""A warm start's trials inside the search algorithms (no Tune run): the Optuna study holds
them as completed trials before the first proposal, a measured configuration is never
proposed again, CMA-ES gets them as source trials, and random/grid drop measured ones."""

from __future__ import annotations

from typing import Any

import pytest
from optuna.trial import TrialState as OptunaState
from ray.tune.search import ConcurrencyLimiter, SearchAlgorithm, Searcher

from tunix_rt.api.sweep import SweepSpec
from tunix_rt.api.trial import TrialResult, TrialState, WarmStartRecord
from tunix_rt.api.warm_start import ReusedFrom
from tunix_rt.contract.warm_start import measured_key
from tunix_rt.tune import mapping
from tunix_rt.tune.hooks import BudgetGate
from tunix_rt.tune.warm_search import CMA_SOURCE_MIN, SkipMeasured, WarmStart

SMALL = {
    "batchSize": {"type": "choice", "values": [16, 32]},
    "warmupSteps": {"type": "randint", "low": 0, "high": 2},
}
"""A space of 4 configurations."""


def spec(space: dict[str, Any], **fields: Any) -> SweepSpec:
    return SweepSpec.model_validate({"searchSpace": space, "maxTrials": 4} | fields)


def warm(sweep: SweepSpec, points: list[dict[str, Any]], rerun: bool = False) -> WarmStart:
    trials = [
        TrialResult(
            trial_id=f"e{i}",
            sweep="earlier",
            state=TrialState.SUCCEEDED,
            params=point,
            primary_score=0.1 * (i + 1),
            reused_from=ReusedFrom(sweep="earlier", trial_id=f"e{i}", uri="file:///e"),
        )
        for i, point in enumerate(points)
    ]
    record = WarmStartRecord(
        source="Sweep earlier",
        uri="file:///e",
        rerun_measured=rerun,
        use="",
        reused=[t.trial_id for t in trials],
        trials=trials,
    )
    return WarmStart.of(record, sweep)


def optuna_searcher(sweep: SweepSpec, fed: WarmStart) -> Any:
    limiter = mapping.search_algorithm(sweep, fed)
    assert isinstance(limiter, ConcurrencyLimiter)
    limiter.set_search_properties(None, None, mapping.search_space(sweep))
    return limiter.searcher


MEASURED = [
    {"batchSize": 16, "warmupSteps": 0},
    {"batchSize": 16, "warmupSteps": 1},
    {"batchSize": 32, "warmupSteps": 0},
]


def test_the_study_holds_the_reused_trials_before_the_first_proposal() -> None:
    sweep = spec(SMALL, algorithm="tpe")
    searcher = optuna_searcher(sweep, warm(sweep, MEASURED))
    done = searcher._ot_study.get_trials(states=(OptunaState.COMPLETE,))
    assert [t.params for t in done] == MEASURED
    assert [t.value for t in done] == pytest.approx([0.1, 0.2, 0.3])


@pytest.mark.parametrize("algorithm", ["tpe", "qmc"])
def test_a_measured_configuration_is_never_proposed(algorithm: str) -> None:
    """Three of the four configurations measured: the first proposal is the fourth."""
    sweep = spec(SMALL, algorithm=algorithm)
    searcher = optuna_searcher(sweep, warm(sweep, MEASURED))
    assert searcher.suggest("t0") == {"batchSize": 32, "warmupSteps": 1}


def test_rerun_measured_lets_the_sampler_propose_them_again() -> None:
    sweep = spec(SMALL, algorithm="tpe")
    searcher = optuna_searcher(sweep, warm(sweep, MEASURED, rerun=True))
    assert searcher.measured == {}


def test_an_exhausted_space_ends_the_search() -> None:
    sweep = spec(SMALL, algorithm="tpe")
    every = [*MEASURED, {"batchSize": 32, "warmupSteps": 1}]
    searcher = optuna_searcher(sweep, warm(sweep, every))
    assert searcher.suggest("t0") == Searcher.FINISHED
    assert searcher.exhausted


def test_cmaes_gets_ten_or_more_as_source_trials() -> None:
    space = {"learningRate": {"type": "loguniform", "low": 1e-4, "high": 1e-2}}
    sweep = spec(space, algorithm="cmaes", maxTrials=5)
    points = [{"learningRate": 1e-4 * (1.3**i)} for i in range(CMA_SOURCE_MIN)]
    searcher = optuna_searcher(sweep, warm(sweep, points))
    sources = searcher._sampler._source_trials
    assert len(sources) == CMA_SOURCE_MIN
    assert searcher.suggest("t0")["learningRate"] > 0
    few = optuna_searcher(sweep, warm(sweep, points[:3]))
    assert few._sampler._source_trials is None


class FakeTrial:
    def __init__(self, trial_id: str, config: dict[str, Any]) -> None:
        self.trial_id = trial_id
        self.config = config


class FakeGenerator(SearchAlgorithm):
    """What SkipMeasured wraps: trials from a list, finished when it is empty; it counts
    the trials still live, as BasicVariantGenerator does for its concurrency limit."""

    def __init__(self, configs: list[dict[str, Any]]) -> None:
        self.configs = list(configs)
        self.live: set[str] = set()

    def next_trial(self) -> FakeTrial | None:
        if not self.configs:
            return None
        trial = FakeTrial(f"t{len(self.configs)}", self.configs.pop(0))
        self.live.add(trial.trial_id)
        return trial

    def on_trial_complete(self, trial_id: str, result: Any = None, error: bool = False) -> None:
        self.live.discard(trial_id)

    def is_finished(self) -> bool:
        return not self.configs


def drain(algorithm: SkipMeasured) -> list[dict[str, Any]]:
    out = []
    while (trial := algorithm.next_trial()) is not None:
        out.append(trial.config)
    return out


def test_a_grid_skips_each_measured_point_once_per_measurement() -> None:
    grid = [{"lr": 1}, {"lr": 2}, {"lr": 3}] * 2
    measured = [measured_key({"lr": 2.0})]
    inner = FakeGenerator(grid)
    gate = SkipMeasured(inner, measured, grid=True, cap=5)
    assert drain(gate) == [{"lr": 1}, {"lr": 3}, {"lr": 1}, {"lr": 2}, {"lr": 3}]
    assert gate.dropped == 1 and gate.is_finished()
    assert len(inner.live) == 5  # the dropped one is not left live in the generator


def test_random_skips_measured_configs_every_time_and_stops_at_its_cap() -> None:
    drawn = [{"c": "a"}, {"c": "b"}, {"c": "a"}, {"c": "c"}, {"c": "d"}]
    gate = SkipMeasured(FakeGenerator(drawn), [measured_key({"c": "a"})], grid=False, cap=2)
    assert drain(gate) == [{"c": "b"}, {"c": "c"}]
    assert gate.dropped == 2 and gate.is_finished()


def test_a_grid_is_wrapped_only_when_measured_points_may_not_run_again() -> None:
    space = {"learningRate": {"type": "grid", "values": [1e-3, 3e-3]}}
    sweep = spec(space, algorithm="grid", maxTrials=2)
    point = [{"learningRate": 1e-3}]
    assert not isinstance(mapping.search_algorithm(sweep, None), SkipMeasured)
    rerun = mapping.search_algorithm(sweep, warm(sweep, point, rerun=True))
    assert not isinstance(rerun, SkipMeasured)
    wrapped = mapping.search_algorithm(sweep, warm(sweep, point))
    assert isinstance(wrapped, SkipMeasured) and wrapped.cap == 1 and wrapped.grid


def test_random_draws_more_samples_to_make_up_for_dropped_ones() -> None:
    sweep = spec(SMALL, algorithm="random")
    fed = warm(sweep, MEASURED)
    config = mapping.tune_config(sweep, fed)
    assert config.num_samples == 4 + len(MEASURED)
    gate = config.search_alg
    assert isinstance(gate, BudgetGate) and isinstance(gate.searcher, SkipMeasured)
    assert gate.searcher.cap == 1  # 4 configurations, 3 measured
