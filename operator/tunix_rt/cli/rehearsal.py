"""``tunix-rt rehearsal run FILE`` and ``tunix-rt rehearsal show NAME`` (local, no cluster)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from tunix_rt.api.common import Phase
from tunix_rt.api.rehearsal import RehearsalStatus, SourceTrial
from tunix_rt.cli.common import storage_flag, store_problem, writable_problem
from tunix_rt.contract.exits import ExitCode
from tunix_rt.contract.layout import LOCAL_NAMESPACE, RehearsalLayout
from tunix_rt.contract.rehearsal_evidence import UnreadableEvidence
from tunix_rt.evidence import PackageError
from tunix_rt.rehearsal import (
    RehearsalError,
    exit_code,
    failure_from_store,
    plan_from_file,
    result_from_store,
    run_rehearsal,
    sigterm_interrupts,
)
from tunix_rt.storage import Store, StoreError

app = typer.Typer(
    name="rehearsal",
    help="Run a fixed config (inline or a sweep's best trial) and leave an evidence bundle.",
    no_args_is_help=True,
    add_completion=False,
)


@app.command("run")
def run(
    file: Path = typer.Argument(
        ...,
        help="Rehearsal manifest, or a promoted trainer config (YAML).",
        dir_okay=False,
    ),
    storage: str | None = storage_flag("Store URI (default: the manifest's, else file://./runs)."),
    out: Path | None = typer.Option(None, "--out", help="Also keep the evidence folder here."),
    namespace: str = typer.Option(LOCAL_NAMESPACE, "--namespace", help="Namespace in the store."),
    name: str | None = typer.Option(None, "--name", help="Rehearsal name (default: manifest's)."),
    max_steps: int | None = typer.Option(None, "--max-steps", min=1, help="Override maxSteps."),
    timeout_seconds: int | None = typer.Option(
        None,
        "--timeout-seconds",
        min=1,
        help="Fail the run after this many seconds (overrides spec.timeoutSeconds).",
    ),
    source_sweep: str | None = typer.Option(None, "--source-sweep", help="Provenance: sweep."),
    source_trial: str | None = typer.Option(None, "--source-trial", help="Provenance: trial."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Train and evaluate a fixed config; write, package and upload its evidence.

    Writes run_manifest.json, eval_summary.json, eval_rows.jsonl, kaggle_output_log.txt,
    report.html and SHA256SUMS, packages the zip and uploads all of it to
    <storage>/<namespace>/rehearsals/<name>/. A failed run (an error, the timeout, bad
    evidence) uploads its log and failure.json to .../<name>/failed/<UTC time>/ instead,
    leaves earlier evidence alone, says where, and exits with status 1 (130 when
    interrupted by Ctrl-C or SIGTERM, whose log is uploaded the same way). A file,
    flag or fromSweep that cannot run exits with status 2 before anything starts.
    """
    try:
        plan = plan_from_file(
            file,
            storage=storage,
            namespace=namespace,
            name=name,
            max_steps=max_steps,
            source=SourceTrial(source_sweep, source_trial),
            timeout_seconds=timeout_seconds,
        )
    except RehearsalError as exc:  # the file, the flags or fromSweep: nothing ran
        raise _fail(str(exc), ExitCode.INVALID) from None
    except StoreError as exc:
        raise _fail(str(exc), ExitCode.FAILED) from None
    try:
        _check_writable(plan.storage, RehearsalLayout.of(plan.namespace, plan.name).prefix, out)
        with sigterm_interrupts():
            result = run_rehearsal(plan, out_dir=out)
    except RehearsalError as exc:
        raise _fail(str(exc), exit_code(exc)) from None
    except (StoreError, PackageError) as exc:
        raise _fail(str(exc), ExitCode.FAILED) from None
    if as_json:
        _echo_json(result.to_wire())
        return
    score = _score(result.primary_score)
    typer.echo(f"rehearsal {result.name}: primary_score {score} after {result.steps} steps")
    _echo_evidence(result.to_status())
    if out is not None:
        typer.echo(f"  local:    {out}")


@app.command("show")
def show(
    name: str = typer.Argument(..., help="Rehearsal name."),
    storage: str = storage_flag("Store URI.", "file://./runs"),
    namespace: str = typer.Option(LOCAL_NAMESPACE, "--namespace", help="Namespace in the store."),
    as_json: bool = typer.Option(False, "--json", help="Print the status as JSON."),
) -> None:
    """The status a rehearsal's store implies: primary_score and its evidence URIs, or,
    when it never succeeded, its latest failure (exit status 1)."""
    try:
        result = result_from_store(storage, namespace, name)
        failure = failure_from_store(storage, namespace, name)
    except (StoreError, UnreadableEvidence) as exc:
        raise _fail(str(exc), ExitCode.FAILED) from None
    if result is None and failure is None:
        raise _fail(f"no evidence for rehearsal {name!r} in {storage} ({namespace})")
    if result is None:
        assert failure is not None
        failed = RehearsalStatus(
            phase=Phase.FAILED,
            message=failure.message,
            log_uri=failure.log_uri,
            start_time=failure.start_time,
            completion_time=failure.end_time,
        )
        if as_json:
            _echo_json(failed.to_wire())
        else:
            typer.echo(f"rehearsal {name}: Failed ({failure.reason}): {failure.message}")
            typer.echo(f"  log:      {failure.log_uri or failure.failure_uri}")
        raise typer.Exit(ExitCode.FAILED)
    status = result.to_status()
    newer = failure is not None and (
        status.completion_time is None or failure.end_time > status.completion_time
    )
    if as_json:
        _echo_json(status.to_wire())
        return
    typer.echo(
        f"rehearsal {name}: {status.phase.value}, primary_score {_score(status.primary_score)}"
    )
    _echo_evidence(status)
    for uri in status.evidence_files:
        typer.echo(f"    {uri}")
    if newer and failure is not None:
        typer.echo(f"  a later attempt failed ({failure.reason}): {failure.message}")
        typer.echo(f"    log: {failure.log_uri or failure.failure_uri}")


def _check_writable(storage: str, prefix: str, out: Path | None) -> None:
    """Before training: the store (and --out) can take the evidence, or exit (1) with one
    line; a rehearsal must not train for an hour to find its store unwritable."""
    problem = store_problem(Store(storage), prefix)
    if problem is None and out is not None:
        reason = writable_problem(out if out.is_dir() else out.parent)
        if reason is not None:
            problem = f"cannot write to {out}: {reason}; choose a writable --out"
    if problem is not None:
        raise _fail(problem)


def _fail(message: str, code: ExitCode = ExitCode.FAILED) -> typer.Exit:
    """Say ``error: message`` on stderr; the Exit to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _echo_json(wire: dict[str, Any]) -> None:
    typer.echo(json.dumps(wire, indent=2, sort_keys=True))


def _score(score: float | None) -> str:
    return "none" if score is None else f"{score:.4f}"


def _echo_evidence(status: RehearsalStatus) -> None:
    """Where a rehearsal's config came from and where its evidence lives."""
    if status.source_sweep:
        typer.echo(f"  promoted from sweep {status.source_sweep}, trial {status.source_trial}")
    typer.echo(f"  evidence: {status.evidence_uri}")
    if status.bundle_uri:
        typer.echo(f"  bundle:   {status.bundle_uri}")
