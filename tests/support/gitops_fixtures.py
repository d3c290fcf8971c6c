"""Fixtures of the promote-to-git tests (``tests/gitops`` and the web view's Promote
button): git without the machine's config, a seeded bare repository, and stand-ins for
the GitHub / GitLab APIs. Import them into a test module or conftest by name."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support.gitops import ForgeStandIn, bare_repo, git_env


@pytest.fixture
def env() -> dict[str, str]:
    return git_env()


@pytest.fixture
def bare(tmp_path: Path, env: dict[str, str]) -> Path:
    return bare_repo(tmp_path / "git", env)


@pytest.fixture
def forge_api() -> Iterator[ForgeStandIn]:
    yield from ForgeStandIn().serve()
