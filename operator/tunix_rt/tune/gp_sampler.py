"""Gaussian-process Bayesian optimisation as an Optuna sampler (``algorithm: gp``).

Optuna's own ``GPSampler`` imports torch, and torch from PyPI brings ~3 GB of CUDA
libraries into the trial image; Ray Tune's ``BayesOptSearch`` pins
bayesian-optimization 1.4 and refuses log-scale ranges. This sampler is the textbook
method on scikit-learn's ``GaussianProcessRegressor`` (tens of MB, CPU only):

* every uniform / loguniform / randint parameter is mapped to [0, 1] (log scale for
  loguniform); ``choice`` parameters are sampled at random, independently (as Optuna's
  CMA-ES does for categorical ones);
* the first ``n_startup_trials`` are random; after that a Matern-5/2 GP with a noise term
  is fitted to the finished trials (hyperparameters by marginal likelihood), running
  trials are added as if they had scored the worst value so far ("constant liar", so
  concurrent trials do not all get the same point), and the next point maximises expected
  improvement over random candidates plus candidates near the best points so far.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, FloatDistribution, IntDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.search_space import IntersectionSearchSpace
from optuna.trial import FrozenTrial, TrialState
from scipy.stats import norm

Ranged = FloatDistribution | IntDistribution


def _ranged(distribution: BaseDistribution) -> bool:
    return isinstance(distribution, FloatDistribution | IntDistribution) and not (
        distribution.single()
    )


def to_unit(distribution: Ranged, value: float) -> float:
    """A parameter value in [0, 1] (log scale where the distribution is)."""
    low, high = float(distribution.low), float(distribution.high)
    if distribution.log:
        return (math.log(value) - math.log(low)) / (math.log(high) - math.log(low))
    return (value - low) / (high - low)


def from_unit(distribution: Ranged, x: float) -> float | int:
    """The inverse of :func:`to_unit`, rounded onto an integer distribution's steps."""
    x = min(1.0, max(0.0, x))
    low, high = float(distribution.low), float(distribution.high)
    if distribution.log:
        value = math.exp(math.log(low) + x * (math.log(high) - math.log(low)))
    else:
        value = low + x * (high - low)
    if isinstance(distribution, IntDistribution):
        step = distribution.step
        return int(
            min(distribution.high, max(distribution.low, low + round((value - low) / step) * step))
        )
    return min(high, max(low, value))


def expected_improvement(mean: np.ndarray, std: np.ndarray, best: float) -> np.ndarray:
    """EI for minimisation of ``mean`` below ``best``."""
    std = np.maximum(std, 1e-9)
    z = (best - mean) / std
    ei: np.ndarray = (best - mean) * norm.cdf(z) + std * norm.pdf(z)
    return ei


class GPSampler(BaseSampler):
    """Expected improvement under a scikit-learn Gaussian process (see the module doc)."""

    def __init__(
        self, seed: int | None = None, n_startup_trials: int = 5, candidates: int = 2048
    ) -> None:
        self._rng = np.random.default_rng(seed)
        self._seed = seed
        self._random = RandomSampler(seed=seed)
        self._space = IntersectionSearchSpace()
        self.n_startup_trials = n_startup_trials
        self.candidates = candidates

    def reseed_rng(self) -> None:
        self._rng = np.random.default_rng()
        self._random.reseed_rng()

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return {name: dist for name, dist in self._space.calculate(study).items() if _ranged(dist)}

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if not search_space:
            return {}
        done = [
            t
            for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if t.value is not None and all(name in t.params for name in search_space)
        ]
        if len(done) < self.n_startup_trials:
            return {}
        names = sorted(search_space)
        dists = [search_space[n] for n in names]
        assert all(isinstance(d, FloatDistribution | IntDistribution) for d in dists)
        ranged: list[Ranged] = [
            d for d in dists if isinstance(d, FloatDistribution | IntDistribution)
        ]
        points = np.array(
            [[to_unit(d, t.params[n]) for n, d in zip(names, ranged, strict=True)] for t in done]
        )
        sign = -1.0 if study.direction is optuna.study.StudyDirection.MAXIMIZE else 1.0
        values = sign * np.array([float(t.value) for t in done if t.value is not None])
        running = [
            t
            for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            if t.number != trial.number and all(name in t.params for name in names)
        ]
        pending = np.array(
            [[to_unit(d, t.params[n]) for n, d in zip(names, ranged, strict=True)] for t in running]
        ).reshape(-1, len(names))
        x = self.next_point(points, values, pending)
        return {n: from_unit(d, float(v)) for n, d, v in zip(names, ranged, x, strict=True)}

    def next_point(self, points: np.ndarray, values: np.ndarray, pending: np.ndarray) -> np.ndarray:
        """The candidate in [0, 1]^d with the highest expected improvement (minimising).

        BLAS on one thread: the matrices are tiny (trials x trials), and a BLAS pool of
        every core only spins on them (a 20-trial search took 5x the CPU on 2 cores)."""
        from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

        with threadpool_limits(limits=1, user_api="blas"):
            return self._next_point(points, values, pending)

    def _next_point(
        self, points: np.ndarray, values: np.ndarray, pending: np.ndarray
    ) -> np.ndarray:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

        dim = points.shape[1]
        kernel = ConstantKernel(1.0, (1e-3, 1e3)) * Matern(
            length_scale=np.full(dim, 0.5), length_scale_bounds=(1e-2, 1e2), nu=2.5
        ) + WhiteKernel(1e-3, (1e-6, 1e-1))
        seed = int(self._rng.integers(2**31 - 1))
        gp = GaussianProcessRegressor(
            kernel, normalize_y=True, n_restarts_optimizer=1, random_state=seed
        )
        with warnings.catch_warnings():  # a bound reached is no news to the sweep log
            warnings.simplefilter("ignore", ConvergenceWarning)
            gp.fit(points, values)
        if len(pending):
            lies = np.full(len(pending), values.max())
            gp = GaussianProcessRegressor(gp.kernel_, normalize_y=True, optimizer=None)
            gp.fit(np.vstack([points, pending]), np.concatenate([values, lies]))
        candidates = self._candidates(points, values, dim)
        mean, std = gp.predict(candidates, return_std=True)
        ei = expected_improvement(mean, std, float(values.min()))
        best: np.ndarray = candidates[int(np.argmax(ei))]
        return best

    def _candidates(self, points: np.ndarray, values: np.ndarray, dim: int) -> np.ndarray:
        """Uniform candidates, and as many again near the best few points."""
        half = self.candidates // 2
        uniform = self._rng.random((half, dim))
        top = points[np.argsort(values)[: min(5, len(values))]]
        centres = top[self._rng.integers(len(top), size=half)]
        local = np.clip(centres + self._rng.normal(0.0, 0.08, (half, dim)), 0.0, 1.0)
        return np.vstack([uniform, local])

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return self._random.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self._random.before_trial(study, trial)

    def after_trial(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self._random.after_trial(study, trial, state, values)
