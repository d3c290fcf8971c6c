"""``tunix-rt`` run in-process (typer's CliRunner) at a set terminal width, as the CLI
tests run it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from typer.testing import CliRunner

import tunix_rt.cli as cli

runner = CliRunner()


def invoke(*args: str, columns: int = 200, **env: str) -> Any:
    """``tunix-rt *args`` with the terminal ``columns`` wide (``env``: more variables)."""
    return runner.invoke(cli.app, list(args), env={"COLUMNS": str(columns), **env})


def validate_text(path: Path, text: str, columns: int = 200) -> Any:
    """``tunix-rt validate path`` once ``text`` is written there (one file's verdict)."""
    path.write_text(text)
    return invoke("validate", str(path), columns=columns)
