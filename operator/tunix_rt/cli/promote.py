"""``tunix-rt promote RESULT -o FILE``: a sweep's best trial as files to commit.

Writes the best trial's trainer config (TrainerConfig, wire YAML) and a ready Rehearsal
manifest that runs it inline, annotated with where it came from (GitOps: commit both).
The files' text is :func:`tunix_rt.promotion.promoted_files`'s.
"""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console
from rich.text import Text

from tunix_rt.cli.common import storage_option
from tunix_rt.cli.display import make_console
from tunix_rt.contract.exits import ExitCode
from tunix_rt.promotion import PromotionError, load_finished, promoted_files
from tunix_rt.scoring import PRIMARY_SCORE
from tunix_rt.storage.redact import scrub


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
    _to_files(result, output, rehearsal_out, steps, name, storage, make_console(stderr=True))


def _to_files(
    result: str,
    output: Path,
    rehearsal_out: Path | None,
    steps: int | None,
    name: str | None,
    storage: str | None,
    err: Console,
) -> None:
    """Both files written next to each other (or where -o and --rehearsal say)."""
    console = make_console()
    target = rehearsal_out or output.with_name(f"{output.stem}-rehearsal.yaml")
    try:
        sweep = load_finished(result)
        files = promoted_files(
            sweep,
            trainer_path=str(output),
            rehearsal_path=str(target),
            steps=steps,
            name=name,
            storage=storage,
        )
    except PromotionError as exc:
        _fail(err, exc.lines, exc.exit_code)
    _write(output, files.trainer_text, err)
    _write(target, files.rehearsal_text, err)
    say = [
        f"best trial {sweep.trial_id} of sweep {sweep.source}: {PRIMARY_SCORE}={sweep.score} "
        f"({sweep.params})",
        f"wrote {output} (trainer config)",
        f"wrote {target} (Rehearsal {files.rehearsal_name})",
        f"next: tunix-rt rehearsal run {target}   (on a cluster: kubectl apply -f {target})",
    ]
    for line in say:
        console.print(Text(line), soft_wrap=True)


def _fail(err: Console, lines: list[str], code: ExitCode) -> NoReturn:
    """Each line as ``error: …`` (credentials masked); exits with ``code``."""
    for line in lines:
        err.print(Text(scrub(f"error: {line}"), style="red"), soft_wrap=True)
    raise typer.Exit(code)


def _write(path: Path, text: str, err: Console) -> None:
    """Write a file (its folder made); exits (1) with one line when it cannot."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    except OSError as exc:
        _fail(err, [f"cannot write {path}: {exc.strerror or exc}"], ExitCode.FAILED)
