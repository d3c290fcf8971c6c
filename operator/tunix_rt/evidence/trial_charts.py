"""Which charts a run gets, decided once for report.html and the web view (``tunix-rt ui``):

* a sweep's trials: the objective against each searched parameter (a log axis for
  loguniform ones), parallel coordinates of every parameter and the objective, and the
  learning curves of every trial (loss, the eval score, rewards) one chart a metric;
* one run's history (a trial, a rehearsal): loss, rewards, primary_score and the
  learning rate, one chart each.

Both callers pass plain data: the report the wire form of a summary, the web view its
models (:class:`TrialPlot` is what they agree on).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tunix_rt.evidence.charts import line_chart
from tunix_rt.evidence.marks import Mark, Value, axis_value, parallel_coordinates, scatter_chart
from tunix_rt.scoring import PRIMARY_SCORE

REWARD_PREFIX = "reward"
"""History metrics plotted together as the reward curves (GRPO reports ``reward_mean``
and ``reward_<fn>`` per reward function)."""
_CURVE_PRIORITY = (PRIMARY_SCORE, "format_valid_rate", "learning_rate", "lr")
_CURVE_SKIP = ("seconds", "per_second", "eval_rows", "step")
_TRIAL_METRICS = (PRIMARY_SCORE, "preference_accuracy")
"""Eval metrics whose per-trial curves are drawn (besides losses and rewards)."""
LOG_SPAN = 100.0
"""Without a spec to say which parameters are loguniform, a positive parameter whose
values span this factor or more gets a log axis."""
CURVE_CHARTS_MAX = 6


@dataclass(frozen=True)
class TrialPlot:
    """One trial as the sweep charts see it."""

    trial_id: str
    params: Mapping[str, Any]
    score: float | None
    """The sweep objective's value (None: not scored yet, or failed)."""
    curve: Sequence[Mapping[str, Any]] = ()
    best: bool = False
    state: str = ""
    href: str | None = None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def wire_score(trial: Mapping[str, Any], metric: str = PRIMARY_SCORE) -> float | None:
    """A stored trial's (wire form, camelCase or snake_case) value of ``metric``."""
    if metric == PRIMARY_SCORE:
        return _number(trial.get(PRIMARY_SCORE, trial.get("primaryScore")))
    return _number((trial.get("metrics") or {}).get(metric))


def from_wire(
    trials: Iterable[Mapping[str, Any]], best: str | None, metric: str = PRIMARY_SCORE
) -> list[TrialPlot]:
    """Trial records as a summary stores them, for the charts."""
    out = []
    for trial in trials:
        trial_id = str(trial.get("trial_id", trial.get("trialId", "?")))
        out.append(
            TrialPlot(
                trial_id=trial_id,
                params=trial.get("params") or {},
                score=wire_score(trial, metric),
                curve=[p for p in trial.get("curve") or [] if isinstance(p, Mapping)],
                best=trial_id == best,
                state=str(trial.get("state", "")),
            )
        )
    return out


def param_names(trials: Sequence[TrialPlot]) -> list[str]:
    return sorted({name for trial in trials for name in trial.params})


def log_params(space: Mapping[str, Any] | None, trials: Sequence[TrialPlot]) -> frozenset[str]:
    """The parameters drawn on a log axis: loguniform in the search space (wire form);
    without a space, positive ones whose values span :data:`LOG_SPAN` or more."""
    if space is not None:
        return frozenset(
            name
            for name, param in space.items()
            if isinstance(param, Mapping) and param.get("type") == "loguniform"
        )
    logs = set()
    for name in param_names(trials):
        values = [v for t in trials if (v := _number(t.params.get(name))) is not None]
        if values and min(values) > 0 and max(values) / min(values) >= LOG_SPAN:
            logs.add(name)
    return frozenset(logs)


def _marks(trials: Sequence[TrialPlot], objective: str) -> list[Mark]:
    marks = []
    for trial in trials:
        values: dict[str, Value | None] = {k: axis_value(v) for k, v in trial.params.items()}
        values[objective] = trial.score
        note = trial.state + (", best" if trial.best else "")
        marks.append(Mark(trial.trial_id, values, trial.best, trial.href, note))
    return marks


def param_scatters(
    trials: Sequence[TrialPlot], *, objective: str = PRIMARY_SCORE, log: Iterable[str] = ()
) -> list[str]:
    """One scatter chart per searched parameter: the objective against it, a point a
    scored trial."""
    logs, marks = set(log), _marks(trials, objective)
    return [
        scatter_chart(
            marks, x=name, y=objective, title=f"{objective} vs {name}", log_x=name in logs
        )
        for name in param_names(trials)
    ]


def parallel_chart(
    trials: Sequence[TrialPlot], *, objective: str = PRIMARY_SCORE, log: Iterable[str] = ()
) -> str:
    """Parallel coordinates: every searched parameter, then the objective; a line a trial."""
    logs = set(log)
    axes = [(name, name in logs) for name in param_names(trials)] + [(objective, False)]
    return parallel_coordinates(
        _marks(trials, objective), axes, title=f"Parameters and {objective}, a line a trial"
    )


def _points(curve: Sequence[Mapping[str, Any]], metric: str) -> list[tuple[float, float]]:
    points = []
    for index, point in enumerate(curve):
        step, value = _number(point.get("step", index)), _number(point.get(metric))
        if step is not None and value is not None:
            points.append((step, value))
    return points


def curve_metrics(trials: Sequence[TrialPlot]) -> list[str]:
    """The metrics whose per-trial curves are drawn: losses, the eval score(s), rewards;
    only those of which some trial has two points or more (a final eval alone is a dot
    a trial, which the scatter charts show better)."""
    counts: dict[str, int] = {}
    for trial in trials:
        for key in {k for p in trial.curve for k, v in p.items() if _number(v) is not None}:
            counts[key] = max(counts.get(key, 0), len(_points(trial.curve, key)))
    keys = {k for k, n in counts.items() if n >= 2}
    losses = sorted((k for k in keys if "loss" in k), key=lambda k: (k != "loss", k))
    evals = [k for k in _TRIAL_METRICS if k in keys]
    rewards = sorted(
        (k for k in keys if k.startswith(REWARD_PREFIX)), key=lambda k: k != "reward_mean"
    )
    return (losses + evals + rewards)[:CURVE_CHARTS_MAX]


def trial_curve_charts(trials: Sequence[TrialPlot]) -> list[str]:
    """One line chart per metric of :func:`curve_metrics`, a line a trial (the best in
    orange)."""
    best = next((t.trial_id for t in trials if t.best), None)
    charts = []
    for metric in curve_metrics(trials):
        series = {t.trial_id: pts for t in trials if (pts := _points(t.curve, metric))}
        charts.append(line_chart(series, title=f"Learning curves: {metric}", highlight=best))
    return charts


def curve_series(history: Sequence[Mapping[str, Any]]) -> list[tuple[str, dict[str, list[Any]]]]:
    """Charts to draw from one run's history: the loss series together, the rewards
    together, then primary_score, format_valid_rate and the learning rate; any series with
    fewer than 2 points is left out (a final-eval-only metric is in the metrics table, not
    a curve)."""
    points: dict[str, list[tuple[float, float]]] = {}
    for index, point in enumerate(history):
        step = point.get("step", index)
        if not isinstance(step, int | float) or isinstance(step, bool):
            continue
        for key, value in point.items():
            if key == "step" or isinstance(value, bool) or not isinstance(value, int | float):
                continue
            if math.isfinite(value):
                points.setdefault(key, []).append((float(step), float(value)))
    usable = {k: v for k, v in points.items() if len(v) >= 2}
    charts: list[tuple[str, dict[str, list[Any]]]] = []
    loss = {k: usable[k] for k in sorted(usable) if "loss" in k}
    if loss:
        charts.append(("loss", loss))
    reward = {k: usable[k] for k in sorted(usable) if k.startswith(REWARD_PREFIX)}
    if reward:  # GRPO: reward_mean and one reward_<fn> per reward function
        charts.append(("reward", reward))
    for key in _CURVE_PRIORITY:
        if key in usable:
            charts.append((key, {key: usable[key]}))
    if not charts:  # an unfamiliar history: show what there is, timings aside
        for key in sorted(usable)[:4]:
            if not any(part in key for part in _CURVE_SKIP):
                charts.append((key, {key: usable[key]}))
    return charts


def history_charts(history: Sequence[Mapping[str, Any]]) -> list[str]:
    """One run's learning curve, one chart per group of :func:`curve_series`."""
    return [line_chart(series, title=name) for name, series in curve_series(history)]
