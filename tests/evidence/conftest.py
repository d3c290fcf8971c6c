"""Fixtures for the evidence tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.evidence import write_evidence


@pytest.fixture
def evidence_dir(tmp_path: Path) -> Path:
    return write_evidence(tmp_path / "run")
