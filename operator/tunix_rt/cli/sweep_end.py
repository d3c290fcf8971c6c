"""What ``sweep run`` says before the driver starts (resuming, starting over) and after it
ends: why it ended, the trials, where the results are, and what to type next.

Every reason comes from what the driver recorded (``summary.json``'s reason and message,
its session in ``sessions.json``) and from the store (trial records, ``archive/``),
never from the driver's log text. Every hint repeats the command as the user gave it
(:attr:`LocalSweep.rerun`).
"""

from __future__ import annotations

import shlex
from datetime import datetime
from pathlib import Path

from rich.console import Console
from rich.text import Text

from tunix_rt import results as results_mod
from tunix_rt.api.common import Phase
from tunix_rt.api.secrets import redact
from tunix_rt.api.trial import SweepResult, TrialResult
from tunix_rt.cli.common import esc, exit_meaning
from tunix_rt.cli.display import preemption_line, print_best, trial_table
from tunix_rt.cli.sweep_process import LocalSweep
from tunix_rt.cli.sweep_state import end_reason
from tunix_rt.contract.exits import ExitCode
from tunix_rt.contract.file_names import ARCHIVE_DIR
from tunix_rt.contract.phases import (
    BUDGET_EXHAUSTED,
    GOAL_REACHED,
    INTERRUPTED,
    SUCCEEDED,
    TIMED_OUT,
)
from tunix_rt.contract.spec_diff import changes_text, spec_changes
from tunix_rt.storage import StoreError

ENDED_BECAUSE = {
    SUCCEEDED: "every planned trial ran",
    GOAL_REACHED: "objective.goal reached",
    BUDGET_EXHAUSTED: "a sweep budget was reached",
    TIMED_OUT: "budget.sweepTimeoutSeconds reached",
    "TooManyFailedTrials": "too many trials failed",
    "NoScore": "no trial was scored",
    INTERRUPTED: "interrupted",
}
"""``summary.json``'s reason in words (the message says the rest)."""

ARCHIVE_STAMP = "%Y%m%dT%H%M%SZ"
"""How the driver names a folder under ``archive/`` (UTC, when it moved the files)."""


def _text(*parts: str | tuple[str, str], style: str = "") -> Text:
    """A line printed as written, any credential in it masked (as :func:`esc` does)."""
    masked = [(redact(p[0]), p[1]) if isinstance(p, tuple) else redact(p) for p in parts]
    return Text.assemble(*masked, style=style)


def rerun_words(
    file: Path, name: str | None, storage: str | None, num_cpus: int | None
) -> tuple[str, ...]:
    """``tunix-rt sweep run FILE`` with the options the user gave (not the defaults)."""
    words = ["tunix-rt", "sweep", "run", str(file)]
    if name:
        words += ["--name", name]
    if storage:
        words += ["--storage", storage]
    if num_cpus:
        words += ["--num-cpus", str(num_cpus)]
    return tuple(words)


def command(sweep: LocalSweep, *extra: str) -> str:
    """The user's command again (``extra`` added), quoted for a shell."""
    return shlex.join([*sweep.rerun, *extra])


def _read(sweep: LocalSweep) -> tuple[SweepResult | None, list[TrialResult]]:
    files = sweep.files
    try:
        return files.summary(), files.trials()
    except StoreError:
        return None, []


def starting_note(console: Console, sweep: LocalSweep) -> None:
    """Before the driver starts: whether this run resumes an earlier one (and from what),
    starts over (and where the earlier results go), or finds it finished."""
    summary, trials = _read(sweep)
    if not summary and not trials:
        return
    where = sweep.files.uri
    if sweep.fresh:
        console.print(
            f"starting over: the earlier run's results move to {esc(where)}/{ARCHIVE_DIR}/",
            soft_wrap=True,
        )
        return
    if summary is not None:
        return  # the end says it: already finished, nothing re-run
    stored = _stored_spec_changes(sweep)
    if stored:
        return  # the driver refuses it; the end says which fields changed
    done = sum(1 for t in trials if t.finished)
    cut = len(trials) - done
    console.print(
        f"[bold]resuming[/bold] sweep {esc(sweep.name)} from {esc(where)}: {done} of "
        f"{sweep.spec.planned_trials()} trials finished earlier"
        + (f", {cut} cut short (they continue)" if cut else ""),
        soft_wrap=True,
    )


def _stored_spec_changes(sweep: LocalSweep) -> list[str]:
    """The fields changed since the earlier run of this sweep (none: same, or no run)."""
    try:
        stored = sweep.files.spec()
    except StoreError:
        return []
    return spec_changes(stored, sweep.spec) if stored is not None else []


def archived_since(sweep: LocalSweep, since: datetime) -> str | None:
    """The ``archive/<time>/`` folder the driver filled during this run, as a URI."""
    store, layout = sweep.files.store, sweep.files.layout
    prefix = layout.key(ARCHIVE_DIR) + "/"
    try:
        keys = store.list(prefix)
    except StoreError:
        return None
    floor = since.strftime(ARCHIVE_STAMP)
    stamps = sorted({k[len(prefix) :].split("/", 1)[0] for k in keys})
    fresh = [s for s in stamps if s >= floor]
    return store.uri_for(f"{prefix}{fresh[-1]}") if fresh else None


def report_end(
    console: Console, err: Console, sweep: LocalSweep, code: int, started_at: datetime
) -> None:
    """Everything ``sweep run`` prints once the driver ended, whichever way it ended."""
    archived = archived_since(sweep, started_at) if sweep.fresh else None
    if archived is not None:
        console.print(f"earlier results archived to {esc(archived)}", soft_wrap=True)
    if code == ExitCode.INVALID:
        _not_run(err, sweep, code, started_at)
        return
    try:
        results = results_mod.load(sweep.summary_uri)
    except (results_mod.ResultsError, StoreError):
        results = None
    summary = results.summary if results is not None else None
    if code != ExitCode.INTERRUPTED and results is not None and summary is not None:
        _finished(console, err, sweep, results, code, started_at)
        return
    _cut(console, err, sweep, code, started_at)


def _not_run(err: Console, sweep: LocalSweep, code: int, started_at: datetime) -> None:
    """Exit 2: the driver's reason; which fields changed; nothing ran."""
    reason = end_reason(sweep.files, started_at) or "see the driver log"
    err.print(_text(f"error: {reason}", style="red"), soft_wrap=True)
    changes = _stored_spec_changes(sweep)
    if changes:
        err.print(_text(f"changed since the earlier run: {changes_text(changes, 10)}"))
        err.print(
            _text(
                f"to start over (earlier results move to {ARCHIVE_DIR}/): "
                f"{command(sweep, '--fresh')}; or undo the change, or give another --name"
            ),
            soft_wrap=True,
        )
    err.print(
        _text(f"sweep {sweep.name}: {exit_meaning(code)}; driver log: {sweep.log_file}"),
        soft_wrap=True,
    )


def _finished(
    console: Console,
    err: Console,
    sweep: LocalSweep,
    results: results_mod.SweepResults,
    code: int,
    started_at: datetime,
) -> None:
    """A summary: this run's, or an earlier run's when the sweep had finished before."""
    summary = results.summary
    assert summary is not None
    console.print(trial_table(results.trials, results.objective, title=f"sweep {sweep.name}"))
    preempted = preemption_line(results.trials)
    if preempted:
        console.print(preempted)
    best = print_best(console, results.trials, results.objective)
    earlier = summary.finished_at is not None and summary.finished_at < started_at
    why = ENDED_BECAUSE.get(summary.reason or "", summary.reason or summary.phase.value)
    style = "green" if summary.phase is Phase.SUCCEEDED else "red"
    console.print(
        _text(
            (f"sweep {summary.phase.value.lower()}", style),
            f" ({why}): {summary.message or ''}",
        ),
        soft_wrap=True,
    )
    if earlier:
        assert summary.finished_at is not None
        when = summary.finished_at.strftime("%Y-%m-%d %H:%M:%S")
        console.print(
            _text(
                f"this sweep had already finished (at {when} UTC); nothing was re-run. "
                f"To run it again: {command(sweep, '--fresh')}",
                style="yellow",
            ),
            soft_wrap=True,
        )
    console.print(f"results: {esc(sweep.summary_uri)}", soft_wrap=True)
    bundle = _bundle_uri(sweep)
    if bundle is not None:
        console.print(f"evidence: {esc(bundle)}", soft_wrap=True)
    if code == ExitCode.OK and best is not None:
        console.print(
            f"next: tunix-rt promote {esc(sweep.summary_uri)} -o {esc(sweep.name)}-best.yaml "
            "(a trainer config and a ready Rehearsal manifest)",
            soft_wrap=True,
        )
    elif code != ExitCode.OK:
        err.print(
            _text(
                f"{exit_meaning(code)}; driver log: {sweep.log_file}; to start over: "
                f"{command(sweep, '--fresh')}"
            ),
            soft_wrap=True,
        )


def _cut(
    console: Console, err: Console, sweep: LocalSweep, code: int, started_at: datetime
) -> None:
    """No summary of this run: interrupted (Ctrl-C, SIGTERM) or the driver failed
    before its verdict. The trials so far (unfinished ones read Interrupted), the
    driver's reason, and how to resume."""
    _, trials = _read(sweep)
    if trials:
        done = sum(1 for t in trials if t.finished)
        title = f"sweep {sweep.name}: {done} of {sweep.spec.planned_trials()} trials finished"
        console.print(trial_table(trials, sweep.spec.objective, title=title, cut=True))
        print_best(console, trials, sweep.spec.objective)
    reason = end_reason(sweep.files, started_at)
    if code != ExitCode.INTERRUPTED:
        err.print(_text(_tail(sweep.log_file)))
    if code == ExitCode.INTERRUPTED:
        err.print(
            _text(f"sweep interrupted: {reason or 'stopped before it finished'}", style="yellow"),
            soft_wrap=True,
        )
        err.print(
            _text(f"finished trials are kept; to resume: {command(sweep)}"),
            soft_wrap=True,
        )
        return
    if reason:
        err.print(_text(f"error: {reason}", style="red"), soft_wrap=True)
    err.print(
        _text(
            f"sweep {sweep.name} failed ({exit_meaning(code)}); log: {sweep.log_file}; "
            f"to resume: {command(sweep)}; to start over: {command(sweep, '--fresh')}",
            style="red",
        ),
        soft_wrap=True,
    )


def _bundle_uri(sweep: LocalSweep) -> str | None:
    try:
        return sweep.files.bundle_uri()
    except StoreError:
        return None


def _tail(path: Path, lines: int = 25) -> str:
    try:
        with path.open("rb") as handle:  # the end of a log of any size
            handle.seek(max(0, path.stat().st_size - 64 * 1024))
            text = handle.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])
