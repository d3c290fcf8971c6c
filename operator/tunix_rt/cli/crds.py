"""``tunix-rt crds``: the CustomResourceDefinitions generated from the models."""

from __future__ import annotations

from pathlib import Path

import typer


def crds(
    write: Path | None = typer.Option(
        None, "--write", help="Write one file per CRD into this folder instead of printing."
    ),
) -> None:
    """Print the Sweep and Rehearsal CRDs (kubectl apply -f - ready), or --write them."""
    from tunix_rt.api import crd

    if write is None:
        typer.echo(crd.render_all(), nl=False)
        return
    for path in crd.write(write):
        typer.echo(f"wrote {path}")
