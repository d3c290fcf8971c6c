"""``tunix-rt promote RESULT -o FILE``: a sweep's best trial as files to commit.

Writes the best trial's trainer config (TrainerConfig, wire YAML) and a ready Rehearsal
manifest that runs it inline, annotated with where it came from (GitOps: commit both).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
import yaml
from pydantic import ValidationError
from rich.console import Console
from rich.text import Text

from tunix_rt import results as results_mod
from tunix_rt.api.common import DEFAULT_STORAGE
from tunix_rt.api.errors import validation_errors
from tunix_rt.api.names import SOURCE_SWEEP_ANNOTATION, SOURCE_TRIAL_ANNOTATION
from tunix_rt.api.rehearsal import Rehearsal
from tunix_rt.api.trainer import TrainerConfig
from tunix_rt.api.trial import SweepResult
from tunix_rt.cli.common import storage_option
from tunix_rt.cli.display import format_params, format_score, make_console
from tunix_rt.contract.best_config import best_trial_config
from tunix_rt.contract.exits import ExitCode
from tunix_rt.scoring import PRIMARY_SCORE
from tunix_rt.storage import StoreError

SOURCE_SCORE = "tunixrt.io/source-primary-score"


def _dump(data: object) -> str:
    return yaml.safe_dump(data, sort_keys=False, width=100)


def promote(
    result: str = typer.Argument(
        ...,
        help="The sweep's summary.json (path or URI) or its results folder "
        "(e.g. runs/local/sweep-smoke).",
    ),
    output: Path = typer.Option(..., "-o", "--output", help="Trainer config file to write."),
    rehearsal_out: Path | None = typer.Option(
        None,
        "--rehearsal",
        help="Rehearsal manifest to write (default: next to -o, named <stem>-rehearsal.yaml).",
    ),
    steps: int | None = typer.Option(
        None, "--steps", min=1, help="maxSteps of the rehearsal (longer than the smoke cap)."
    ),
    name: str | None = typer.Option(None, "--name", help="Rehearsal name (default: <sweep>-best)."),
    storage: str | None = typer.Option(
        None,
        "--storage",
        callback=storage_option,
        help="Rehearsal evidence store (default: the sweep's storage).",
    ),
) -> None:
    """Turn a finished sweep's best params into a trainer config and a Rehearsal manifest."""
    console = make_console()
    err = make_console(stderr=True)
    results, summary = _finished(result, err)
    trainer = _trainer(summary, steps, err)
    source = f"{summary.namespace}/{summary.sweep}"
    score = format_score(summary.primary_score)
    header = (
        f"# Trainer config promoted from sweep {source}, best trial {summary.best_trial_id}\n"
        f"# ({PRIMARY_SCORE}={score}; {format_params(summary.best_params or {})}).\n"
        f"# Results: {results.uri}\n"
        + (f"# maxSteps raised to {steps} for the rehearsal (--steps).\n" if steps else "")
    )
    _write(output, header + _dump(trainer.to_wire()), err)

    sweep_storage = results.spec.storage if results.spec else DEFAULT_STORAGE
    rehearsal_name = (name or f"{summary.sweep}-best")[:63].rstrip("-")
    manifest = _rehearsal(rehearsal_name, summary, score, trainer, storage or sweep_storage, err)
    target = rehearsal_out or output.with_name(f"{output.stem}-rehearsal.yaml")
    _write(
        target,
        f"# Rehearsal of sweep {source}'s best trial {summary.best_trial_id} "
        f"({PRIMARY_SCORE}={score}).\n"
        f"# Run it: tunix-rt rehearsal run {target}   or   kubectl apply -f {target}\n"
        + _dump(manifest),
        err,
    )
    console.print(
        Text(
            f"best trial {summary.best_trial_id} of sweep {source}: {PRIMARY_SCORE}={score} "
            f"({format_params(summary.best_params or {})})"
        ),
        soft_wrap=True,
    )
    console.print(Text(f"wrote {output} (trainer config)"), soft_wrap=True)
    console.print(Text(f"wrote {target} (Rehearsal {rehearsal_name})"), soft_wrap=True)
    console.print(
        Text(f"next: tunix-rt rehearsal run {target}   (on a cluster: kubectl apply -f {target})"),
        soft_wrap=True,
    )


def _write(path: Path, text: str, err: Console) -> None:
    """Write a file (its folder made); exits (1) with one line when it cannot."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    except OSError as exc:
        err.print(
            Text(f"error: cannot write {path}: {exc.strerror or exc}", style="red"),
            soft_wrap=True,
        )
        raise typer.Exit(ExitCode.FAILED) from None


def _finished(result: str, err: Console) -> tuple[results_mod.SweepResults, SweepResult]:
    """The sweep's results and its summary; exits (1) unless it finished with a best trial."""
    try:
        results = results_mod.load(result)
    except (results_mod.ResultsError, StoreError) as exc:
        err.print(Text(f"error: {exc}", style="red"), soft_wrap=True)
        raise typer.Exit(ExitCode.FAILED) from None
    summary = results.summary
    if summary is None:
        err.print(
            Text(f"error: {results.uri}: no summary yet: the sweep has not finished", style="red"),
            soft_wrap=True,
        )
        raise typer.Exit(ExitCode.FAILED)
    if summary.best_trial_id is None or summary.best_params is None:
        err.print(
            Text(
                f"error: sweep {summary.sweep} has no best trial ({summary.message})", style="red"
            ),
            soft_wrap=True,
        )
        raise typer.Exit(ExitCode.FAILED)
    return results, summary


def _trainer(summary: SweepResult, steps: int | None, err: Console) -> TrainerConfig:
    """The best trial's trainer config (maxSteps raised to ``steps``); exits (1) if invalid."""
    try:
        trainer = best_trial_config(summary.base_config, summary.best_params or {})
        if steps is not None:
            trainer = TrainerConfig.model_validate(trainer.model_dump() | {"max_steps": steps})
    except ValidationError as exc:
        where = "--steps" if steps is not None else f"sweep {summary.sweep}'s best params"
        for path, msg in validation_errors(exc, "trainer"):
            err.print(Text(f"error: {where}: {path}: {msg}", style="red"), soft_wrap=True)
        raise typer.Exit(ExitCode.INVALID if steps is not None else ExitCode.FAILED) from None
    except ValueError as exc:  # best params that are no trainer field (with_params)
        err.print(Text(f"error: sweep {summary.sweep}'s best params: {exc}", style="red"))
        raise typer.Exit(ExitCode.FAILED) from None
    return trainer


def _rehearsal(
    name: str,
    summary: SweepResult,
    score: str,
    trainer: TrainerConfig,
    storage: str,
    err: Console,
) -> dict[str, Any]:
    """The Rehearsal manifest that runs ``trainer`` inline; exits (1) if it is invalid."""
    manifest: dict[str, Any] = {
        "apiVersion": "tunixrt.io/v1alpha1",
        "kind": "Rehearsal",
        "metadata": {
            "name": name,
            "annotations": {
                SOURCE_SWEEP_ANNOTATION: summary.sweep,
                SOURCE_TRIAL_ANNOTATION: summary.best_trial_id,
                SOURCE_SCORE: score,
            },
        },
        "spec": {"trainer": trainer.to_wire(), "storage": storage},
    }
    try:
        Rehearsal.model_validate(manifest)
    except ValidationError as exc:
        for path, msg in validation_errors(exc):
            err.print(Text(f"error: Rehearsal {name}: {path}: {msg}", style="red"), soft_wrap=True)
        raise typer.Exit(ExitCode.INVALID) from exc
    return manifest
