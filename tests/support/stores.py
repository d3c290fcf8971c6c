"""The remote stores' test servers behind one face: the store tests that hold for s3://
(moto) and gs:// (the GCS emulator) alike run once per backend; and the round trip that
every store, file:// included, keeps.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Protocol

import pytest

from tunix_rt.storage import RetryPolicy, Store


def policy(attempts: int, base: float = 0.05) -> RetryPolicy:
    """A quick, deterministic retry policy."""
    return RetryPolicy(attempts=attempts, base_delay=base, max_delay=1.0, rng=random.Random(1))


def write_and_list(store: Store) -> None:
    """What every store keeps: writes that return the object's URI and read back whole;
    ``exists``; ``list`` of a prefix, which is a folder (``local/sw`` does not take in
    ``local/sw2``), with or without its slash. Leaves four objects under ``local/``:
    ``other.txt`` (1 byte), ``sw/summary.json`` (2), ``sw/trials/t1.json``,
    ``sw2/other.bin`` (2)."""
    assert store.write_json("local/sw/trials/t1.json", {"primary_score": 0.5, "a": [1, 2]}) == (
        f"{store.uri}/local/sw/trials/t1.json"
    )
    store.write_text("local/sw/summary.json", "{}")
    store.write_bytes("local/sw2/other.bin", b"\x00\x01")
    store.write_text("local/other.txt", "x")
    assert store.read_json("local/sw/trials/t1.json") == {"a": [1, 2], "primary_score": 0.5}
    assert store.read_text("local/sw/summary.json") == "{}"
    assert store.read_bytes("local/sw2/other.bin") == b"\x00\x01"
    assert store.exists("local/sw/summary.json")
    assert not store.exists("local/sw/nope.json")
    assert store.list("local/sw") == ["local/sw/summary.json", "local/sw/trials/t1.json"]
    assert store.list("local/sw/") == store.list("local/sw")
    assert store.list("") == [
        "local/other.txt",
        "local/sw/summary.json",
        "local/sw/trials/t1.json",
        "local/sw2/other.bin",
    ]
    assert store.list("missing/") == store.list("nothing/here") == []


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
