"""Fixtures for the store tests: moto's S3 server and the GCS emulator on loopback.

s3:// gets dummy credentials from the environment; gs:// gets STORAGE_EMULATOR_HOST
(anonymous access, as Google's clients do with an emulator).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from support.gcs import GcsEmulator
from support.s3 import SECRET, MotoS3


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[MotoS3]:
    server = MotoS3()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def s3_env(monkeypatch: pytest.MonkeyPatch, moto_s3: MotoS3) -> MotoS3:
    """Dummy credentials in the environment (with a recognisable secret) and the endpoint."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("TUNIX_RT_S3_ENDPOINT_URL", moto_s3.endpoint)
    return moto_s3


@pytest.fixture
def bucket(s3_env: MotoS3, request: pytest.FixtureRequest) -> str:
    """A fresh bucket per test (moto keeps state for the session)."""
    return s3_env.fresh_bucket("t-", request.node.name)


@pytest.fixture(scope="session")
def gcs_emulator() -> Iterator[GcsEmulator]:
    server = GcsEmulator()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def gcs_env(monkeypatch: pytest.MonkeyPatch, gcs_emulator: GcsEmulator) -> GcsEmulator:
    """gs:// goes to the emulator (restarted first if a test left it stopped)."""
    if not gcs_emulator.running:
        gcs_emulator.start()
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator.endpoint)
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    return gcs_emulator


@pytest.fixture
def gcs_bucket(gcs_env: GcsEmulator, request: pytest.FixtureRequest) -> str:
    """A fresh bucket per test (the emulator keeps state for the session)."""
    name = ("t-" + re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower()))[:50].strip("-")
    gcs_env.create_bucket(name)
    return name
