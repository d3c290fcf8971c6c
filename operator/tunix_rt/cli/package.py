"""``tunix-rt package RUN_DIR [-o DIR]`` and ``tunix-rt package --verify ZIP``."""

from __future__ import annotations

from pathlib import Path

import typer

from tunix_rt.contract.exits import ExitCode
from tunix_rt.evidence import PackageError, build_zip, verify_zip
from tunix_rt.evidence.checksums import ChecksumError

app = typer.Typer(
    name="package",
    help="Package an evidence folder into a reproducible submission zip, or verify one.",
    no_args_is_help=True,
    add_completion=False,
)


@app.command()
def package(
    run_dir: Path | None = typer.Argument(
        None, help="Evidence folder (e.g. runs/local/rehearsals/NAME).", show_default=False
    ),
    out: Path = typer.Option(
        Path("submission"), "-o", "--out", help="Folder for the zip.", show_default=True
    ),
    verify: Path | None = typer.Option(
        None, "--verify", metavar="ZIP", help="Check a bundle instead of building one."
    ),
) -> None:
    """Package an evidence folder into a reproducible zip, or --verify one.

    Writes tunix_rt_<run>_<date>_<sha>.zip with every evidence file and SHA256SUMS,
    byte-identical when run twice on the same folder; symlinks and paths escaping the
    folder are refused.
    """
    if verify is not None:
        if run_dir is not None:
            raise typer.BadParameter("give either RUN_DIR or --verify ZIP, not both")
        report = verify_zip(verify)
        if report.ok:
            score = "none" if report.primary_score is None else f"{report.primary_score:.4f}"
            typer.echo(
                f"OK {verify}: {len(report.files)} files, checksums match, primary_score {score}"
            )
            return
        for error in report.errors:
            typer.echo(f"error: {verify}: {error}", err=True)
        typer.echo(f"FAILED {verify}: {len(report.errors)} problem(s)", err=True)
        raise typer.Exit(ExitCode.FAILED)
    if run_dir is None:
        raise typer.BadParameter("RUN_DIR is required (or --verify ZIP)")
    try:
        path = build_zip(run_dir, out)
    except (PackageError, ChecksumError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(ExitCode.FAILED) from None
    except OSError as exc:
        typer.echo(f"error: {_os_problem(exc, out)}", err=True)
        raise typer.Exit(ExitCode.FAILED) from None
    report = verify_zip(path)
    if not report.ok:
        typer.echo(f"error: {path} does not verify: {'; '.join(report.errors)}", err=True)
        raise typer.Exit(ExitCode.FAILED)
    typer.echo(str(path))


def _os_problem(exc: OSError, out: Path) -> str:
    """One line for a file that could not be read or written (never a traceback)."""
    where = Path(exc.filename) if exc.filename else out
    reason = exc.strerror or str(exc)
    failed, target = where.resolve(), out.resolve()
    if failed == target or target in failed.parents or failed in target.parents:
        return f"cannot write to {out}: {reason}; choose a writable -o"
    return f"{where}: {reason}"
