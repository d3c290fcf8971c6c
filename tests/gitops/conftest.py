"""Fixtures of the promote-to-git tests: git without the machine's config, a seeded
bare repository and the forge stand-ins (support.gitops_fixtures), and a finished
sweep's folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.gitops import finished_sweep
from support.gitops_fixtures import bare, env, forge_api

__all__ = ["bare", "env", "forge_api"]


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    return finished_sweep(tmp_path / "runs")
