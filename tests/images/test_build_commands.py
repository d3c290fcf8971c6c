"""Every documented image build passes the commit: the trainer images run the driver and
the rehearsal, whose evidence records TUNIX_RT_COMMIT_SHA; without the build argument it
says "unknown" (issue 13)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLACES = [
    "README.md",
    "docs/kubernetes.md",
    "scripts/kind-e2e.sh",
    "Dockerfile",
    "images/trainer/Dockerfile",
    "images/trainer-tpu/Dockerfile",
]


def build_commands(text: str) -> list[str]:
    """Each ``docker build`` with its continuation lines (``\\``), comment marks removed."""
    lines = [re.sub(r"^\s*#\s?", "", line) for line in text.splitlines()]
    joined = "\n".join(lines).replace("\\\n", " ")
    return [line.strip() for line in joined.splitlines() if "docker build" in line]


@pytest.mark.parametrize("place", PLACES)
def test_documented_builds_record_the_commit(place: str) -> None:
    commands = build_commands((ROOT / place).read_text())
    for command in commands:
        assert "TUNIX_RT_COMMIT_SHA=" in command, f"{place}: {command}"


def test_the_places_document_builds() -> None:
    found = {p for p in PLACES if build_commands((ROOT / p).read_text())}
    assert {"docs/kubernetes.md", "images/trainer/Dockerfile", "Dockerfile"} <= found


def test_the_images_pass_the_commit_to_the_runs() -> None:
    for dockerfile in ("Dockerfile", "images/trainer/Dockerfile", "images/trainer-tpu/Dockerfile"):
        text = (ROOT / dockerfile).read_text()
        assert "ARG TUNIX_RT_COMMIT_SHA" in text, dockerfile
        assert re.search(r"TUNIX_RT_COMMIT_SHA=\$\{TUNIX_RT_COMMIT_SHA\}", text), dockerfile
