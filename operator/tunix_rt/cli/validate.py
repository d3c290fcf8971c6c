"""``tunix-rt validate FILE…``: check manifests; errors name the field path."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from tunix_rt.api.errors import ManifestError
from tunix_rt.api.manifests import check_document, load_documents
from tunix_rt.cli.display import make_console
from tunix_rt.contract.exits import ExitCode


def print_errors(console: Console, where: str, errors: list[tuple[str, str]]) -> None:
    for path, message in errors:
        console.print(
            f"  [red]✗[/red] [bold]{path or '(document)'}[/bold]: {message}", soft_wrap=True
        )
    console.print(f"[red]{where}: invalid[/red]", soft_wrap=True)


def validate(
    files: list[Path] = typer.Argument(
        ..., help="YAML files; each may hold several documents (---).", show_default=False
    ),
) -> None:
    """Check Sweep and Rehearsal manifests (other kinds are skipped with a note).

    Each error names the field, e.g. spec.searchSpace.learningRate.low. Exits 1 when
    any manifest is invalid.
    """
    out = make_console()
    err = make_console(stderr=True)
    bad = 0
    for path in files:
        try:
            docs = load_documents(path)
        except ManifestError as exc:
            print_errors(err, str(path), exc.errors)
            bad += 1
            continue
        if not docs:
            out.print(f"[yellow]{path}: no documents[/yellow]")
        for index, doc in enumerate(docs):
            checked = check_document(doc, index)
            label = f"{path}" + (f" (document {index + 1})" if len(docs) > 1 else "")
            what = f"{checked.kind or '?'}/{checked.name or '?'}"
            if checked.skipped:
                out.print(f"[dim]{label}: {what} skipped (not a tunix-rt kind)[/dim]")
            elif checked.errors:
                print_errors(err, f"{label}: {what}", checked.errors)
                bad += 1
            else:
                out.print(f"[green]✓[/green] {label}: {what} is valid")
    if bad:
        raise typer.Exit(ExitCode.FAILED)
