"""Fixtures for the rehearsal tests."""

from __future__ import annotations

import pytest
from rehearsal_helpers import FakeTrainer


@pytest.fixture
def fake_trainer() -> FakeTrainer:
    return FakeTrainer()
