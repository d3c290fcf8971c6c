"""Fixtures for the rehearsal tests."""

from __future__ import annotations

import pytest

from support.rehearsal import FakeTrainer


@pytest.fixture
def fake_trainer() -> FakeTrainer:
    return FakeTrainer()
