"""``tunix-rt sweep run FILE`` and ``tunix-rt sweep show DIR|URI``.

``sweep run`` starts the same Tune driver the operator's RayJob runs
(``python -m tunix_rt.tune``) on a local Ray, shows live progress from the trial records
it writes to the store, and prints the trials sorted by primary_score at the end.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import signal
import socket
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
from rich.text import Text

from tunix_rt import results as results_mod
from tunix_rt.api.errors import ManifestError
from tunix_rt.api.manifests import SweepDocument, load_sweep
from tunix_rt.api.sweep import SweepSpec
from tunix_rt.api.sweep_goals import Objective
from tunix_rt.api.trial import TrialResult, TrialState
from tunix_rt.cli.common import esc, exit_meaning, no_retries, storage_option, store_problem
from tunix_rt.cli.display import (
    format_params,
    format_score,
    make_console,
    progress_view,
    trial_table,
)
from tunix_rt.cli.validate import print_errors
from tunix_rt.contract.best_trial import best_trial, objective_value
from tunix_rt.contract.codec import encode_spec
from tunix_rt.contract.exits import ExitCode
from tunix_rt.contract.file_names import LOGS_DIR
from tunix_rt.contract.layout import LOCAL_NAMESPACE, SweepFiles, SweepLayout
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


def trial_resources(spec: SweepSpec) -> dict[str, float]:
    """What one trial reserves, as Ray Tune's status table names it (CPU, GPU, TPU)."""
    res = spec.resources
    named = {"CPU": res.cpu, "GPU": res.gpu, "TPU": float(res.tpu)}
    return {name: amount for name, amount in named.items() if amount}


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
        None,
        "--storage",
        callback=storage_option,
        help="Store URI (default: the spec's storage, file://./runs).",
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
    sweep_name = name or doc.name or _name_from(file)
    files = _writable_files(storage or doc.spec.storage, sweep_name, err)
    try:
        log_file = _log_path(files, sweep_name)
    except OSError as exc:
        raise _fail(err, f"cannot write the driver log: {exc.strerror or exc}") from None
    sweep = _LocalSweep(file, doc.spec, sweep_name, files, log_file)
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
    if code == ExitCode.INVALID:
        # Nothing ran (a spec changed under an earlier run, resources this machine lacks):
        # any summary in the store is an earlier run's, not this one's.
        _report_not_run(err, sweep, code)
        raise typer.Exit(code)
    try:
        results = results_mod.load(sweep.summary_uri)
    except (results_mod.ResultsError, StoreError):
        results = None
    if results is not None and results.summary is not None:
        _report(console, err, sweep, results, code, started_at, elapsed)
    if code != 0:
        if results is None or results.summary is None:
            err.print(Text(_tail(sweep.log_file)))
            reason = _driver_reason(sweep.log_file)
            if reason:
                err.print(f"[red]error: {esc(reason)}[/red]", soft_wrap=True)
            err.print(
                f"[red]sweep {esc(sweep_name)} failed ({exit_meaning(code)}); "
                f"log: {esc(sweep.log_file)}[/red]",
                soft_wrap=True,
            )
        raise typer.Exit(code if code > 0 else ExitCode.FAILED)


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


def _fail(err: Console, message: str, code: int = ExitCode.FAILED) -> typer.Exit:
    """Say ``error: message`` (one line, as written) on stderr; the Exit to raise."""
    err.print(Text(f"error: {message}", style="red"), soft_wrap=True)
    return typer.Exit(code)


def _writable_files(uri: str, name: str, err: Console) -> SweepFiles:
    """The sweep's files in a store it can write to; exits (1) with one line otherwise,
    before Ray starts: an unwritable folder, an unreachable endpoint, a bad URI."""
    try:
        files = _files(Store(uri), name)
    except StoreError as exc:
        raise _fail(err, str(exc)) from None
    problem = store_problem(files.store, files.layout.prefix)
    if problem is not None:
        raise _fail(err, problem)
    return files


DRIVER_PREFIXES = ("[tunix-rt] ", "error: ")
"""How the driver's own lines start in its log (its last one on a non-zero exit is why)."""

CLI_MARK = "[tunix-rt cli]"
"""How the lines this CLI adds to a driver log start (the driver's pid; its exit)."""


def _driver_reason(log_file: Path) -> str | None:
    """The driver's last line of its own in its log: on a non-zero exit, the reason."""
    try:
        lines = log_file.read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        for prefix in DRIVER_PREFIXES:
            if line.startswith(prefix):
                return line[len(prefix) :].strip() or None
    return None


def _report_not_run(err: Console, sweep: _LocalSweep, code: int) -> None:
    """Exit 2: the driver's reason (only its log had it), what the code means."""
    reason = _driver_reason(sweep.log_file) or "see the driver log"
    err.print(f"[red]error: {esc(reason)}[/red]", soft_wrap=True)
    err.print(
        f"sweep {esc(sweep.name)}: {exit_meaning(code)}; driver log: {esc(sweep.log_file)}",
        soft_wrap=True,
    )


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
        f"[bold]sweep {esc(sweep.name)}[/bold]: {spec.planned_trials()} trials, "
        f"{spec.algorithm.value} search, {spec.scheduler.type.value} scheduler, "
        f"{spec.max_concurrent_trials} at a time, {spec.budget.smoke_steps} steps each"
    )
    console.print(f"[dim]results: {esc(sweep.files.uri)}[/dim]", soft_wrap=True)
    console.print(f"[dim]driver log: {esc(sweep.log_file)}[/dim]", soft_wrap=True)


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
        _mark(log_handle, f"driver pid {proc.pid} on {socket.gethostname()}")
        code = _watch(proc, console, sweep, started, use_live)
        _mark(log_handle, f"driver exited: {exit_meaning(code)}")
        return code


def _mark(handle: Any, line: str) -> None:
    """Add a line of this CLI's to the driver log (which the driver shares: one offset)."""
    with contextlib.suppress(OSError, ValueError):
        handle.write(f"{CLI_MARK} {line}\n".encode())
        handle.flush()


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
    console.print(f"results: {esc(sweep.summary_uri)}", soft_wrap=True)
    bundle = _bundle_uri(sweep.files)
    if bundle is not None:
        console.print(f"evidence: {esc(bundle)}", soft_wrap=True)
    console.print(f"wall time: {elapsed:.0f}s")
    if code == 0 and best is not None:
        console.print(
            f"next: tunix-rt promote {esc(sweep.summary_uri)} -o {esc(sweep.name)}-best.yaml "
            "(a trainer config and a ready Rehearsal manifest)",
            soft_wrap=True,
        )
    else:
        err.print(
            f"[red]sweep {summary.phase.value.lower()}: {esc(summary.message)}[/red]",
            soft_wrap=True,
        )
        err.print(
            f"{exit_meaning(code)}; driver log: {esc(sweep.log_file)}; to start over: "
            f"tunix-rt sweep run {esc(sweep.file)} --fresh",
            soft_wrap=True,
        )


def _print_best(
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
    # Polls make one attempt each: the next poll is the retry, and a store that is down
    # for a while prints nothing here (the driver, which writes, retries and reports).
    polled = SweepFiles(no_retries(sweep.files.store), sweep.files.layout)

    def view() -> Any:
        return progress_view(
            sweep.name,
            _read_trials(polled),
            planned,
            spec.objective,
            spec.budget.smoke_steps,
            time.monotonic() - started,
            trial_resources(spec),
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
                    lines.update(_read_trials(polled), planned)
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
        help="A sweep's results: its folder (runs/local/NAME), its summary.json, its "
        "evidence folder, or a URI (file://…, s3://…, gs://…).",
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print the sweep and every trial as JSON (params, metrics)."
    ),
    as_csv: bool = typer.Option(
        False, "--csv", help="Print one CSV row a trial (params.*, metrics.* columns)."
    ),
) -> None:
    """Print a sweep's trials sorted by primary_score (also while it still runs).

    --json and --csv print the same results for scripts (``tunix_rt.results.load`` in
    Python).

    A sweep without a summary is shown as running while its driver lives, and as
    interrupted (run the same command again to resume) when the driver of a local run has
    ended; for object stores without a summary it says it cannot tell which.
    """
    console = make_console()
    err = make_console(stderr=True)
    try:
        results = results_mod.load(location)
    except (results_mod.ResultsError, StoreError) as exc:
        raise _fail(err, str(exc)) from None
    if as_json and as_csv:
        raise _fail(err, "give --json or --csv, not both")
    if as_json:
        typer.echo(json.dumps(results.to_json(), indent=2, sort_keys=True))
        return
    if as_csv:
        results.to_csv(sys.stdout)
        return
    summary = results.summary
    title = (
        f"sweep {summary.sweep}"
        if summary
        else f"sweep at {results.uri} ({unfinished_state(results.uri)})"
    )
    console.print(trial_table(results.trials, results.objective, title=title))
    done = sum(1 for t in results.trials if t.finished)
    planned = results.planned if results.planned is not None else len(results.trials)
    console.print(f"trials: {done}/{planned} finished")
    if results.accelerator_hours:
        console.print(f"accelerator-hours used: {results.accelerator_hours:.4f}")
    _print_best(console, results.trials, results.objective)
    if summary is not None:
        style = "green" if summary.phase.value == "Succeeded" else "red"
        console.print(
            f"[{style}]{summary.phase.value}[/{style}]: {esc(summary.message or '')}",
            soft_wrap=True,
        )
    console.print(f"results: {esc(results.uri)}", soft_wrap=True)
    if summary is not None:
        bundle = _bundle_uri(SweepFiles(Store(results.uri), SweepLayout("")))
        if bundle is not None:
            console.print(f"evidence: {esc(bundle)}", soft_wrap=True)


RUNNING = "running"
INTERRUPTED = "interrupted: run the same command again to resume"
UNKNOWN = "no summary yet: running, or interrupted"


def unfinished_state(uri: str) -> str:
    """What a sweep without a summary is doing, from its newest driver log (local runs
    keep it under ``logs/``): running while that driver lives; otherwise how it ended.

    The log tells: this CLI writes the driver's pid first and its exit last; the driver
    writes why it stopped. Without a local log (an object store, a cluster's sweep)
    there is no telling, and the answer says so.
    """
    if not uri.startswith("file://"):
        return UNKNOWN
    logs = sorted((Path(uri.removeprefix("file://")) / LOGS_DIR).glob("driver-*.log"))
    if not logs:
        return UNKNOWN
    try:
        lines = logs[-1].read_text(errors="replace").splitlines()
    except OSError:
        return UNKNOWN
    marks = [line[len(CLI_MARK) :].strip() for line in lines if line.startswith(CLI_MARK)]
    exited = next((m for m in reversed(marks) if m.startswith("driver exited:")), None)
    if exited is not None:
        if f"exit {ExitCode.INVALID} " in f"{exited} ":
            reason = _driver_reason(logs[-1]) or "see the driver log"
            return f"not run: {reason}"
        return INTERRUPTED
    if any("sweep interrupted" in line for line in lines[-5:]):
        return INTERRUPTED
    pid_line = next((m for m in marks if m.startswith("driver pid ")), None)
    if pid_line is not None and not _alive(pid_line):
        return INTERRUPTED
    return RUNNING


def _alive(pid_line: str) -> bool:
    """Whether the driver named by ``driver pid N on HOST`` still runs (True when it
    cannot be told: another host)."""
    match = re.fullmatch(r"driver pid (\d+) on (\S+)", pid_line)
    if match is None or match.group(2) != socket.gethostname():
        return True
    pid = int(match.group(1))
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists():  # a reused pid is another program
        with contextlib.suppress(OSError):
            return b"tunix_rt.tune" in cmdline.read_bytes()
    return True
