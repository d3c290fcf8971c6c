"""A warm start inside Ray Tune's search: what each algorithm is given, and the guard that
keeps a measured configuration from running again.

* Optuna-based algorithms (tpe, cmaes, qmc, gp): the reused trials are the
  ``points_to_evaluate`` with their ``evaluated_rewards`` of Ray's ``OptunaSearch``, which
  adds them to the study as completed trials (``study.add_trial(create_trial(…))``)
  before the first proposal; a proposal equal to a measured configuration is told the
  measured value and another is asked for (:class:`WarmOptuna`, used by
  :mod:`tunix_rt.tune.mapping`). cmaes with 10 or more also gets them as
  ``source_trials`` (WS-CMA-ES, :func:`cma_source_trials`).
* random and grid (``BasicVariantGenerator``): :class:`SkipMeasured` drops a generated
  trial whose configuration was measured (grid: once per earlier measurement; random:
  every time) and, for random, stops at the planned count, the generator being given
  as many more samples as there are reused trials.
"""

from __future__ import annotations

import os
import pickle
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tunix_rt.api.search_space import RANGED, Algorithm
from tunix_rt.api.sweep import SweepSpec
from tunix_rt.api.trial import TrialResult, WarmStartRecord
from tunix_rt.contract.best_trial import objective_value
from tunix_rt.contract.warm_start import MeasuredKey, measured_key, new_trials_planned
from tunix_rt.tune.hooks import Delegating
from tunix_rt.tune.records import plain

MAX_PROPOSALS = 200
"""Proposals an Optuna sampler gets to find an unmeasured configuration before the sweep
takes the space as exhausted (only a small discrete space gets there)."""
CMA_SOURCE_MIN = 10
"""WS-CMA-ES keeps the best 10 % of its source trials: fewer than 10 keep none."""
_STATE_FILE = "tunix-rt-skip-measured.pkl"


@dataclass(frozen=True)
class WarmStart:
    """A warm start as the search needs it: the reused trials, their objective values,
    whether measured configurations may run again, and the new trials planned."""

    record: WarmStartRecord
    spec: SweepSpec
    values: list[float] = field(default_factory=list)

    @classmethod
    def of(cls, record: WarmStartRecord, spec: SweepSpec) -> WarmStart:
        values = []
        for trial in record.trials:
            value = objective_value(trial, spec.objective)
            if value is None:  # judge_trials reuses none such
                raise ValueError(f"reused trial {trial.trial_id} has no {spec.objective.metric}")
            values.append(float(value))
        return cls(record, spec, values)

    @property
    def trials(self) -> list[TrialResult]:
        return list(self.record.trials)

    @property
    def rerun(self) -> bool:
        return self.record.rerun_measured

    def points(self) -> list[dict[str, Any]]:
        return [dict(t.params) for t in self.record.trials]

    def keys(self) -> list[MeasuredKey]:
        """Every reused trial's configuration (a config measured twice: twice)."""
        return [measured_key(t.params) for t in self.record.trials]

    def measured(self) -> dict[MeasuredKey, float]:
        """Measured configuration -> its mean objective value (none when rerunMeasured)."""
        if self.rerun:
            return {}
        sums: dict[MeasuredKey, list[float]] = {}
        for trial, value in zip(self.record.trials, self.values, strict=True):
            sums.setdefault(measured_key(trial.params), []).append(value)
        return {key: sum(v) / len(v) for key, v in sums.items()}

    def planned(self) -> int:
        """New trials the sweep runs (:func:`new_trials_planned`)."""
        return new_trials_planned(self.spec, self.record.trials, self.rerun)

    def extra_samples(self) -> int:
        """More samples a random search draws, to make up for those it drops."""
        if self.rerun or self.spec.algorithm is not Algorithm.RANDOM:
            return 0
        return len(self.record.trials)


class SkipMeasured(Delegating):
    """``BasicVariantGenerator`` (random, grid) without the measured configurations:
    a generated trial whose params were measured is dropped before Tune sees it (grid:
    as many times as they were measured; random: always); ``cap`` new trials at most."""

    def __init__(self, inner: Any, measured: Sequence[MeasuredKey], grid: bool, cap: int) -> None:
        super().__init__(inner)
        self.counts: Counter[MeasuredKey] = Counter(measured)
        self.grid = grid
        self.cap = cap
        self.created = 0
        self.dropped = 0

    def _measured(self, trial: Any) -> bool:
        key = measured_key({k: plain(v) for k, v in dict(trial.config).items()})
        if self.counts[key] <= 0:
            return False
        if self.grid:
            self.counts[key] -= 1
        return True

    def next_trial(self) -> Any:
        while not self.is_finished():
            trial = self.searcher.next_trial()
            if trial is None:
                return None
            if self._measured(trial):
                # Never run: the generator must not count it among its live trials, or
                # its concurrency limit would wait for it forever.
                self.searcher.on_trial_complete(trial.trial_id, None, False)
                self.dropped += 1
                continue
            self.created += 1
            return trial
        return None

    def is_finished(self) -> bool:
        return self.created >= self.cap or bool(self.searcher.is_finished())

    def save_to_dir(self, dirpath: str, **kwargs: Any) -> None:
        super().save_to_dir(dirpath, **kwargs)
        state = {"counts": self.counts, "created": self.created, "dropped": self.dropped}
        with open(os.path.join(dirpath, _STATE_FILE), "wb") as out:
            pickle.dump(state, out)

    def restore_from_dir(self, dirpath: str) -> None:
        super().restore_from_dir(dirpath)
        path = os.path.join(dirpath, _STATE_FILE)
        if os.path.exists(path):
            with open(path, "rb") as handle:
                state = pickle.load(handle)  # our own file, beside Tune's own pickles
            self.counts, self.created = state["counts"], state["created"]
            self.dropped = state["dropped"]


def cma_source_trials(spec: SweepSpec, warm: WarmStart) -> list[Any] | None:
    """The reused trials as Optuna trials over the ranged parameters (what CMA-ES models),
    for ``CmaEsSampler(source_trials=…)``; None with fewer than :data:`CMA_SOURCE_MIN`."""
    if len(warm.values) < CMA_SOURCE_MIN:
        return None
    from optuna.trial import create_trial
    from ray.tune.search.optuna import OptunaSearch

    from tunix_rt.tune.mapping import search_space

    ranged = {k: p for k, p in spec.search_space.items() if p.type in RANGED}
    distributions = OptunaSearch.convert_search_space(search_space(spec))
    kept = {k: distributions[k] for k in ranged}
    return [
        create_trial(params={k: t.params[k] for k in kept}, distributions=kept, value=value)
        for t, value in zip(warm.trials, warm.values, strict=True)
    ]


def measured_value(params: Mapping[str, Any], measured: Mapping[MeasuredKey, float]) -> Any:
    """The measured value of ``params`` (None: not measured)."""
    return measured.get(measured_key({k: plain(v) for k, v in params.items()}))
