"""The remote stores' test servers behind one face: the store tests that hold for s3://
(moto) and gs:// (the GCS emulator) alike run once per backend.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Protocol

import pytest

from tunix_rt.storage import RetryPolicy


def policy(attempts: int, base: float = 0.05) -> RetryPolicy:
    """A quick, deterministic retry policy."""
    return RetryPolicy(attempts=attempts, base_delay=base, max_delay=1.0, rng=random.Random(1))


def retry_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The Store's "retrying" warnings, captured."""
    return [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]


class StoreServer(Protocol):
    """What support.s3.MotoS3 and support.gcs.GcsEmulator both offer."""

    port: int

    @property
    def endpoint(self) -> str: ...

    @property
    def running(self) -> bool: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def objects(self, bucket: str) -> dict[str, int]: ...

    def content(self, bucket: str, name: str) -> bytes: ...


@dataclass
class StoreBackend:
    """A fresh bucket on a loopback server, and how the store is pointed at that server."""

    scheme: str
    server: StoreServer
    bucket: str
    endpoint_env: str
    """The environment variable that sends the store to the server (or to a proxy in front
    of it, to inject faults)."""

    @property
    def root(self) -> str:
        """The bucket's URI: ``s3://bucket`` or ``gs://bucket``."""
        return f"{self.scheme}://{self.bucket}"

    def objects(self) -> dict[str, int]:
        """Name → size of every object in the bucket, asked of the server directly."""
        return self.server.objects(self.bucket)

    def content(self, name: str) -> bytes:
        return self.server.content(self.bucket, name)
