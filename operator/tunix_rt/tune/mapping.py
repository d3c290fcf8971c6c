"""The Sweep spec mapped onto Ray Tune's objects, in one place.

Search space, search algorithm, scheduler, resources and ``TuneConfig``:

=====================  ===============================================================
spec                   Ray Tune
=====================  ===============================================================
searchSpace            ``param_space``: uniform/loguniform/randint/choice -> ``tune.*``;
                       grid -> ``tune.grid_search`` (so are choice entries of a grid)
algorithm random       ``BasicVariantGenerator(random_state=seed, max_concurrent=…)``
algorithm grid         the same generator; ``num_samples`` = repeats of the grid
algorithm tpe          ``ConcurrencyLimiter(OptunaSearch(TPESampler(seed=seed)))``
algorithm cmaes/qmc/gp the same with ``CmaEsSampler``, ``QMCSampler`` (scrambled Sobol) or
                       ``tune.gp_sampler.GPSampler`` (scikit-learn GP, expected improvement)
scheduler fifo         ``FIFOScheduler``
scheduler asha         ``ASHAScheduler(time_attr="step", max_t=smokeSteps, …)``
scheduler median       ``MedianStoppingRule(time_attr="step", …)``
maxTrials              ``num_samples`` (grid: maxTrials // gridPoints repeats)
maxConcurrentTrials    the search algorithm's concurrency limit
maxFailedTrials        a stopper that ends the sweep when one more trial fails
resources              ``tune.with_resources`` (cpu, gpu, memory, TPU)
budget                 smokeSteps -> trainer maxSteps; trial/sweep timeouts -> stoppers
                       and ``time_budget_s``
=====================  ===============================================================

Nothing here runs Tune; :mod:`tunix_rt.tune.driver` builds the ``Tuner`` from these.
"""

from __future__ import annotations

import warnings
from typing import Any

from ray import tune
from ray.tune.schedulers import (
    ASHAScheduler,
    FIFOScheduler,
    MedianStoppingRule,
    TrialScheduler,
)
from ray.tune.search import (
    BasicVariantGenerator,
    ConcurrencyLimiter,
    SearchAlgorithm,
    Searcher,
)
from ray.tune.search.optuna import OptunaSearch

from tunix_rt.api.quantities import quantity_bytes
from tunix_rt.api.search_space import MODEL_BASED, Algorithm, Distribution, SearchParam
from tunix_rt.api.sweep import SweepSpec
from tunix_rt.api.sweep_goals import SchedulerType
from tunix_rt.contract.warm_start import MeasuredKey
from tunix_rt.tune import multihost
from tunix_rt.tune.hooks import BudgetGate
from tunix_rt.tune.warm_search import (
    MAX_PROPOSALS,
    SkipMeasured,
    WarmStart,
    cma_source_trials,
    measured_value,
)


def param_domain(param: SearchParam, *, enumerate_choice: bool = False) -> Any:
    """One searchSpace entry as a Ray Tune domain (or grid_search marker)."""
    kind = param.type
    if kind is Distribution.UNIFORM:
        assert param.low is not None and param.high is not None
        return tune.uniform(param.low, param.high)
    if kind is Distribution.LOGUNIFORM:
        assert param.low is not None and param.high is not None
        return tune.loguniform(param.low, param.high)
    if kind is Distribution.RANDINT:
        assert param.low is not None and param.high is not None
        return tune.randint(int(param.low), int(param.high))
    values = list(param.values or [])
    if kind is Distribution.GRID or enumerate_choice:
        return tune.grid_search(values)
    return tune.choice(values)


def search_space(spec: SweepSpec) -> dict[str, Any]:
    """``param_space``: wire param name -> domain (trials receive exactly these keys)."""
    enumerate_choice = spec.algorithm is Algorithm.GRID
    return {
        name: param_domain(param, enumerate_choice=enumerate_choice)
        for name, param in spec.search_space.items()
    }


class _OptunaSearch(OptunaSearch):
    """OptunaSearch that skips intermediate reports without the objective metric, and
    proposes no configuration a warm start measured already.

    Trials report ``loss`` every few steps and ``primary_score`` only at eval points;
    stock OptunaSearch would fail on the first loss-only report. A proposal equal to a
    ``measured`` configuration is told its measured value (Optuna's own recipe for
    duplicates) and another is asked for; after :data:`MAX_PROPOSALS` the space counts
    as exhausted and the search ends.
    """

    def __init__(self, *args: Any, measured: dict[MeasuredKey, float] | None = None, **kw: Any):
        super().__init__(*args, **kw)
        self.measured = measured or {}
        self.exhausted = False

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        if isinstance(self.metric, str) and self.metric in result:
            super().on_trial_result(trial_id, result)

    def suggest(self, trial_id: str) -> dict[Any, Any] | None:
        for _ in range(MAX_PROPOSALS):
            params = super().suggest(trial_id)
            if not self.measured or not isinstance(params, dict):
                return params
            value = measured_value(params, self.measured)
            if value is None:
                return params
            study: Any = self._ot_study
            study.tell(self._ot_trials.pop(trial_id), value)
        self.exhausted = True
        return Searcher.FINISHED  # type: ignore[return-value]  # Ray's documented "no more"


def optuna_sampler(spec: SweepSpec, warm: WarmStart | None = None) -> Any:
    """The Optuna sampler of a model-based algorithm (tpe, cmaes, qmc, gp), seeded.

    The model-based ones start with random trials (half the sweep, 2 to 10) before they
    model anything; qmc is a scrambled Sobol sequence (unscrambled, every seed would try
    the same points).
    """
    import optuna
    from optuna import samplers

    startup = max(2, min(10, spec.max_trials // 2))
    seed = spec.seed
    if spec.algorithm is Algorithm.CMAES:
        with warnings.catch_warnings():  # source_trials: "experimental" since Optuna 2.6
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return samplers.CmaEsSampler(
                seed=seed,
                n_startup_trials=startup,
                warn_independent_sampling=False,
                source_trials=cma_source_trials(spec, warm) if warm is not None else None,
            )
    if spec.algorithm is Algorithm.QMC:
        return samplers.QMCSampler(
            qmc_type="sobol", scramble=True, seed=seed, warn_independent_sampling=False
        )
    if spec.algorithm is Algorithm.GP:
        from tunix_rt.tune.gp_sampler import GPSampler

        return GPSampler(seed=seed, n_startup_trials=startup)
    return samplers.TPESampler(seed=seed, n_startup_trials=startup)


def search_algorithm(
    spec: SweepSpec, warm: WarmStart | None = None
) -> SearchAlgorithm | ConcurrencyLimiter:
    """The search algorithm, with the sweep's concurrency limit built in, and a warm
    start's trials fed to it (:mod:`tunix_rt.tune.warm_search`)."""
    if spec.algorithm in MODEL_BASED:
        fed: dict[str, Any] = {}
        if warm is not None and warm.trials:
            fed = {
                "points_to_evaluate": warm.points(),
                "evaluated_rewards": list(warm.values),
                "measured": warm.measured(),
            }
        searcher = _OptunaSearch(
            metric=spec.objective.metric,
            mode=spec.objective.mode,
            sampler=optuna_sampler(spec, warm),
            **fed,
        )
        return ConcurrencyLimiter(searcher, max_concurrent=spec.max_concurrent_trials)
    generator = BasicVariantGenerator(
        max_concurrent=spec.max_concurrent_trials,
        random_state=spec.seed,
        constant_grid_search=True,
    )
    if warm is None or warm.rerun or not warm.trials:
        return generator
    grid = spec.algorithm is Algorithm.GRID
    return SkipMeasured(generator, warm.keys(), grid, warm.planned())


def scheduler(spec: SweepSpec) -> TrialScheduler:
    """The early-stopping scheduler; it compares ``scheduler.metric`` over ``step``."""
    sched = spec.scheduler
    if sched.type is SchedulerType.ASHA:
        # Rungs strictly below smokeSteps: a trial that reaches the end still has its
        # final eval to run, and is never cut there.
        max_t = max(1, spec.budget.smoke_steps - 1)
        return ASHAScheduler(
            time_attr="step",
            metric=sched.metric,
            mode=sched.mode,
            max_t=max_t,
            grace_period=min(sched.grace_period, max_t),
            reduction_factor=sched.reduction_factor,
            stop_last_trials=False,
        )
    if sched.type is SchedulerType.MEDIAN:
        return MedianStoppingRule(
            time_attr="step",
            metric=sched.metric,
            mode=sched.mode,
            grace_period=sched.grace_period,
            min_samples_required=3,
        )
    return FIFOScheduler()  # type: ignore[no-untyped-call]


def trial_resources(spec: SweepSpec) -> dict[str, float]:
    """Per-trial resources for ``tune.with_resources`` (a multi-host trial: all its
    workers together, for the local fit check; Tune reserves them through its JaxTrainer)."""
    res = spec.resources
    if res.spans_hosts():
        return multihost.total_resources(spec)
    out: dict[str, float] = {"cpu": res.cpu}
    if res.gpu:
        out["gpu"] = res.gpu
    if res.memory:
        out["memory"] = float(quantity_bytes(res.memory))
    if res.tpu:
        out["TPU"] = float(res.tpu)
    return out


def tune_config(spec: SweepSpec, warm: WarmStart | None = None) -> tune.TuneConfig:
    """Metric/mode live on the searcher and scheduler (they differ: primary_score vs loss)."""
    return tune.TuneConfig(
        search_alg=BudgetGate(search_algorithm(spec, warm)),
        scheduler=scheduler(spec),
        num_samples=spec.samples() + (warm.extra_samples() if warm is not None else 0),
        time_budget_s=spec.budget.sweep_timeout_seconds,
        trial_name_creator=trial_name,
        trial_dirname_creator=trial_name,
        reuse_actors=reuse_workers(spec),
    )


def reuse_workers(spec: SweepSpec) -> bool:
    """Run a trial in the worker process the last one ended in (Ray Tune's
    ``reuse_actors``) when trials are the built-in trainer on one host: JAX stays
    imported, and the dataset and the compiled train step stay cached in the process
    (``train/data.py``, ``train/train_step.py``), so a short trial no longer pays for a
    process start (benchmarks/README.md, ``tune_overhead_fraction``). Not for Tunix
    (a model's state per trial), a user's trainer (its own module state) or multi-host
    trials (a Ray Train run each). A trial that a scheduler or stopper ends is ended right
    after a report, while its thread waits there (function trainables report
    synchronously), so its thread exits at once and the process is free for the next
    (``tests/tune/test_tune_runs.py`` checks one worker across ASHA-stopped trials)."""
    return spec.trainer.backend == "builtin" and not spec.resources.spans_hosts()


def trial_name(trial: Any) -> str:
    """Trial name and folder = its id, the name of its result file."""
    return str(trial.trial_id)
