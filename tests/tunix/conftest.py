"""Fixtures for the Tunix backend tests: an s3:// store on moto's server for remote
checkpoints (the session's moto server from tests/conftest.py), and JAX's persistent
compilation cache for the tests that train in this process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support.jax_cache import compile_cache
from support.s3 import MotoS3


@pytest.fixture(autouse=True, scope="module")
def _jax_compile_cache() -> Iterator[None]:
    """The trial workers' compile cache while this folder's tests run (restored after): a
    train step, sampler or eval that another test or run compiled is loaded, not
    compiled again (``support.jax_cache``)."""
    with compile_cache():
        yield


@pytest.fixture
def bucket(monkeypatch: pytest.MonkeyPatch, moto_s3: MotoS3, request: pytest.FixtureRequest) -> str:
    """A fresh bucket on moto, with dummy credentials and its endpoint in the environment."""
    moto_s3.put_client_env(monkeypatch, "testing", "testing-secret")
    return moto_s3.fresh_bucket("tunix-", request.node.name)
