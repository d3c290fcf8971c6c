"""``tunix-rt`` run in-process (typer's CliRunner) at a set terminal width, as the CLI
tests run it."""

from __future__ import annotations

from typing import Any

from typer.testing import CliRunner

import tunix_rt.cli as cli

runner = CliRunner()


def invoke(*args: str, columns: int = 200, **env: str) -> Any:
    """``tunix-rt *args`` with the terminal ``columns`` wide (``env``: more variables)."""
    return runner.invoke(cli.app, list(args), env={"COLUMNS": str(columns), **env})
