"""Fixtures of the promote-to-git tests: git without the machine's config, a seeded
bare repository and the forge stand-ins (support.gitops_fixtures), a finished sweep's
folder, and what a test printed and logged (to look for a token in)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from support.gitops import finished_sweep
from support.gitops_fixtures import bare, env, forge_api

__all__ = ["bare", "env", "forge_api"]


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    return finished_sweep(tmp_path / "runs")


@pytest.fixture
def printed(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> Callable[[], str]:
    """What the test has written to stdout and stderr since the last call, and logged."""

    def read() -> str:
        captured = capsys.readouterr()
        return captured.out + captured.err + caplog.text

    return read
