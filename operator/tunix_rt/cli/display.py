"""Rich tables, progress lines and the best trial for sweeps (``sweep run``, ``sweep show``)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from rich import box
from rich.console import Console, Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from tunix_rt.api.sweep import SweepSpec
from tunix_rt.api.sweep_goals import Objective
from tunix_rt.api.trial import TrialResult, TrialState
from tunix_rt.cli.activity import Activity
from tunix_rt.cli.common import esc
from tunix_rt.contract.best_trial import best_trial, objective_value, ranked
from tunix_rt.display_text import format_params, format_score
from tunix_rt.scoring import PRIMARY_SCORE

STATE_STYLE = {
    TrialState.PENDING: "dim",
    TrialState.RUNNING: "cyan",
    TrialState.SUCCEEDED: "green",
    TrialState.STOPPED: "yellow",
    TrialState.FAILED: "red",
}


def make_console(stderr: bool = False) -> Console:
    """A console that does not squeeze tables to 80 columns when output is not a terminal
    (unless COLUMNS says how wide to be). User text printed through it is escaped
    (:func:`tunix_rt.cli.common.esc`) or passed as :class:`Text`, never read as markup."""
    probe = Console(stderr=stderr)
    width = None if probe.is_terminal or os.environ.get("COLUMNS", "").isdigit() else 160
    return Console(stderr=stderr, highlight=False, width=width)


def _header(table: Table, name: str, **options: Any) -> None:
    """A column whose header is never cut: at least as wide as its longest word."""
    words = name.split()
    table.add_column(Text(name), min_width=max(len(w) for w in words), **options)


CUT = "Interrupted"
"""How a trial whose record still says Running (or Pending) reads once its driver ended:
it was cut, and a rerun continues it."""


def preemption_line(trials: Iterable[TrialResult]) -> str | None:
    """``preemptions: N (...)`` when trials lost their worker and resumed; else None."""
    own = [t for t in trials if not t.reused]  # a warm start's were another sweep's
    count = sum(t.preemptions for t in own)
    if not count:
        return None
    lost = sum(t.lost_accelerator_hours for t in own)
    return f"preemptions: {count} (resumed from checkpoints; {lost:.4f} accelerator-hours re-done)"


def trial_table(
    trials: Iterable[TrialResult],
    objective: Objective,
    title: str | None = None,
    *,
    cut: bool = False,
) -> Table:
    """Trials sorted best first by the objective; the best one marked. ``cut``: the
    driver has ended, so unfinished trials read Interrupted, not Running.

    Fits 80 columns with every header whole: the params column folds, the others keep
    their header's width. Every cell is a :class:`Text`, so names and values print as
    written (``[red]lr`` is not markup).
    """
    rows = ranked(list(trials), objective)
    best = best_trial(rows, objective)
    table = Table(
        title=Text(title) if title is not None else None,
        title_justify="left",
        header_style="bold",
        box=box.SIMPLE_HEAD,
        padding=(0, 1, 0, 0),
        pad_edge=False,
        show_edge=False,
    )
    _header(table, "#", justify="right")
    _header(table, "trial", overflow="fold")
    _header(table, "state")
    _header(table, objective.metric, justify="right", overflow="fold")
    if objective.metric != PRIMARY_SCORE:
        _header(table, PRIMARY_SCORE, justify="right")
    _header(table, "params", overflow="fold")
    _header(table, "steps", justify="right")
    _header(table, "time", justify="right")
    for index, trial in enumerate(rows, 1):
        is_best = best is not None and trial.trial_id == best.trial_id
        value = objective_value(trial, objective)
        cells: list[RenderableType] = [
            Text(str(index)),
            Text(trial.trial_id + (" *" if is_best else ""), style="bold" if is_best else ""),
            _state_cell(trial, cut),
            Text(format_score(value)),
        ]
        if objective.metric != PRIMARY_SCORE:
            cells.append(Text(format_score(trial.primary_score)))
        cells += [
            Text(format_params(trial.params)),
            Text(str(trial.steps)),
            Text(f"{trial.wall_seconds:.0f}s" if trial.wall_seconds else "-"),
        ]
        table.add_row(*cells)
    return table


def _state_cell(trial: TrialResult, cut: bool) -> Text:
    if trial.reused_from is not None:  # measured by the earlier sweep a warm start names
        return Text("Reused", style="dim")
    if cut and not trial.finished:
        return Text(CUT, style="yellow")
    return Text(trial.state.value, style=STATE_STYLE.get(trial.state, ""))


def progress_view(
    name: str,
    trials: list[TrialResult],
    planned: int,
    objective: Objective,
    max_steps: int,
    elapsed: float,
    per_trial: Mapping[str, float] | None = None,
    activity: Activity | None = None,
    driver_started: bool = False,
) -> RenderableType:
    """The live view while a sweep runs: counts, a bar, Ray Tune's status line (pending,
    running, terminated; the resources running trials hold), what it is doing before a
    trial trains (:class:`Activity`), running trials with their speed, best so far."""
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
    lines: list[RenderableType] = [top, status_line(planned, done, failed, len(running), per_trial)]
    stage = activity.stage(trials, driver_started) if activity is not None else None
    if stage is not None:
        lines.append(Text(f"  {stage}…", style="cyan"))
    for trial in running:
        loss = trial.metrics.get("loss")
        lines.append(
            Text(
                f"  running {trial.trial_id}: step {trial.steps}/{max_steps}"
                + (activity.speed(trial) if activity is not None else "")
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


def status_line(
    planned: int,
    done: int,
    failed: int,
    running: int,
    per_trial: Mapping[str, float] | None,
) -> Text:
    """``pending 3 | running 2 | terminated 0 (0 failed) | using 2 CPU, 1 GPU``: what Ray
    Tune's status table says, from the trial records."""
    pending = max(planned - done - running, 0)
    text = f"  pending {pending} | running {running} | terminated {done} ({failed} failed)"
    if per_trial:
        used = ", ".join(f"{amount * running:g} {name}" for name, amount in per_trial.items())
        each = ", ".join(f"{amount:g} {name}" for name, amount in per_trial.items())
        text += f" | using {used} ({each} a trial)"
    return Text(text, style="dim")


def print_best(
    console: Console, trials: list[TrialResult], objective: Objective
) -> TrialResult | None:
    """The best trial's line (none without one); the best trial."""
    best = best_trial(trials, objective)
    if best is not None:
        console.print(
            f"[bold green]best trial {esc(best.trial_id)}[/bold green]: {esc(objective.metric)}="
            f"{format_score(objective_value(best, objective))} "
            f"({esc(format_params(best.params))})",
            soft_wrap=True,
        )
    return best


class ProgressLines:
    """Progress for logs and CI (no terminal): one line per trial state change."""

    def __init__(self, console: Console, spec: SweepSpec, since: datetime | None = None) -> None:
        self.console = console
        self.spec = spec
        self.seen: dict[str, TrialState] = {}
        self.finished = 0
        self.since = since
        """When this run started: trials that finished before are counted, not listed."""
        self.said: str | None = None

    def note(self, stage: str | None) -> None:
        """Say what the sweep is doing (starting Ray, compiling), once each time it changes."""
        if stage is not None and stage != self.said:
            self.console.print(Text(f"… {stage}", style="dim"))
        self.said = stage

    def update(self, trials: list[TrialResult], planned: int) -> None:
        for trial in sorted(trials, key=lambda t: t.started_at or datetime.min.replace(tzinfo=UTC)):
            if self.seen.get(trial.trial_id) is trial.state:
                continue
            if trial.trial_id not in self.seen and self._earlier(trial):
                self.seen[trial.trial_id] = trial.state
                self.finished += 1
                continue
            self.seen[trial.trial_id] = trial.state
            if trial.finished:
                self.finished += 1
            done = self.finished
            if trial.state is TrialState.RUNNING:
                params = format_params(trial.params)
                self.console.print(
                    f"[{done}/{planned}] trial {esc(trial.trial_id)} running ({esc(params)})"
                )
            elif trial.finished:
                extra = (
                    f": {trial.error.splitlines()[-1]}"
                    if trial.state is TrialState.FAILED and trial.error
                    else f", {PRIMARY_SCORE}={format_score(trial.primary_score)}"
                )
                self.console.print(
                    f"[{done}/{planned}] trial {esc(trial.trial_id)} "
                    f"{trial.state.value.lower()}{esc(extra)}"
                )

    def _earlier(self, trial: TrialResult) -> bool:
        """It finished in an earlier run (a resumed sweep): counted, not announced."""
        ended, since = trial.finished_at, self.since
        return trial.finished and since is not None and ended is not None and ended < since
