"""Fixtures for the store tests: moto's S3 server and the GCS emulator on loopback.

s3:// gets dummy credentials from the environment; gs:// gets STORAGE_EMULATOR_HOST
(anonymous access, as Google's clients do with an emulator). ``backend`` is either, for
the tests that hold for both; ``proxy`` puts a connection-cutting proxy in front of it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TypeVar

import pytest

from support.gcs import GcsEmulator
from support.net import CuttingProxy
from support.s3 import SECRET, MotoS3
from support.stores import StoreBackend, StoreServer

S = TypeVar("S", bound=StoreServer)


def serve(server: S) -> Iterator[S]:
    """A session fixture's body: the server runs for the whole session."""
    server.start()
    yield server
    server.stop()


@pytest.fixture
def s3_env(monkeypatch: pytest.MonkeyPatch, moto_s3: MotoS3) -> MotoS3:
    """Dummy credentials in the environment (with a recognisable secret) and the endpoint."""
    moto_s3.put_client_env(monkeypatch, "testing", SECRET)
    return moto_s3


@pytest.fixture
def bucket(s3_env: MotoS3, request: pytest.FixtureRequest) -> str:
    """A fresh bucket per test (moto keeps state for the session)."""
    return s3_env.fresh_bucket("t-", request.node.name)


@pytest.fixture(scope="session")
def gcs_emulator() -> Iterator[GcsEmulator]:
    yield from serve(GcsEmulator())


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


@pytest.fixture(params=["s3", "gs"])
def backend(request: pytest.FixtureRequest) -> StoreBackend:
    """A fresh bucket on moto (s3://) or on the GCS emulator (gs://); a test that holds for
    one backend only takes ``@pytest.mark.parametrize("backend", [...], indirect=True)``."""
    if request.param == "s3":
        bucket = request.getfixturevalue("bucket")
        return StoreBackend(
            "s3", request.getfixturevalue("s3_env"), bucket, "TUNIX_RT_S3_ENDPOINT_URL"
        )
    bucket = request.getfixturevalue("gcs_bucket")
    return StoreBackend("gs", request.getfixturevalue("gcs_env"), bucket, "STORAGE_EMULATOR_HOST")


@pytest.fixture
def proxy(backend: StoreBackend, monkeypatch: pytest.MonkeyPatch) -> Iterator[CuttingProxy]:
    """The store reaches the backend's server through a proxy that can cut connections."""
    p = CuttingProxy(backend.server.port)
    p.start()
    monkeypatch.setenv(backend.endpoint_env, p.endpoint)
    yield p
    p.stop()
