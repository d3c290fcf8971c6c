"""A Sweep's settings that could not take effect, refused at admission (and their CEL twins):
an objective's goal against its metric's range, a metric against the backend that reports
it, a scheduler's fields against its type and the trials it would compare, the budget's
timeouts against each other, and the Sweep's own fields against what its trials run. The
trainer's own: ``takes_effect.py``, which also says how these checks are written;
``docs/refusals.md`` lists every field and its verdict.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tunix_rt.api.base import cel, cel_list
from tunix_rt.api.schedule import PBT_SWEEP_RULES, pbt_sweep_problems
from tunix_rt.api.takes_effect import Problems
from tunix_rt.api.trial_metrics import LOGGED_METRICS, METRIC_BACKENDS, METRIC_BOUNDS, TRAIN_METRICS
from tunix_rt.scoring import PRIMARY_SCORE

if TYPE_CHECKING:
    from tunix_rt.api.sweep import SweepSpec
    from tunix_rt.api.sweep_goals import Budget, Objective, Scheduler

# ----------------------------------------------------------------------------- objective


_BACKEND = "(has(self.trainer) && has(self.trainer.backend) ? self.trainer.backend : 'builtin')"
"""CEL: the Sweep's trainer.backend, defaulted."""

UNBOUNDED_LOSS = ("tunix-grpo", "python")
"""Backends whose ``loss`` may be negative: a GRPO policy loss, or what a user's function
reports (its other train metrics too)."""


def metric_bounds(metric: str, backend: str) -> tuple[float, float | None] | None:
    """The range ``metric`` lies in under ``backend`` (None: any number)."""
    if backend == "python" and metric in TRAIN_METRICS:
        return None
    if backend in UNBOUNDED_LOSS and metric == "loss":
        return None
    return METRIC_BOUNDS.get(metric)


def goal_problem(objective: Objective, backend: str) -> str | None:
    """Why ``objective.goal`` cannot end a sweep usefully (None: it can): outside the
    metric's range no trial reaches it; at the range's bound every trial does."""
    goal, metric = objective.goal, objective.metric
    bounds = metric_bounds(metric, backend)
    if goal is None or bounds is None:
        return None
    low, high = bounds
    where = f"{metric} lies in [{low:g}, {'inf)' if high is None else f'{high:g}]'}"
    if objective.mode == "max":
        if high is not None and goal > high:
            return (
                f"goal {goal:g} is above the best {metric} ({where}): no trial can reach "
                f"it; set goal to at most {high:g}"
            )
        if goal <= low:
            return (
                f"goal {goal:g} is reached by every trial ({where}; mode max), so the sweep "
                f"would end after its first trial; set goal above {low:g}"
            )
    else:
        if goal < low:
            return (
                f"goal {goal:g} is below the least {metric} ({where}): no trial can reach "
                f"it; set goal to at least {low:g}"
            )
        if high is not None and goal >= high:
            return (
                f"goal {goal:g} is reached by every trial ({where}; mode min), so the sweep "
                f"would end after its first trial; set goal below {high:g}"
            )
    return None


def _goal_rule() -> dict[str, str]:
    """The CEL twin of :func:`goal_problem`, on the Sweep (the backend decides loss's range)."""
    metric = f"(has(self.objective.metric) ? self.objective.metric : '{PRIMARY_SCORE}')"
    mode_max = "(!has(self.objective.mode) || self.objective.mode == 'max')"
    backend = _BACKEND
    goal = "self.objective.goal"
    groups: dict[tuple[float, float | None], list[str]] = {}
    for name, bounds in METRIC_BOUNDS.items():
        groups.setdefault(bounds, []).append(name)
    parts = []
    for (low, high), names in groups.items():
        above = f"{goal} <= {float(high)}" if high is not None else "true"
        below = f"{goal} < {float(high)}" if high is not None else "true"
        skip = [n for n in names if n in TRAIN_METRICS]
        free = (
            f"({backend} == 'python' && {metric} in {cel_list(skip)}) || "
            f"({backend} in {cel_list(UNBOUNDED_LOSS)} && {metric} == 'loss') || "
            if skip
            else ""
        )
        parts.append(
            f"!({metric} in {cel_list(names)}) || {free}({mode_max} ? "
            f"({goal} > {float(low)} && {above}) : ({goal} >= {float(low)} && {below}))"
        )
    low, high = METRIC_BOUNDS["reward_mean"]
    return cel(
        "!has(self.objective) || !has(self.objective.goal) || ((" + ") && (".join(parts) + "))",
        "objective.goal is outside what the metric can reach, or every trial reaches it "
        "(primary_score and the rates lie in [0, 1]; lengths, times and the built-in loss "
        f"are >= 0; reward_mean lies in [{low:g}, {high:g}]); set a goal inside",
        ".objective.goal",
    )


# ----------------------------------------------------------------------------- metric vs backend


def backend_metric_problem(metric: str, backend: str, instead: str) -> str | None:
    """Why ``metric`` never reaches an objective or a scheduler of a trial of ``backend``
    (None: it does): only the backends of ``METRIC_BACKENDS`` report it. ``instead``: the
    metric to suggest."""
    backends = METRIC_BACKENDS.get(metric)
    if backends is None or backend in backends:
        return None
    which = " or ".join(backends)
    return (
        f"{metric} is reported by backend {which} only, and trainer.backend is {backend}; "
        f"use {instead} or set trainer.backend {which}"
    )


def metric_backend_problems(spec: SweepSpec) -> Problems:
    """An objective or early-stopping scheduler metric that the trainer's backend never
    reports: Tune would compare nothing and the sweep end with no score (NoScore)."""
    backend = spec.trainer.backend
    out: Problems = []
    problem = backend_metric_problem(spec.objective.metric, backend, PRIMARY_SCORE)
    if problem:
        out.append(("objective.metric", problem))
    if spec.scheduler.type.value != "fifo":  # fifo reads no metric (scheduler_problems)
        problem = backend_metric_problem(spec.scheduler.metric, backend, "loss")
        if problem:
            out.append(("scheduler.metric", problem))
    return out


def _backend_metric_rules() -> list[dict[str, str]]:
    """The CEL twins of :func:`metric_backend_problems`: per group of metrics that the same
    backends report, one rule for the objective and one for the scheduler."""
    groups: dict[tuple[str, ...], list[str]] = {}
    for metric, backends in METRIC_BACKENDS.items():
        groups.setdefault(backends, []).append(metric)
    rules = []
    for backends, names in groups.items():
        which, listed = " or ".join(backends), ", ".join(names)
        allowed = f"{_BACKEND} in {cel_list(backends)}"
        for field, guard, instead in (
            ("objective", "has(self.objective)", PRIMARY_SCORE),
            ("scheduler", _SCHED_ON, "loss"),
        ):
            metric = f"self.{field}.metric"
            rules.append(
                cel(
                    f"!({guard}) || !has({metric}) || !({metric} in {cel_list(names)}) || "
                    f"{allowed}",
                    f"{listed} are reported by backend {which} only; use {instead} or set "
                    f"trainer.backend {which}",
                    f".{field}.metric",
                )
            )
    return rules


# ----------------------------------------------------------------------------- scheduler

SCHEDULER_DEFAULTS: dict[str, Any] = {
    "gracePeriod": 50,
    "reductionFactor": 3.0,
    "metric": "loss",
    "mode": "min",
}
"""Scheduler fields and their defaults: all of them unread by fifo."""


PBT_FIELDS = ("perturbationInterval", "quantileFraction", "resampleProbability", "synchronous")
"""Fields read by scheduler pbt only."""


def _unread(kind: str, key: str) -> bool:
    """Whether scheduler ``kind`` ignores field ``key``."""
    if key in PBT_FIELDS:
        return kind != "pbt"
    if kind == "pbt":
        return key in ("gracePeriod", "reductionFactor")
    return kind == "fifo" or (kind == "median" and key == "reductionFactor")


def scheduler_problems(sched: Scheduler) -> Problems:
    """Scheduler fields its type does not read, and what pbt needs."""
    kind = sched.type.value
    wire = sched.to_wire()
    out: Problems = []
    for key in (*SCHEDULER_DEFAULTS, *PBT_FIELDS):
        default = SCHEDULER_DEFAULTS.get(key)
        if _unread(kind, key) and wire.get(key, default) != default:
            hint = "pbt" if key in PBT_FIELDS else "asha or median"
            hint = "asha" if key == "reductionFactor" else hint
            out.append(
                (
                    key,
                    f"{key}={wire[key]} is not read by scheduler {kind}"
                    + (" (it stops no trial)" if kind == "fifo" else "")
                    + f"; remove {key} or use type {hint}",
                )
            )
    if kind == "pbt" and sched.perturbation_interval is None:
        out.append(
            (
                "perturbationInterval",
                "scheduler pbt needs perturbationInterval: the steps between exploit/explore "
                "decisions (e.g. budget.smokeSteps / 4, a multiple of trainer.checkpointEvery)",
            )
        )
    return out


SCHEDULER_RULES = [
    cel(
        "(has(self.type) && self.type != 'fifo') || ("
        + " && ".join(
            f"(!has(self.{key}) || self.{key} == {default!r})"
            for key, default in SCHEDULER_DEFAULTS.items()
        )
        + ")",
        "scheduler fifo stops no trial and reads no gracePeriod, reductionFactor, metric or "
        "mode; remove them or use type asha or median",
        ".type",
    ),
    cel(
        "!has(self.type) || self.type != 'median' || !has(self.reductionFactor) || "
        "self.reductionFactor == 3.0",
        "reductionFactor is read by asha only; remove it or use type asha",
        ".reductionFactor",
    ),
    cel(
        "(has(self.type) && self.type == 'pbt') == has(self.perturbationInterval) && "
        "((has(self.type) && self.type == 'pbt') || (!has(self.quantileFraction) && "
        "!has(self.resampleProbability) && !has(self.synchronous)))",
        "scheduler pbt needs perturbationInterval, and perturbationInterval, "
        "quantileFraction, resampleProbability and synchronous are read by pbt only",
        ".type",
    ),
    cel(
        "!has(self.type) || self.type != 'pbt' || ((!has(self.gracePeriod) || "
        "self.gracePeriod == 50) && (!has(self.reductionFactor) || self.reductionFactor == 3.0))",
        "gracePeriod and reductionFactor are not read by scheduler pbt; remove them",
        ".type",
    ),
]

MIN_TRIALS = {"asha": 2, "median": 4, "pbt": 2}
"""Trials an early-stopping scheduler needs to stop one: ASHA compares a trial with those
recorded before it at a rung; Ray's median rule needs 3 others past the same step."""


def sweep_scheduler_problems(spec: SweepSpec) -> Problems:
    """An early-stopping scheduler that could never stop a trial of this sweep."""
    sched, steps = spec.scheduler, spec.budget.smoke_steps
    kind = sched.type.value
    if kind == "fifo":
        return []
    out: Problems = []
    if kind != "pbt" and sched.grace_period >= steps:
        out.append(
            (
                "scheduler.gracePeriod",
                f"gracePeriod={sched.grace_period} is not below budget.smokeSteps ({steps}), "
                f"where every trial ends: {kind} could never stop one; set gracePeriod below "
                f"{steps} (e.g. {max(1, steps // 4)})",
            )
        )
    need, planned = MIN_TRIALS[kind], spec.planned_trials()
    if planned < need:
        out.append(
            (
                "scheduler.type",
                f"{kind} compares trials and needs at least {need} to stop one, and the sweep "
                f"runs {planned}; raise maxTrials to {need} or use type fifo",
            )
        )
    log_every = spec.trainer.log_every
    if sched.metric in LOGGED_METRICS and log_every >= steps:
        out.append(
            (
                "scheduler.metric",
                f"{sched.metric} is reported every trainer.logEvery ({log_every}) steps, not "
                f"below budget.smokeSteps ({steps}), so {kind} never sees it while trials "
                f"train; set trainer.logEvery below {steps}",
            )
        )
    return out


_STEPS = "(has(self.budget) && has(self.budget.smokeSteps) ? self.budget.smokeSteps : 300)"
_SCHED_ON = "has(self.scheduler) && has(self.scheduler.type) && self.scheduler.type != 'fifo'"
_MAX_TRIALS = "(has(self.maxTrials) ? self.maxTrials : 5)"

# ----------------------------------------------------------------------------- the sweep


def sweep_problems(spec: SweepSpec) -> Problems:
    """What a Sweep's trials would never use: its own fields against each other."""
    out = metric_backend_problems(spec) + sweep_scheduler_problems(spec)
    out += pbt_sweep_problems(spec)
    problem = goal_problem(spec.objective, spec.trainer.backend)
    if problem:
        out.append(("objective.goal", problem))
    steps = spec.budget.smoke_steps
    if spec.trainer.max_steps not in (300, steps):
        out.append(
            (
                "trainer.maxSteps",
                f"trainer.maxSteps={spec.trainer.max_steps} is replaced by budget.smokeSteps "
                f"({steps}) in every trial; remove it and set budget.smokeSteps",
            )
        )
    every = spec.trainer.checkpoint_every
    if every > steps:
        out.append(
            (
                "trainer.checkpointEvery",
                f"trainer.checkpointEvery={every} is past budget.smokeSteps ({steps}), where "
                "every trial ends, so no trial would save a checkpoint to resume from; set "
                f"it below {steps} (e.g. {max(1, steps // 4)}) or to 0 (never)",
            )
        )
    points, planned = spec.grid_points(), spec.planned_trials()
    if planned != spec.max_trials:
        out.append(
            (
                "maxTrials",
                f"the grid has {points} points, so maxTrials={spec.max_trials} runs "
                f"{planned} trials (whole repeats of the grid); set maxTrials to {planned} "
                f"or {planned + points}",
            )
        )
    if spec.max_failed_trials > planned:
        out.append(
            (
                "maxFailedTrials",
                f"maxFailedTrials={spec.max_failed_trials} exceeds the {planned} trials the "
                f"sweep runs, so it can never be reached; set it to at most {planned}",
            )
        )
    if spec.algorithm.value == "grid" and spec.seed != 0:
        out.append(
            (
                "seed",
                f"seed={spec.seed} seeds the search, and algorithm grid enumerates every "
                "point in order (nothing is sampled); remove seed, or seed the trainer with "
                "trainer.seed",
            )
        )
    return out


def budget_problems(budget: Budget) -> Problems:
    """A trial timeout the sweep's own time caps always reach first."""
    trial = budget.trial_timeout_seconds
    out: Problems = []
    for key, cap in (
        ("sweepTimeoutSeconds", budget.sweep_timeout_seconds),
        ("wallClockSeconds", budget.wall_clock_seconds),
    ):
        if trial is not None and cap is not None and trial >= cap:
            out.append(
                (
                    "trialTimeoutSeconds",
                    f"trialTimeoutSeconds={trial} is not below {key} ({cap}), which "
                    f"ends every trial first; lower trialTimeoutSeconds below {cap} or remove it",
                )
            )
    return out


BUDGET_RULES = [
    cel(
        f"!has(self.trialTimeoutSeconds) || !has(self.{key}) || "
        f"self.trialTimeoutSeconds < self.{key}",
        f"trialTimeoutSeconds must be below {key}, which ends every trial first",
        ".trialTimeoutSeconds",
    )
    for key in ("sweepTimeoutSeconds", "wallClockSeconds")
]

SWEEP_RULES = [
    *PBT_SWEEP_RULES,
    _goal_rule(),
    *_backend_metric_rules(),
    cel(
        f"!({_SCHED_ON}) || !has(self.scheduler.gracePeriod) || "
        f"self.scheduler.gracePeriod < {_STEPS}",
        "scheduler.gracePeriod must be below budget.smokeSteps, where every trial ends, or "
        "no trial is ever stopped",
        ".scheduler.gracePeriod",
    ),
    cel(
        f"!({_SCHED_ON}) || {_MAX_TRIALS} >= (self.scheduler.type == 'median' ? 4 : 2)",
        "an early-stopping scheduler compares trials: asha needs maxTrials >= 2, median >= 4",
        ".scheduler.type",
    ),
    cel(
        f"!({_SCHED_ON}) || (has(self.scheduler.metric) && !(self.scheduler.metric in "
        f"{cel_list(LOGGED_METRICS)})) || (has(self.trainer) && has(self.trainer.logEvery) "
        f"? self.trainer.logEvery : 25) < {_STEPS}",
        "the scheduler metric is reported every trainer.logEvery steps: set logEvery below "
        "budget.smokeSteps",
        ".scheduler.metric",
    ),
    cel(
        "!has(self.trainer) || !has(self.trainer.maxSteps) || self.trainer.maxSteps == 300 "
        f"|| self.trainer.maxSteps == {_STEPS}",
        "budget.smokeSteps replaces trainer.maxSteps in every trial; remove trainer.maxSteps",
        ".trainer.maxSteps",
    ),
    cel(
        "!has(self.trainer) || !has(self.trainer.checkpointEvery) || "
        f"self.trainer.checkpointEvery <= {_STEPS}",
        "trainer.checkpointEvery is past budget.smokeSteps, where every trial ends: no "
        "checkpoint would be saved; lower it or set 0",
        ".trainer.checkpointEvery",
    ),
    cel(
        f"!has(self.maxFailedTrials) || self.maxFailedTrials <= {_MAX_TRIALS}",
        "maxFailedTrials exceeds maxTrials and can never be reached",
        ".maxFailedTrials",
    ),
    cel(
        "!has(self.algorithm) || self.algorithm != 'grid' || !has(self.seed) || self.seed == 0",
        "algorithm grid samples nothing, so seed has no effect; remove it (trainer.seed seeds "
        "the trainer)",
        ".seed",
    ),
]
