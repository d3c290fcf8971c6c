"""``tunix-rt sweep run FILE`` and ``tunix-rt sweep show DIR|URI``.

``sweep run`` starts the same Tune driver the operator's RayJob runs
(``python -m tunix_rt.tune``) on a local Ray, shows live progress from the trial records
it writes to the store, and prints the trials sorted by primary_score at the end.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.live import Live

from tunix_rt.api.errors import ManifestError
from tunix_rt.api.manifests import SweepDocument, load_sweep
from tunix_rt.api.results import best_trial, objective_value
from tunix_rt.api.sweep import Objective, SweepSpec
from tunix_rt.api.trial import TrialResult, TrialState
from tunix_rt.cli import results as results_mod
from tunix_rt.cli.display import (
    format_params,
    format_score,
    make_console,
    progress_view,
    trial_table,
)
from tunix_rt.cli.validate import print_errors
from tunix_rt.contract.codec import encode_spec
from tunix_rt.contract.exits import ExitCode
from tunix_rt.contract.layout import LOCAL_NAMESPACE, LOGS_DIR, SweepFiles, SweepLayout
from tunix_rt.scoring import PRIMARY_SCORE
from tunix_rt.storage import Store, StoreError

app = typer.Typer(no_args_is_help=True, help="Run a sweep locally, or show a sweep's results.")


def _name_from(path: Path) -> str:
    name = re.sub(r"[^a-z0-9-]+", "-", path.stem.lower()).strip("-")
    return name[:63] or "sweep"


def _files(store: Store, name: str) -> SweepFiles:
    """A local sweep's files (``sweep run`` runs in the local namespace)."""
    return SweepFiles(store, SweepLayout.of(LOCAL_NAMESPACE, name))


def _log_path(files: SweepFiles, name: str) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    if files.store.scheme == "file":
        folder = Path(files.store.root) / files.layout.key(LOGS_DIR)
    else:
        folder = Path(tempfile.gettempdir()) / "tunix-rt" / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"driver-{stamp}.log"


def _parent_death_signal() -> None:  # pragma: no cover - runs in the child
    """Linux: the driver gets SIGTERM (graceful) if this CLI dies without passing it on."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _read_trials(files: SweepFiles) -> list[TrialResult]:
    """The trial records so far; none while the store cannot be read (the next poll
    tries again)."""
    try:
        return files.trials()
    except StoreError:
        return []


def _bundle_uri(files: SweepFiles) -> str | None:
    try:
        return files.bundle_uri()
    except StoreError:
        return None


def _tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


class _Lines:
    """Progress for logs and CI (no terminal): one line per trial state change."""

    def __init__(self, console: Console, spec: SweepSpec) -> None:
        self.console = console
        self.spec = spec
        self.seen: dict[str, TrialState] = {}
        self.finished = 0

    def update(self, trials: list[TrialResult], planned: int) -> None:
        for trial in sorted(trials, key=lambda t: t.started_at or datetime.min.replace(tzinfo=UTC)):
            if self.seen.get(trial.trial_id) is trial.state:
                continue
            self.seen[trial.trial_id] = trial.state
            if trial.finished:
                self.finished += 1
            done = self.finished
            if trial.state is TrialState.RUNNING:
                params = format_params(trial.params)
                self.console.print(f"[{done}/{planned}] trial {trial.trial_id} running ({params})")
            elif trial.finished:
                extra = (
                    f": {trial.error.splitlines()[-1]}"
                    if trial.state is TrialState.FAILED and trial.error
                    else f", {PRIMARY_SCORE}={format_score(trial.primary_score)}"
                )
                self.console.print(
                    f"[{done}/{planned}] trial {trial.trial_id} {trial.state.value.lower()}{extra}"
                )


@contextlib.contextmanager
def _forward_sigterm(proc: subprocess.Popen[bytes]) -> Iterator[None]:
    def forward(signum: int, frame: Any) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, forward)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@app.command("run")
def run(
    file: Path = typer.Argument(..., help="Sweep manifest (YAML) or a bare spec.", exists=False),
    storage: str | None = typer.Option(
        None, "--storage", help="Store URI (default: the spec's storage, file://./runs)."
    ),
    name: str | None = typer.Option(
        None, "--name", help="Sweep name (default: metadata.name, else the file name)."
    ),
    fresh: bool = typer.Option(
        False, "--fresh", help="Start over instead of resuming; earlier results go to archive/."
    ),
    num_cpus: int | None = typer.Option(
        None, "--num-cpus", min=1, help="CPUs the local Ray may use (default: all)."
    ),
    live: bool | None = typer.Option(
        None, "--live/--no-live", help="Live display (default: when on a terminal)."
    ),
) -> None:
    """Run a sweep on a local Ray and print its trials sorted by primary_score.

    Interrupted (Ctrl-C), the sweep stops with its state saved: the same command resumes
    it without re-running finished trials. Exits non-zero when the sweep fails.
    """
    console = make_console()
    err = make_console(stderr=True)
    doc = _load(file, err)
    store = Store(storage or doc.spec.storage)
    sweep_name = name or doc.name or _name_from(file)
    files = _files(store, sweep_name)
    sweep = _LocalSweep(file, doc.spec, sweep_name, files, _log_path(files, sweep_name))
    _announce(console, sweep)

    started = time.monotonic()
    started_at = datetime.now(UTC)
    use_live = console.is_terminal if live is None else live
    code = _run_driver(sweep, _driver_cmd(sweep, fresh, num_cpus), console, started, use_live)
    elapsed = time.monotonic() - started
    if code == ExitCode.INTERRUPTED:
        err.print(
            f"[yellow]sweep interrupted after {elapsed:.0f}s; finished trials are kept. "
            f"Run the same command again to resume.[/yellow]"
        )
        raise typer.Exit(ExitCode.INTERRUPTED)
    try:
        results = results_mod.load(sweep.summary_uri)
    except results_mod.ResultsError:
        results = None
    if results is not None and results.summary is not None:
        _report(console, err, sweep, results, code, started_at, elapsed)
    if code != 0:
        if results is None or results.summary is None:
            err.print(_tail(sweep.log_file))
            err.print(f"[red]sweep {sweep_name} failed (exit {code}); log: {sweep.log_file}[/red]")
        raise typer.Exit(code or 1)


@dataclass(frozen=True)
class _LocalSweep:
    """One ``sweep run``: what its steps share."""

    file: Path
    spec: SweepSpec
    name: str
    files: SweepFiles
    log_file: Path

    @property
    def summary_uri(self) -> str:
        return self.files.store.uri_for(self.files.layout.summary_key)


def _load(file: Path, err: Console) -> SweepDocument:
    """The validated manifest; exits (invalid) on a bad one or without Ray installed."""
    try:
        doc = load_sweep(file)
    except ManifestError as exc:
        print_errors(err, str(file), exc.errors)
        raise typer.Exit(ExitCode.INVALID) from exc
    if importlib.util.find_spec("ray") is None:
        err.print(
            "[red]sweep run needs Ray and JAX: install the train extra "
            "(pip install 'tunix-rt[train]', or make demo)[/red]"
        )
        raise typer.Exit(ExitCode.INVALID)
    return doc


def _driver_cmd(sweep: _LocalSweep, fresh: bool, num_cpus: int | None) -> list[str]:
    """``python -m tunix_rt.tune …``: the operator's RayJob entrypoint, run locally."""
    cmd = [
        sys.executable, "-m", "tunix_rt.tune",
        "--spec-b64", encode_spec(sweep.spec),
        "--storage", sweep.files.store.uri,
        "--namespace", LOCAL_NAMESPACE,
        "--name", sweep.name,
        "--source", str(sweep.file),
    ]  # fmt: skip
    if fresh:
        cmd.append("--fresh")
    if num_cpus:
        cmd += ["--num-cpus", str(num_cpus)]
    return cmd


def _announce(console: Console, sweep: _LocalSweep) -> None:
    spec = sweep.spec
    console.print(
        f"[bold]sweep {sweep.name}[/bold]: {spec.planned_trials()} trials, "
        f"{spec.algorithm.value} search, {spec.scheduler.type.value} scheduler, "
        f"{spec.max_concurrent_trials} at a time, {spec.budget.smoke_steps} steps each"
    )
    console.print(f"[dim]results: {sweep.files.uri}[/dim]")
    console.print(f"[dim]driver log: {sweep.log_file}[/dim]")


def _run_driver(
    sweep: _LocalSweep, cmd: list[str], console: Console, started: float, use_live: bool
) -> int:
    """Run the driver to its end, its output in the log file; its exit code."""
    with open(sweep.log_file, "wb") as log_handle:
        proc = subprocess.Popen(
            cmd,
            stdout=log_handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_parent_death_signal if sys.platform.startswith("linux") else None,
            env=os.environ.copy(),
        )
        return _watch(proc, console, sweep, started, use_live)


def _report(
    console: Console,
    err: Console,
    sweep: _LocalSweep,
    results: results_mod.SweepResults,
    code: int,
    started_at: datetime,
    elapsed: float,
) -> None:
    """The finished sweep's trials, best trial, where its results are, what next."""
    summary = results.summary
    assert summary is not None
    console.print(trial_table(results.trials, results.objective, title=f"sweep {sweep.name}"))
    best = _print_best(console, results.trials, results.objective)
    if summary.finished_at is not None and summary.finished_at < started_at:
        when = summary.finished_at.strftime("%Y-%m-%d %H:%M:%S")
        console.print(
            f"[yellow]this sweep had already finished (at {when} UTC); nothing was "
            "re-run. --fresh runs it again.[/yellow]"
        )
    console.print(f"results: {sweep.summary_uri}")
    bundle = _bundle_uri(sweep.files)
    if bundle is not None:
        console.print(f"evidence: {bundle}", soft_wrap=True)
    console.print(f"wall time: {elapsed:.0f}s")
    if code == 0 and best is not None:
        console.print(
            f"next: tunix-rt promote {sweep.summary_uri} -o {sweep.name}-best.yaml "
            "(a trainer config and a ready Rehearsal manifest)"
        )
    else:
        err.print(f"[red]sweep {summary.phase.value.lower()}: {summary.message}[/red]")
        err.print(
            f"driver log: {sweep.log_file}; to start over: tunix-rt sweep run {sweep.file} --fresh"
        )


def _print_best(
    console: Console, trials: list[TrialResult], objective: Objective
) -> TrialResult | None:
    """The best trial's line (none without one); the best trial."""
    best = best_trial(trials, objective)
    if best is not None:
        console.print(
            f"[bold green]best trial {best.trial_id}[/bold green]: {objective.metric}="
            f"{format_score(objective_value(best, objective))} "
            f"({format_params(best.params)})"
        )
    return best


def _watch(
    proc: subprocess.Popen[bytes],
    console: Console,
    sweep: _LocalSweep,
    started: float,
    use_live: bool,
) -> int:
    """Poll the store for trial records until the driver exits; pass Ctrl-C on once."""
    spec = sweep.spec
    planned = spec.planned_trials()
    lines = _Lines(console, spec)
    interrupts = 0

    def view() -> Any:
        return progress_view(
            sweep.name,
            _read_trials(sweep.files),
            planned,
            spec.objective,
            spec.budget.smoke_steps,
            time.monotonic() - started,
        )

    with contextlib.ExitStack() as stack:
        stack.enter_context(_forward_sigterm(proc))
        live = (
            stack.enter_context(Live(view(), console=console, refresh_per_second=2, transient=True))
            if use_live
            else None
        )
        while True:
            try:
                try:
                    code = proc.wait(timeout=1.0)
                    break
                except subprocess.TimeoutExpired:
                    pass
                if live is not None:
                    live.update(view())
                else:
                    lines.update(_read_trials(sweep.files), planned)
            except KeyboardInterrupt:
                interrupts += 1
                if proc.poll() is None:
                    # One SIGINT: Tune saves its state and stops; a second one skips that.
                    proc.send_signal(signal.SIGINT)
                    if interrupts == 1:
                        console.print("[yellow]stopping the sweep (its state is saved)…[/yellow]")
    if live is None:
        lines.update(_read_trials(sweep.files), planned)
    if interrupts and code != 0:
        return ExitCode.INTERRUPTED
    return code


@app.command("show")
def show(
    location: str = typer.Argument(
        ...,
        help="A sweep's results: its folder (runs/local/NAME), its summary.json, or a URI "
        "(file://…, s3://…, gs://…).",
    ),
) -> None:
    """Print a sweep's trials sorted by primary_score (also while it still runs)."""
    console = make_console()
    try:
        results = results_mod.load(location)
    except (results_mod.ResultsError, StoreError) as exc:
        make_console(stderr=True).print(f"[red]{exc}[/red]")
        raise typer.Exit(ExitCode.FAILED) from exc
    summary = results.summary
    title = f"sweep {summary.sweep}" if summary else f"sweep at {results.uri} (running)"
    console.print(trial_table(results.trials, results.objective, title=title))
    done = sum(1 for t in results.trials if t.finished)
    planned = results.planned if results.planned is not None else len(results.trials)
    console.print(f"trials: {done}/{planned} finished")
    _print_best(console, results.trials, results.objective)
    if summary is not None:
        style = "green" if summary.phase.value == "Succeeded" else "red"
        console.print(f"[{style}]{summary.phase.value}[/{style}]: {summary.message or ''}")
    console.print(f"results: {results.uri}")
    if summary is not None:
        bundle = _bundle_uri(SweepFiles(Store(results.uri), SweepLayout("")))
        if bundle is not None:
            console.print(f"evidence: {bundle}", soft_wrap=True)
