"""``tunix-rt sweep run FILE`` and ``tunix-rt sweep show DIR|URI``.

``sweep run`` starts the same Tune driver the operator's RayJob runs
(``python -m tunix_rt.tune``) on a local Ray (:mod:`tunix_rt.cli.sweep_process`), shows
live progress from the trial records it writes to the store, and prints the trials
sorted by primary_score at the end.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.text import Text

from tunix_rt import results as results_mod
from tunix_rt.api.errors import ManifestError
from tunix_rt.api.manifests import SweepDocument, load_documents, load_sweep
from tunix_rt.api.secrets import redact
from tunix_rt.cli.common import (
    TRAIN_EXTRA_HINT,
    esc,
    storage_flag,
    store_problem,
)
from tunix_rt.cli.display import make_console, preemption_line, print_best, trial_table
from tunix_rt.cli.sweep_end import report_end, rerun_words, starting_note
from tunix_rt.cli.sweep_process import LocalSweep, driver_cmd, log_path, run_driver
from tunix_rt.cli.sweep_state import INTERRUPTED, RUNNING, unfinished_state
from tunix_rt.cli.validate import print_errors
from tunix_rt.contract.exits import ExitCode
from tunix_rt.contract.file_names import TRIALS_DIR
from tunix_rt.contract.layout import LOCAL_NAMESPACE, SweepFiles, SweepLayout
from tunix_rt.storage import Store, StoreError

DAMAGED_EXIT = 3
"""``sweep show``: the results were shown, but files that are there could not be read."""

app = typer.Typer(no_args_is_help=True, help="Run a sweep locally, or show a sweep's results.")


def _name_from(path: Path) -> str:
    name = re.sub(r"[^a-z0-9-]+", "-", path.stem.lower()).strip("-")
    return name[:63] or "sweep"


def _files(store: Store, name: str) -> SweepFiles:
    """A local sweep's files (``sweep run`` runs in the local namespace)."""
    return SweepFiles(store, SweepLayout.of(LOCAL_NAMESPACE, name))


def _bundle_uri(files: SweepFiles) -> str | None:
    try:
        return files.bundle_uri()
    except StoreError:
        return None


@app.command("run")
def run(
    file: Path = typer.Argument(..., help="Sweep manifest (YAML) or a bare spec.", exists=False),
    storage: str | None = storage_flag("Store URI (default: the spec's storage, file://./runs)."),
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
    it without re-running finished trials. Whichever way it ends (every trial ran, the
    goal, a budget, failures, Ctrl-C, finished already) it prints why and the trials.
    Exit status: 0 done, 1 failed, 2 invalid input (nothing ran), 130 interrupted.
    """
    console = make_console()
    err = make_console(stderr=True)
    doc = _load(file, err)
    sweep_name = name or doc.name or _name_from(file)
    files = _writable_files(storage or doc.spec.storage, sweep_name, err)
    try:
        log_file = log_path(files, sweep_name)
    except OSError as exc:
        raise _fail(err, f"cannot write the driver log: {exc.strerror or exc}") from None
    started = time.monotonic()
    started_at = datetime.now(UTC)
    sweep = LocalSweep(
        file,
        doc.spec,
        sweep_name,
        files,
        log_file,
        rerun=rerun_words(file, name, storage, num_cpus),
        fresh=fresh,
        started_at=started_at,
    )
    _announce(console, sweep)
    starting_note(console, sweep)

    use_live = console.is_terminal if live is None else live
    code = run_driver(sweep, driver_cmd(sweep, fresh, num_cpus), console, started, use_live)
    report_end(console, err, sweep, code, started_at)
    console.print(f"wall time: {time.monotonic() - started:.0f}s")
    if code != ExitCode.OK:
        raise typer.Exit(code if code > 0 else ExitCode.FAILED)


def _fail(err: Console, message: str, code: int = ExitCode.FAILED) -> typer.Exit:
    """Say ``error: message`` (one line, as written) on stderr; the Exit to raise."""
    err.print(f"[red]error: {esc(message)}[/red]", soft_wrap=True)  # esc: credentials masked
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


def _load(file: Path, err: Console) -> SweepDocument:
    """The validated manifest; exits (invalid) on a bad one or without Ray installed."""
    try:
        doc = load_sweep(file)
    except ManifestError as exc:
        print_errors(err, str(file), exc.errors, "Sweep", _first_document(file))
        raise typer.Exit(ExitCode.INVALID) from exc
    if importlib.util.find_spec("ray") is None:
        err.print(
            "[red]sweep run needs Ray and JAX: install the train extra "
            f"({esc(TRAIN_EXTRA_HINT)})[/red]"
        )
        raise typer.Exit(ExitCode.INVALID)
    return doc


def _first_document(file: Path) -> Any:
    """The file's first document as written (for "did you mean"); None when unreadable."""
    try:
        docs = load_documents(file)
    except ManifestError:
        return None
    return docs[0] if docs else None


def _announce(console: Console, sweep: LocalSweep) -> None:
    spec = sweep.spec
    console.print(
        f"[bold]sweep {esc(sweep.name)}[/bold]: {spec.planned_trials()} trials, "
        f"{spec.algorithm.value} search, {spec.scheduler.type.value} scheduler, "
        f"{spec.max_concurrent_trials} at a time, {spec.budget.smoke_steps} steps each"
    )
    if spec.warm_start_from is not None:
        source = spec.warm_start_from.describe()
        console.print(f"warm start from {esc(source)}: its fitting trials are reused, not run")
    console.print(f"[dim]results: {esc(sweep.files.uri)}[/dim]", soft_wrap=True)
    console.print(f"[dim]driver log: {esc(sweep.log_file)}[/dim]", soft_wrap=True)


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

    Exit 0: every file read; 1: nothing readable there; 3: results shown, but some files
    (trial records, the spec) are damaged: each is named with why (cut short, malformed
    JSON, not a valid trial record, too large) and left out of the table.

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
    elif as_csv:
        results.to_csv(sys.stdout)
    else:
        _print_results(console, results)
    if results.unreadable:
        raise _damaged(err, results.unreadable)


def _damaged(err: Console, unreadable: dict[str, str]) -> typer.Exit:
    """One line a file that is there but unreadable; the Exit (``DAMAGED_EXIT``)."""
    count = len(unreadable)
    err.print(Text(f"error: {count} file(s) could not be read; the results above leave "
                   "them out:", style="red"), soft_wrap=True)  # fmt: skip
    for uri, why in unreadable.items():
        err.print(Text(redact(f"  {uri}: {why}")), soft_wrap=True)
    return typer.Exit(DAMAGED_EXIT)


def _print_results(console: Console, results: results_mod.SweepResults) -> None:
    """The table, the counts, the best trial, the verdict and where the results are."""
    summary = results.summary
    state = RUNNING if summary else unfinished_state(results.uri)
    title = f"sweep {summary.sweep}" if summary else f"sweep at {results.uri} ({state})"
    # Its driver ended without a summary: a trial still "Running" in its record was cut.
    cut = state == INTERRUPTED or state.startswith("not run")
    console.print(trial_table(results.trials, results.objective, title=title, cut=cut))
    done = sum(1 for t in results.trials if t.finished)
    planned = results.planned if results.planned is not None else len(results.trials)
    damaged = sum(1 for uri in results.unreadable if f"/{TRIALS_DIR}/" in uri)
    unread = f", {damaged} record(s) unreadable (below)" if damaged else ""
    console.print(f"trials: {done}/{planned} finished{unread}")
    if results.accelerator_hours:
        console.print(f"accelerator-hours used: {results.accelerator_hours:.4f}")
    preempted = preemption_line(results.trials)
    if preempted:
        console.print(preempted)
    print_best(console, results.trials, results.objective)
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
