"""``tunix-rt crds``: the CustomResourceDefinitions generated from the models."""

from __future__ import annotations

from pathlib import Path

import typer

from tunix_rt.contract.exits import ExitCode


def crds(
    write: Path | None = typer.Option(
        None, "--write", help="Write one file per CRD into this folder instead of printing."
    ),
) -> None:
    """Print the Sweep and Rehearsal CRDs (kubectl apply -f - ready), or --write them.

    Exits 1 with one line when the folder cannot be written.
    """
    from tunix_rt.api import crd

    if write is None:
        typer.echo(crd.render_all(), nl=False)
        return
    try:
        paths = crd.write(write)
    except OSError as exc:
        where = exc.filename or write
        typer.echo(
            f"error: cannot write to {where}: {exc.strerror or exc}; choose a writable --write",
            err=True,
        )
        raise typer.Exit(ExitCode.FAILED) from None
    for path in paths:
        typer.echo(f"wrote {path}")
