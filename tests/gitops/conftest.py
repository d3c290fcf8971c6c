"""Fixtures of the promote-to-git tests: git without the machine's config, a seeded
bare repository, a finished sweep's folder, and stand-ins for the GitHub / GitLab APIs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support.gitops import ForgeStandIn, bare_repo, finished_sweep, git_env


@pytest.fixture
def env() -> dict[str, str]:
    return git_env()


@pytest.fixture
def bare(tmp_path: Path, env: dict[str, str]) -> Path:
    return bare_repo(tmp_path / "git", env)


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    return finished_sweep(tmp_path / "runs")


@pytest.fixture
def forge_api() -> Iterator[ForgeStandIn]:
    yield from ForgeStandIn().serve()
