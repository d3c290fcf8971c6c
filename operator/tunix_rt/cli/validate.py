"""``tunix-rt validate FILE…``: check manifests; errors name the field path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.text import Text

from tunix_rt.api.common import GROUP
from tunix_rt.api.errors import ManifestError
from tunix_rt.api.manifests import (
    KINDS,
    Checked,
    check_document,
    check_trainer_config,
    is_trainer_config,
    load_documents,
)
from tunix_rt.api.secrets import redact
from tunix_rt.cli.common import esc
from tunix_rt.cli.display import make_console
from tunix_rt.cli.suggest import with_hints
from tunix_rt.contract.exits import ExitCode
from tunix_rt.reading.limits import clip_message

KIND_ERROR = f"kind must be {' or '.join(KINDS)}"


def print_errors(
    console: Console,
    where: str,
    errors: list[tuple[str, str]],
    kind: str | None = "Sweep",
    doc: Any = None,
) -> None:
    """Each ``(field, message)`` as ``error: <where>: <field>: <message>`` (a misspelt
    name followed by "did you mean"), then ``where: invalid``. User text prints as
    written (``[/x]`` is not markup)."""
    for path, message in with_hints(errors, kind, doc):
        line = f"error: {where}: {path}: {message}" if path else f"error: {where}: {message}"
        console.print(Text(redact(line), style="red"), soft_wrap=True)
    console.print(Text(redact(f"{where}: invalid"), style="red"), soft_wrap=True)


def _tunix_kind_problem(doc: Any, index: int) -> Checked | None:
    """A document that means to be a tunix-rt one (its apiVersion is in our group, or its
    kind is ours in another case) but whose kind is not exactly one of ours: an error,
    not a document of another kind to skip."""
    if not isinstance(doc, dict):
        return None
    kind, api_version = doc.get("kind"), doc.get("apiVersion")
    ours = isinstance(api_version, str) and api_version.split("/", 1)[0] == GROUP
    near = isinstance(kind, str) and kind.lower() in {k.lower() for k in KINDS}
    if (isinstance(kind, str) and kind in KINDS) or not (ours or near):
        return None
    metadata = doc.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    shown = "it is missing" if kind is None else f"got {kind!r}"
    wanted = kind.lower() if isinstance(kind, str) else None
    hint = next((f"; did you mean {k}?" for k in KINDS if k.lower() == wanted), "")
    return Checked(
        index,
        None if kind is None else str(kind),
        name,
        [("kind", f"{KIND_ERROR}; {shown}{hint}")],
    )


def validate(
    files: list[Path] = typer.Argument(
        ..., help="YAML files; each may hold several documents (---).", show_default=False
    ),
) -> None:
    """Check Sweep and Rehearsal manifests and trainer config files; errors name the field.

    A trainer config file (what `tunix-rt promote -o` writes and `python -m
    tunix_rt.train --config` reads: trainer fields at the top level, no apiVersion or
    kind) is checked as a Sweep's spec.trainer is. Errors name the field, e.g.
    spec.searchSpace.learningRate.low. A document of the tunixrt.io group whose kind is
    missing or not exactly Sweep or Rehearsal (e.g. kind: sweep) is an error. Documents
    of other API groups (a ConfigMap, a Kustomization) are skipped with a note; a file
    holding none of ours is noted too.

    Exit status: 0 when every Sweep, Rehearsal and trainer config is valid; 2 (invalid
    input) when any is invalid, a file cannot be read or parsed, or no file given holds
    one at all (there was nothing to check).
    """
    out = make_console()
    err = make_console(stderr=True)
    bad = 0
    checked_any = False
    for path in files:
        try:
            docs = load_documents(path)
        except ManifestError as exc:
            print_errors(err, str(path), exc.errors)
            bad += 1
            continue
        ours = 0
        for index, doc in enumerate(docs):
            if is_trainer_config(doc):
                checked = check_trainer_config(doc, index)
            else:
                checked = _tunix_kind_problem(doc, index) or check_document(doc, index)
            label = f"{path}" + (f" (document {index + 1})" if len(docs) > 1 else "")
            what = clip_message(f"{checked.kind or '?'}/{checked.name or '?'}", limit=120)
            if checked.skipped:
                out.print(f"[dim]{esc(label)}: {esc(what)} skipped (not a tunix-rt kind)[/dim]")
                continue
            ours += 1
            if checked.errors:
                print_errors(err, f"{label}: {what}", checked.errors, checked.kind, doc)
                bad += 1
            else:
                out.print(f"[green]✓[/green] {esc(label)}: {esc(what)} is valid")
        if not docs:
            out.print(f"[yellow]{esc(path)}: no documents[/yellow]")
        elif not ours:
            out.print(
                f"[yellow]{esc(path)}: no Sweep, Rehearsal or trainer config in this file[/yellow]"
            )
        checked_any = checked_any or ours > 0
    if not checked_any and not bad:
        err.print(
            "[red]error: nothing to validate: no Sweep, Rehearsal or trainer config in the "
            "files given[/red]"
        )
        raise typer.Exit(ExitCode.INVALID)
    if bad:
        raise typer.Exit(ExitCode.INVALID)
