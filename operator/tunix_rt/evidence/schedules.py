"""The report's PBT section: the schedule each trial followed, and which to replay.

Under scheduler pbt a trial's params change mid-run and its weights may come from
another trial, so its final params alone do not say how it got its score; this table
does (the best trial's rows are what ``tunix-rt promote`` turns into a Rehearsal's
``trainer.schedule``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tunix_rt.evidence.charts import line_chart
from tunix_rt.evidence.markup import esc, fmt


def _get(obj: Mapping[str, Any], snake: str, camel: str) -> Any:
    return obj.get(snake, obj.get(camel))


def _steps(trial: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [s for s in trial.get("schedule") or [] if isinstance(s, Mapping)]


def schedule_charts(trials: Sequence[Mapping[str, Any]], best: str | None) -> list[str]:
    """One step chart per scheduled param: its value over the steps, a line a trial."""
    names = sorted({k for t in trials for s in _steps(t) for k in s.get("params") or {}})
    charts = []
    for name in names:
        series: dict[str, list[tuple[float, float]]] = {}
        for trial in trials:
            points: list[tuple[float, float]] = []
            steps = _steps(trial)
            end = float(trial.get("steps") or 0)
            for i, step in enumerate(steps):
                value = (step.get("params") or {}).get(name)
                if not isinstance(value, int | float):
                    continue
                start = float(step["step"])
                # a hair before the next step: the chart orders points by x
                until = float(steps[i + 1]["step"]) - 1e-3 if i + 1 < len(steps) else end
                points += [(start, float(value)), (max(until, start), float(value))]
            if points:
                series[str(_get(trial, "trial_id", "trialId"))] = points
        charts.append(line_chart(series, title=f"PBT schedule: {name}", highlight=best))
    return charts


def schedule_section(trials: Sequence[Mapping[str, Any]], best: str | None) -> str:
    """``<h2>`` + a table of every trial's schedule steps; empty when no trial has one."""
    rows: list[str] = []
    exploits = 0
    for trial in trials:
        steps = trial.get("schedule") or []
        trial_id = str(_get(trial, "trial_id", "trialId") or "?")
        mark = " *" if trial_id == best else ""
        for step in steps:
            if not isinstance(step, Mapping):
                continue
            source = _get(step, "exploited_from", "exploitedFrom")
            exploits += source is not None
            params = ", ".join(
                f"{esc(k)}={esc(fmt(v))}" for k, v in sorted((step.get("params") or {}).items())
            )
            rows.append(
                f"<tr><td>{esc(trial_id + mark)}</td><td>{esc(step.get('step'))}</td>"
                f"<td>{params}</td><td>{esc(source or '—')}</td></tr>"
            )
    if not rows:
        return ""
    return (
        "<h2>PBT schedules</h2><p class='muted'>scheduler pbt: from each step on, the trial's "
        f"weights trained with these params; {exploits} exploit(s) copied another trial's "
        "checkpoint, and the rows before an exploit are that checkpoint's lineage. The best "
        "trial's (*) rows replay as a Rehearsal's trainer.schedule.</p>"
        + "".join(schedule_charts(trials, best))
        + "<table><tr><th>trial</th><th>from step</th><th>params</th><th>exploited from</th>"
        f"</tr>{''.join(rows)}</table>"
    )
