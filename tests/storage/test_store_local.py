"""The file:// store (the embedded default) and the retry/redaction machinery, no network."""

from __future__ import annotations

import builtins
import errno
import os
import random
from pathlib import Path
from typing import Any

import pytest

from support.stores import write_and_list
from tunix_rt.storage import (
    RetryPolicy,
    Store,
    StoreError,
    StoreNotFoundError,
    is_transient,
    redact_uri,
    scrub,
)
from tunix_rt.storage.local import TMP_PREFIX


def fast_policy(attempts: int = 4, sleeps: list[float] | None = None) -> RetryPolicy:
    record = sleeps if sleeps is not None else []
    return RetryPolicy(
        attempts=attempts,
        base_delay=0.01,
        max_delay=0.05,
        sleep=record.append,
        rng=random.Random(0),
    )


def test_roundtrip_list_exists_download(tmp_path: Path) -> None:
    store = Store(f"file://{tmp_path}/root")
    assert store.uri == f"file://{tmp_path}/root"
    write_and_list(store)
    got = store.download("local/sw2/other.bin", tmp_path / "dl" / "blob.bin")
    assert got.read_bytes() == b"\x00\x01"
    src = tmp_path / "src.txt"
    src.write_text("hello")
    store.upload_file(src, "up/src.txt")
    assert store.read_bytes("up/src.txt") == b"hello"
    store.delete("up/src.txt")
    store.delete("up/src.txt")  # idempotent
    assert not store.exists("up/src.txt")
    # Files written by the store are readable by others (0644), not mkstemp's 0600.
    assert (tmp_path / "root/local/sw/summary.json").stat().st_mode & 0o777 == 0o644


def test_relative_default_uri_resolves(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = Store("file://./runs")
    assert store.uri == f"file://{tmp_path}/runs"
    store.write_text("a.txt", "x")
    assert (tmp_path / "runs" / "a.txt").read_text() == "x"
    assert store.local_path("a.txt") == tmp_path / "runs" / "a.txt"


def test_missing_key_is_not_found_naming_the_uri(tmp_path: Path) -> None:
    store = Store(f"file://{tmp_path}")
    with pytest.raises(StoreNotFoundError, match=r"reading file://.*/nope\.json failed: not found"):
        store.read_bytes("nope.json")
    with pytest.raises(FileNotFoundError):  # also a FileNotFoundError, for older callers
        store.read_json("nope.json")


@pytest.mark.parametrize("key", ["../escape.txt", "a/../../b", "a/./b", "a\\b"])
def test_keys_cannot_escape_the_root(tmp_path: Path, key: str) -> None:
    store = Store(f"file://{tmp_path}/root")
    with pytest.raises(StoreError, match="escapes the store root"):
        store.write_text(key, "x")
    assert not (tmp_path / "escape.txt").exists()


def test_atomic_write_never_leaves_a_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(f"file://{tmp_path}", retry=fast_policy(attempts=1))
    store.write_text("doc.txt", "old content")

    real_fsync = os.fsync

    def failing_fsync(fd: int) -> None:
        real_fsync(fd)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(StoreError, match=r"writing file://.*doc\.txt failed: OSError"):
        store.write_text("doc.txt", "new content that never lands")
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert store.read_bytes("doc.txt") == b"old content"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["doc.txt"]  # temp file cleaned up


def test_list_hides_in_flight_temp_files(tmp_path: Path) -> None:
    store = Store(f"file://{tmp_path}")
    store.write_text("d/real.json", "{}")
    (tmp_path / "d" / f"{TMP_PREFIX}abc").write_text("half")
    assert store.list("d") == ["d/real.json"]


class Flaky:
    """A callable failing with the given exceptions first, then returning 'ok'."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def _client_error(status: int, code: str) -> Exception:
    from botocore.exceptions import ClientError

    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "PutObject",
    )


def test_transient_errors_are_retried_with_backoff(tmp_path: Path) -> None:
    sleeps: list[float] = []
    store = Store(f"file://{tmp_path}", retry=fast_policy(attempts=4, sleeps=sleeps))
    flaky = Flaky(ConnectionRefusedError("refused"), _client_error(503, "SlowDown"))
    assert store._call("writing", "k", flaky) == "ok"
    assert flaky.calls == 3
    assert len(sleeps) == 2
    # exponential with jitter in [0.5, 1] x base * 2**n
    assert 0.005 <= sleeps[0] <= 0.01
    assert 0.01 <= sleeps[1] <= 0.02


def test_retries_exhausted_gives_clear_error(tmp_path: Path) -> None:
    sleeps: list[float] = []
    store = Store(f"file://{tmp_path}", retry=fast_policy(attempts=3, sleeps=sleeps))
    flaky = Flaky(*(TimeoutError("timed out") for _ in range(5)))
    with pytest.raises(StoreError, match=r"writing file://.*/k failed after 3 attempts") as info:
        store._call("writing", "k", flaky)
    assert "TimeoutError: timed out" in str(info.value)
    assert flaky.calls == 3
    assert len(sleeps) == 2


@pytest.mark.parametrize(
    "error",
    [
        PermissionError("denied"),
        ValueError("bad"),
        OSError(errno.EINVAL, "invalid"),
    ],
)
def test_permanent_errors_fail_at_once(tmp_path: Path, error: Exception) -> None:
    sleeps: list[float] = []
    store = Store(f"file://{tmp_path}", retry=fast_policy(sleeps=sleeps))
    flaky = Flaky(error)
    with pytest.raises(StoreError):
        store._call("writing", "k", flaky)
    assert flaky.calls == 1
    assert sleeps == []


def test_classification() -> None:
    from botocore.exceptions import ConnectionClosedError, EndpointConnectionError

    assert is_transient(EndpointConnectionError(endpoint_url="http://x"))
    assert is_transient(ConnectionClosedError(endpoint_url="http://x"))
    assert is_transient(_client_error(500, "InternalError"))
    assert is_transient(_client_error(503, "ServiceUnavailable"))
    assert is_transient(_client_error(429, "TooManyRequests"))
    assert is_transient(_client_error(400, "RequestTimeout"))  # S3 sends 400 for this one
    assert not is_transient(_client_error(403, "AccessDenied"))
    assert not is_transient(_client_error(404, "NoSuchKey"))
    assert not is_transient(_client_error(400, "InvalidArgument"))
    wrapped = OSError(errno.EIO, "translated")
    wrapped.__cause__ = _client_error(502, "BadGateway")
    assert is_transient(wrapped)
    assert not is_transient(FileNotFoundError("x"))
    assert is_transient(ConnectionResetError("reset"))


def test_redaction(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cr3tVALUEvalue")
    monkeypatch.setenv("MY_API_TOKEN", "tok-0123456789")
    monkeypatch.setenv("HOME_DIR_NAME", "not-a-secret-name")
    assert redact_uri("s3://AKIA:s3cr3tVALUEvalue@bucket/p") == "s3://***@bucket/p"
    assert redact_uri("https://h/x?X-Amz-Signature=abc&part=2") == (
        "https://h/x?X-Amz-Signature=***&part=2"
    )
    text = scrub("failed with s3cr3tVALUEvalue and tok-0123456789 at not-a-secret-name")
    assert "s3cr3tVALUEvalue" not in text
    assert "tok-0123456789" not in text
    assert "not-a-secret-name" in text


def test_credentials_in_uri_are_refused_and_not_echoed() -> None:
    with pytest.raises(StoreError) as info:
        Store("s3://AKIAEXAMPLE:verysecretpart@bucket/prefix")
    assert "verysecretpart" not in str(info.value)
    assert "AKIAEXAMPLE" not in str(info.value)
    assert "s3://***@bucket/prefix" in str(info.value)
    with pytest.raises(StoreError, match="query strings"):
        Store("s3://bucket/prefix?token=abc")


def test_unsupported_scheme() -> None:
    with pytest.raises(StoreError, match="use file://, s3:// or gs://"):
        Store("ftp://host/x")


def test_gs_without_the_extra_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_gcsfs(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "gcsfs" or name.startswith("gcsfs."):
            raise ImportError("No module named 'gcsfs'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_gcsfs)
    with pytest.raises(StoreError, match=r"gs://bucket/p: gs:// storage needs the optional 'gcs'"):
        Store("gs://bucket/p")


def test_s3_endpoint_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    monkeypatch.delenv("TUNIX_RT_S3_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    store = Store("s3://bucket/prefix/")
    assert store.uri == "s3://bucket/prefix"
    assert store.root == "bucket/prefix"
    assert store.fs.endpoint_url == "http://127.0.0.1:1"
    monkeypatch.setenv("TUNIX_RT_S3_ENDPOINT_URL", "http://127.0.0.1:2")
    assert Store("s3://bucket/prefix").fs.endpoint_url == "http://127.0.0.1:2"


def test_upload_dir_orders_checksums_and_bundles_last(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "submission").mkdir(parents=True)
    (src / "b.json").write_text("{}")
    (src / "SHA256SUMS").write_text("sums")
    (src / "a.txt").write_text("a")
    (src / "submission" / "x.zip").write_bytes(b"zip")
    store = Store(f"file://{tmp_path}/store")
    uris = store.upload_dir(src, "ns/rehearsals/r")
    base = f"file://{tmp_path}/store/ns/rehearsals/r"
    assert uris == [
        f"{base}/a.txt",
        f"{base}/b.json",
        f"{base}/SHA256SUMS",
        f"{base}/submission/x.zip",
    ]
    (src / "link").symlink_to(src / "a.txt")
    with pytest.raises(StoreError, match="refusing to upload symlink"):
        store.upload_dir(src, "other")
