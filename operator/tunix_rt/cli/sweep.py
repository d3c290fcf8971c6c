"""``tunix-rt sweep run FILE`` and ``tunix-rt sweep show DIR|URI``.

``sweep run`` starts the same Tune driver the operator's RayJob runs
(``python -m tunix_rt.tune``) on a local Ray, shows live progress from the trial records
it writes to the store, and prints the trials sorted by primary_score at the end.
"""

from __future__ import annotations

import base64
import contextlib
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.live import Live

from tunix_rt.api.errors import ManifestError
from tunix_rt.api.manifests import load_sweep
from tunix_rt.api.results import best_trial, objective_value
from tunix_rt.api.sweep import SweepSpec
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
from tunix_rt.contract.layout import (
    EVIDENCE_DIR,
    LOCAL_NAMESPACE,
    summary_key,
    sweep_evidence_prefix,
    trials_prefix,
)
from tunix_rt.evidence.upload import latest_bundle
from tunix_rt.storage import Store, StoreError

app = typer.Typer(no_args_is_help=True, help="Run a sweep locally, or show a sweep's results.")

EXIT_INVALID = 2
EXIT_INTERRUPTED = 130


def _name_from(path: Path) -> str:
    name = re.sub(r"[^a-z0-9-]+", "-", path.stem.lower()).strip("-")
    return name[:63] or "sweep"


def _log_path(store: Store, name: str) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    if store.scheme == "file":
        folder = Path(store.root) / LOCAL_NAMESPACE / name / "logs"
    else:
        folder = Path(tempfile.gettempdir()) / "tunix-rt" / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"driver-{stamp}.log"


def _parent_death_signal() -> None:  # pragma: no cover - runs in the child
    """Linux: the driver gets SIGTERM (graceful) if this CLI dies without passing it on."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _read_trials(store: Store, name: str) -> list[TrialResult]:
    out = []
    try:
        keys = store.list(trials_prefix(LOCAL_NAMESPACE, name))
    except StoreError:
        return []
    for key in keys:
        if not key.endswith(".json"):
            continue
        try:
            out.append(TrialResult.model_validate(store.read_json(key)))
        except Exception:  # a file being replaced: next poll
            continue
    return out


def _bundle_uri(store: Store, name: str) -> str | None:
    try:
        return latest_bundle(store, sweep_evidence_prefix(LOCAL_NAMESPACE, name))
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
                    else f", primary_score={format_score(trial.primary_score)}"
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
    try:
        doc = load_sweep(file)
    except ManifestError as exc:
        print_errors(err, str(file), exc.errors)
        raise typer.Exit(EXIT_INVALID) from exc
    if importlib.util.find_spec("ray") is None:
        err.print(
            "[red]sweep run needs Ray and JAX: install the train extra "
            "(pip install 'tunix-rt[train]', or make demo)[/red]"
        )
        raise typer.Exit(EXIT_INVALID)
    spec = doc.spec
    sweep_name = name or doc.name or _name_from(file)
    store = Store(storage or spec.storage)
    log_file = _log_path(store, sweep_name)
    planned = spec.planned_trials()

    wire = json.dumps(spec.to_wire(), separators=(",", ":"), sort_keys=True)
    cmd = [
        sys.executable, "-m", "tunix_rt.tune",
        "--spec-b64", base64.b64encode(wire.encode()).decode(),
        "--storage", store.uri,
        "--namespace", LOCAL_NAMESPACE,
        "--name", sweep_name,
        "--source", str(file),
    ]  # fmt: skip
    if fresh:
        cmd.append("--fresh")
    if num_cpus:
        cmd += ["--num-cpus", str(num_cpus)]

    console.print(
        f"[bold]sweep {sweep_name}[/bold]: {planned} trials, {spec.algorithm.value} search, "
        f"{spec.scheduler.type.value} scheduler, {spec.max_concurrent_trials} at a time, "
        f"{spec.budget.smoke_steps} steps each"
    )
    console.print(f"[dim]results: {store.uri_for(f'{LOCAL_NAMESPACE}/{sweep_name}')}[/dim]")
    console.print(f"[dim]driver log: {log_file}[/dim]")

    started = time.monotonic()
    started_at = datetime.now(UTC)
    use_live = console.is_terminal if live is None else live
    with open(log_file, "wb") as log_handle:
        proc = subprocess.Popen(
            cmd,
            stdout=log_handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_parent_death_signal if sys.platform.startswith("linux") else None,
            env=os.environ.copy(),
        )
        code = _watch(proc, console, spec, sweep_name, store, planned, started, use_live)

    elapsed = time.monotonic() - started
    if code == EXIT_INTERRUPTED:
        err.print(
            f"[yellow]sweep interrupted after {elapsed:.0f}s; finished trials are kept. "
            f"Run the same command again to resume.[/yellow]"
        )
        raise typer.Exit(EXIT_INTERRUPTED)
    summary_uri = store.uri_for(summary_key(LOCAL_NAMESPACE, sweep_name))
    try:
        results = results_mod.load(summary_uri)
    except results_mod.ResultsError:
        results = None
    if results is not None and results.summary is not None:
        summary = results.summary
        console.print(trial_table(results.trials, results.objective, title=f"sweep {sweep_name}"))
        best = best_trial(results.trials, results.objective)
        if best is not None:
            console.print(
                f"[bold green]best trial {best.trial_id}[/bold green]: "
                f"{results.objective.metric}="
                f"{format_score(objective_value(best, results.objective))} "
                f"({format_params(best.params)})"
            )
        if summary.finished_at is not None and summary.finished_at < started_at:
            when = summary.finished_at.strftime("%Y-%m-%d %H:%M:%S")
            console.print(
                f"[yellow]this sweep had already finished (at {when} UTC); nothing was "
                "re-run. --fresh runs it again.[/yellow]"
            )
        console.print(f"results: {summary_uri}")
        bundle = _bundle_uri(store, sweep_name)
        if bundle is not None:
            console.print(f"evidence: {bundle}", soft_wrap=True)
        console.print(f"wall time: {elapsed:.0f}s")
        if code == 0 and best is not None:
            console.print(
                f"next: tunix-rt promote {summary_uri} -o {sweep_name}-best.yaml "
                "(a trainer config and a ready Rehearsal manifest)"
            )
        else:
            err.print(f"[red]sweep {summary.phase.value.lower()}: {summary.message}[/red]")
            err.print(f"driver log: {log_file}; to start over: tunix-rt sweep run {file} --fresh")
    if code != 0:
        if results is None or results.summary is None:
            err.print(_tail(log_file))
            err.print(f"[red]sweep {sweep_name} failed (exit {code}); log: {log_file}[/red]")
        raise typer.Exit(code or 1)


def _watch(
    proc: subprocess.Popen[bytes],
    console: Console,
    spec: SweepSpec,
    name: str,
    store: Store,
    planned: int,
    started: float,
    use_live: bool,
) -> int:
    """Poll the store for trial records until the driver exits; pass Ctrl-C on once."""
    lines = _Lines(console, spec)
    interrupts = 0

    def view() -> Any:
        trials = _read_trials(store, name)
        return progress_view(
            name,
            trials,
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
                    lines.update(_read_trials(store, name), planned)
            except KeyboardInterrupt:
                interrupts += 1
                if proc.poll() is None:
                    # One SIGINT: Tune saves its state and stops; a second one skips that.
                    proc.send_signal(signal.SIGINT)
                    if interrupts == 1:
                        console.print("[yellow]stopping the sweep (its state is saved)…[/yellow]")
    if live is None:
        lines.update(_read_trials(store, name), planned)
    if interrupts and code != 0:
        return EXIT_INTERRUPTED
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
        raise typer.Exit(1) from exc
    summary = results.summary
    title = f"sweep {summary.sweep}" if summary else f"sweep at {results.uri} (running)"
    console.print(trial_table(results.trials, results.objective, title=title))
    done = sum(1 for t in results.trials if t.finished)
    planned = results.planned if results.planned is not None else len(results.trials)
    console.print(f"trials: {done}/{planned} finished")
    best = best_trial(results.trials, results.objective)
    if best is not None:
        console.print(
            f"[bold green]best trial {best.trial_id}[/bold green]: {results.objective.metric}="
            f"{format_score(objective_value(best, results.objective))} "
            f"({format_params(best.params)})"
        )
    if summary is not None:
        style = "green" if summary.phase.value == "Succeeded" else "red"
        console.print(f"[{style}]{summary.phase.value}[/{style}]: {summary.message or ''}")
    console.print(f"results: {results.uri}")
    if summary is not None:
        with contextlib.suppress(StoreError):
            bundle = latest_bundle(Store(results.uri), EVIDENCE_DIR)
            if bundle is not None:
                console.print(f"evidence: {bundle}", soft_wrap=True)
