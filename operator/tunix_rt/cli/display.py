"""Rich tables and progress lines for sweeps (shared by ``sweep run`` and ``sweep show``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from tunix_rt.api.results import best_trial, objective_value, ranked
from tunix_rt.api.sweep import Objective
from tunix_rt.api.trial import TrialResult, TrialState
from tunix_rt.scoring import PRIMARY_SCORE

STATE_STYLE = {
    TrialState.PENDING: "dim",
    TrialState.RUNNING: "cyan",
    TrialState.SUCCEEDED: "green",
    TrialState.STOPPED: "yellow",
    TrialState.FAILED: "red",
}


def make_console(stderr: bool = False) -> Console:
    """A console that does not squeeze tables to 80 columns when output is not a terminal."""
    probe = Console(stderr=stderr)
    width = None if probe.is_terminal else 160
    return Console(stderr=stderr, highlight=False, width=width)


def format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def format_params(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={format_value(v)}" for k, v in sorted(params.items()))


def format_score(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def trial_table(
    trials: Iterable[TrialResult], objective: Objective, title: str | None = None
) -> Table:
    """Trials sorted best first by the objective; the best one marked."""
    rows = ranked(list(trials), objective)
    best = best_trial(rows, objective)
    table = Table(title=title, title_justify="left", header_style="bold")
    table.add_column("#", justify="right")
    table.add_column("trial", no_wrap=True)
    table.add_column("state")
    table.add_column(objective.metric, justify="right")
    if objective.metric != PRIMARY_SCORE:
        table.add_column(PRIMARY_SCORE, justify="right")
    table.add_column("params", overflow="fold")
    table.add_column("steps", justify="right")
    table.add_column("time (s)", justify="right")
    for index, trial in enumerate(rows, 1):
        is_best = best is not None and trial.trial_id == best.trial_id
        value = objective_value(trial, objective)
        cells: list[RenderableType] = [
            str(index),
            Text(trial.trial_id + (" *" if is_best else ""), style="bold" if is_best else ""),
            Text(trial.state.value, style=STATE_STYLE.get(trial.state, "")),
            format_score(value),
        ]
        if objective.metric != PRIMARY_SCORE:
            cells.append(format_score(trial.primary_score))
        cells += [
            format_params(trial.params),
            str(trial.steps),
            f"{trial.wall_seconds:.0f}" if trial.wall_seconds else "-",
        ]
        table.add_row(*cells)
    return table


def progress_view(
    name: str,
    trials: list[TrialResult],
    planned: int,
    objective: Objective,
    max_steps: int,
    elapsed: float,
) -> RenderableType:
    """The live view while a sweep runs: counts, a bar, running trials, best so far."""
    done = sum(1 for t in trials if t.finished)
    failed = sum(1 for t in trials if t.state is TrialState.FAILED)
    running = [t for t in trials if t.state is TrialState.RUNNING]
    best = best_trial(trials, objective)
    head = Text.assemble(
        ("sweep ", "dim"),
        (name, "bold"),
        f"  trials {done}/{planned} done",
        (f", {failed} failed" if failed else "", "red"),
        f"  {elapsed:.0f}s",
    )
    top = Table.grid(padding=(0, 2))
    top.add_row(ProgressBar(total=max(planned, 1), completed=done, width=30), head)
    lines: list[RenderableType] = [top]
    for trial in running:
        loss = trial.metrics.get("loss")
        lines.append(
            Text(
                f"  running {trial.trial_id}: step {trial.steps}/{max_steps}"
                + (f", loss {loss:.4f}" if loss is not None else "")
                + f"  ({format_params(trial.params)})",
                style="cyan",
            )
        )
    if best is not None:
        lines.append(
            Text(
                f"  best so far {best.trial_id}: {objective.metric}="
                f"{format_score(objective_value(best, objective))} ({format_params(best.params)})",
                style="green",
            )
        )
    return Group(*lines)
