"""The metric names a trial reports: what objectives and schedulers may name."""

from __future__ import annotations

from tunix_rt.scoring import PRIMARY_SCORE
from tunix_rt.scoring.rewards import REWARD_NAMES, REWARD_RANGES

# What the built-in trainer reports (``train/loop.py``, ``train/evaluate.py``; a trial
# forwards every report to Ray Tune with the latest value of each metric seen so far):
TRAIN_METRICS = ("loss", "learning_rate", "steps_per_second")
"""Reported every ``logEvery`` steps while a trial trains (with ``step``, the time axis)."""
EVAL_METRICS = (
    PRIMARY_SCORE,
    "format_valid_rate",
    "cap_hit_rate",
    "trace_len_p50",
    "trace_len_p95",
    "eval_rows",
)
"""Reported at each eval: every ``eval.evalEvery`` steps (0: only the final eval)."""
FINAL_METRICS = ("compile_seconds", "train_seconds", "eval_seconds")
"""Reported once, when a trial ends."""

# What only some backends report, with the train metrics (every ``logEvery`` steps) and
# again when a trial ends:
REWARD_METRICS = ("reward_mean", *(f"reward_{name}" for name in REWARD_NAMES))
"""The GRPO rewards (``train/backends/tunix_grpo.py``): ``reward_mean`` the mean summed
reward per completion, ``reward_<fn>`` the mean of each of ``scoring.rewards.reward_fns``."""
PREFERENCE_METRICS = ("preference_accuracy",)
"""DPO's (``train/backends/tunix_dpo.py``): the share of preference pairs whose implicit
reward ranks the chosen completion first. (Its ``preference_margin``, unbounded, is
reported for the curves only.)"""
BACKEND_METRICS: dict[str, tuple[str, ...]] = {
    "tunix-grpo": REWARD_METRICS,
    "tunix-dpo": PREFERENCE_METRICS,
}
"""Backend -> the metrics it alone reports: an objective or scheduler naming one needs that
backend. A backend's own metrics: one line here, and their ranges in METRIC_BOUNDS."""
METRIC_BACKENDS: dict[str, tuple[str, ...]] = {
    metric: tuple(backend for backend, own in BACKEND_METRICS.items() if metric in own)
    for metric in dict.fromkeys(m for own in BACKEND_METRICS.values() for m in own)
}
"""Metric -> the backends that report it (only the metrics of BACKEND_METRICS)."""


def backend_metrics_note() -> str:
    """``BACKEND_METRICS`` in words, for field descriptions."""
    return "; ".join(
        f"{', '.join(own)}: backend {backend} only" for backend, own in BACKEND_METRICS.items()
    )


LOGGED_METRICS = (*TRAIN_METRICS, *METRIC_BACKENDS)
"""Metrics reported every ``logEvery`` steps: a scheduler sees them only with ``logEvery``
below the trial's steps."""
REPORTED_METRICS = (*EVAL_METRICS, *TRAIN_METRICS, *FINAL_METRICS, *METRIC_BACKENDS)
"""Every metric a trial reports: what ``objective.metric`` may name."""
SCHEDULER_METRICS = (*TRAIN_METRICS, *EVAL_METRICS, *METRIC_BACKENDS)
"""Metrics reported while a trial trains: what an early-stopping scheduler may compare
(the eval metrics only with ``eval.evalEvery`` > 0)."""

_UNIT = (0.0, 1.0)
_NON_NEGATIVE: tuple[float, float | None] = (0.0, None)
METRIC_BOUNDS: dict[str, tuple[float, float | None]] = {
    PRIMARY_SCORE: _UNIT,  # mean answer correctness
    "format_valid_rate": _UNIT,
    "cap_hit_rate": _UNIT,
    "trace_len_p50": _NON_NEGATIVE,
    "trace_len_p95": _NON_NEGATIVE,
    "eval_rows": _NON_NEGATIVE,
    "loss": _NON_NEGATIVE,  # a cross-entropy
    "learning_rate": (0.0, 1.0),  # trainer.learningRate is at most 1
    "steps_per_second": _NON_NEGATIVE,
    "compile_seconds": _NON_NEGATIVE,
    "train_seconds": _NON_NEGATIVE,
    "eval_seconds": _NON_NEGATIVE,
    "preference_accuracy": _UNIT,
    **{f"reward_{name}": bounds for name, bounds in REWARD_RANGES.items()},
    "reward_mean": (  # the sum of the rewards of one completion, averaged
        sum(low for low, _ in REWARD_RANGES.values()),
        sum(high for _, high in REWARD_RANGES.values()),
    ),
}
"""The range of every reported metric (high None: unbounded): what ``objective.goal`` can
reach (``tests/api`` checks that every reported metric has one)."""
