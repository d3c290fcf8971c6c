"""Pages from their models: the Jinja2 environment (autoescape on: prompts, traces and
errors are untrusted text) and the charts, drawn by the same code as report.html
(:mod:`tunix_rt.evidence.trial_charts`) with each trial's marks linked to its page.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from tunix_rt.evidence.charts import bar_chart
from tunix_rt.evidence.markup import fmt
from tunix_rt.evidence.trial_charts import (
    TrialPlot,
    history_charts,
    log_params,
    parallel_chart,
    param_scatters,
    trial_curve_charts,
)
from tunix_rt.scoring import PRIMARY_SCORE
from tunix_rt.ui.models import SweepView, TrialRow

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"


def when(value: datetime | None) -> str:
    """A moment in UTC, to the minute (``—`` for none)."""
    if value is None:
        return "—"
    moment = value.astimezone(UTC) if value.tzinfo else value
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def duration(seconds: float | None) -> str:
    """``45 s``, ``12 min``, ``3 h 20 min``."""
    if seconds is None:
        return "—"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60)} min"


def as_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def trial_href(namespace: str, sweep: str, trial_id: str) -> str:
    return f"/sweeps/{quote(namespace)}/{quote(sweep)}/trials/{quote(trial_id, safe='')}"


@cache
def environment() -> Environment:
    """The templates' environment, made once (templates are compiled once)."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.filters.update(num=fmt, when=when, duration=duration, json=as_json)
    return env


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)


# ----------------------------------------------------------------------------- charts


@dataclass
class SweepCharts:
    """Every chart of a sweep's page, markup ready to place."""

    bars: Markup = field(default_factory=Markup)
    scatters: list[Markup] = field(default_factory=list)
    parallel: Markup = field(default_factory=Markup)
    curves: list[Markup] = field(default_factory=list)


def plots(view: SweepView) -> list[TrialPlot]:
    """The trials as the shared chart code takes them, each linked to its page."""
    row = view.row
    return [
        TrialPlot(
            trial_id=t.trial_id,
            params=t.params,
            score=t.score,
            curve=t.curve,
            best=t.best,
            state=t.state,
            href=trial_href(row.namespace, row.name, t.trial_id),
        )
        for t in view.trials
    ]


def sweep_charts(view: SweepView) -> SweepCharts:
    """The bars (primary_score a trial), the objective against each parameter, parallel
    coordinates and every trial's learning curves."""
    trials = plots(view)
    if not trials:
        return SweepCharts()
    objective = view.goal.metric
    logs = log_params(view.goal.search_space or None, trials)
    ordered = sorted(view.trials, key=lambda t: t.trial_id)
    bars = bar_chart(
        [(t.trial_id, t.primary_score, t.best) for t in ordered],
        title=f"{PRIMARY_SCORE} per trial (best in orange)",
    )
    return SweepCharts(
        bars=Markup(bars),
        scatters=[Markup(c) for c in param_scatters(trials, objective=objective, log=logs)],
        parallel=Markup(parallel_chart(trials, objective=objective, log=logs)),
        curves=[Markup(c) for c in trial_curve_charts(trials)],
    )


def trial_charts(trial: TrialRow) -> list[Markup]:
    """One trial's learning curve (its record's reports)."""
    return [Markup(c) for c in history_charts(trial.curve)]


def history(summary: dict[str, Any]) -> list[Markup]:
    """A rehearsal's learning curve (eval_summary.json's ``learning_curve``)."""
    curve = summary.get("learning_curve")
    points = [p for p in curve if isinstance(p, dict)] if isinstance(curve, list) else []
    return [Markup(c) for c in history_charts(points)]
