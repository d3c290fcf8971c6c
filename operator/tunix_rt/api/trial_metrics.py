"""The metric names a trial reports: what objectives and schedulers may name."""

from __future__ import annotations

from tunix_rt.scoring import PRIMARY_SCORE

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
REPORTED_METRICS = (*EVAL_METRICS, *TRAIN_METRICS, *FINAL_METRICS)
"""Every metric a trial reports: what ``objective.metric`` may name."""
SCHEDULER_METRICS = (*TRAIN_METRICS, *EVAL_METRICS)
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
}
"""The range of every reported metric (high None: unbounded): what ``objective.goal`` can
reach (``tests/api`` checks that every reported metric has one)."""
