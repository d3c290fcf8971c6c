"""Fixtures for the Tunix backend tests: an s3:// store on moto's server for remote
checkpoints (the session's moto server from tests/conftest.py)."""

from __future__ import annotations

import pytest

from support.s3 import MotoS3


@pytest.fixture
def bucket(monkeypatch: pytest.MonkeyPatch, moto_s3: MotoS3, request: pytest.FixtureRequest) -> str:
    """A fresh bucket on moto, with dummy credentials and its endpoint in the environment."""
    moto_s3.put_client_env(monkeypatch, "testing", "testing-secret")
    return moto_s3.fresh_bucket("tunix-", request.node.name)
