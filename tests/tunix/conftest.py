"""Fixtures for the Tunix backend tests: an s3:// store on moto's server for remote
checkpoints (the session's moto server from tests/conftest.py)."""

from __future__ import annotations

import pytest

from support.s3 import MotoS3


@pytest.fixture
def bucket(monkeypatch: pytest.MonkeyPatch, moto_s3: MotoS3, request: pytest.FixtureRequest) -> str:
    """A fresh bucket on moto, with dummy credentials and its endpoint in the environment."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("TUNIX_RT_S3_ENDPOINT_URL", moto_s3.endpoint)
    return moto_s3.fresh_bucket("tunix-", request.node.name)
