"""Fixtures for the security tests: moto's S3 server on loopback (support.s3)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support.s3 import MotoS3


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[MotoS3]:
    server = MotoS3()
    server.start()
    yield server
    server.stop()
