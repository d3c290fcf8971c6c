"""gs:// against gcp-storage-emulator's GCS JSON API over real HTTP on loopback.

The store reaches the emulator the way a user would, through STORAGE_EMULATOR_HOST. Faults
come from stopping the emulator itself, or from a TCP proxy in front of it that cuts a
request half-way, stops listening, or answers like a failing gateway (502/503).
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import google.auth.exceptions
import pytest
import requests
from gcsfs.retry import ChecksumError, HttpError

from support.gcs import GcsEmulator
from support.net import CuttingProxy, come_back_after_cut
from tunix_rt.storage import RetryPolicy, Store, StoreError, StoreNotFoundError, is_transient
from tunix_rt.storage.store import TMP_PREFIX

SIMPLE_UPLOAD_LIMIT = 5 * 2**20
"""gcsfs uploads a file of this size or more as a resumable upload (else one request)."""


def policy(attempts: int, base: float = 0.05) -> RetryPolicy:
    return RetryPolicy(attempts=attempts, base_delay=base, max_delay=1.0, rng=random.Random(1))


def test_roundtrip(gcs_bucket: str, gcs_env: GcsEmulator, tmp_path: Path) -> None:
    store = Store(f"gs://{gcs_bucket}/root/")
    assert store.uri == f"gs://{gcs_bucket}/root"
    assert store.write_json("local/sw/trials/t1.json", {"primary_score": 0.5}) == (
        f"gs://{gcs_bucket}/root/local/sw/trials/t1.json"
    )
    store.write_text("local/sw/summary.json", "{}")
    store.write_bytes("local/sw2/other.bin", b"\x00\x01")
    store.write_text("local/other.txt", "x")
    assert store.read_json("local/sw/trials/t1.json") == {"primary_score": 0.5}
    assert store.read_text("local/sw/summary.json") == "{}"
    assert store.read_bytes("local/sw2/other.bin") == b"\x00\x01"
    assert store.exists("local/sw/summary.json")
    assert not store.exists("local/sw/nope.json")
    # A prefix is a folder: local/sw does not take in local/sw2.
    assert store.list("local/sw") == ["local/sw/summary.json", "local/sw/trials/t1.json"]
    assert store.list("local/sw/") == store.list("local/sw")
    assert store.list("") == [
        "local/other.txt",
        "local/sw/summary.json",
        "local/sw/trials/t1.json",
        "local/sw2/other.bin",
    ]
    assert store.list("missing/") == []
    # The emulator, asked directly, holds exactly these objects, whole.
    assert gcs_env.objects(gcs_bucket) == {
        "root/local/other.txt": 1,
        "root/local/sw/summary.json": 2,
        "root/local/sw/trials/t1.json": len(store.read_bytes("local/sw/trials/t1.json")),
        "root/local/sw2/other.bin": 2,
    }
    local = tmp_path / "f.bin"
    local.write_bytes(os.urandom(70_000))
    assert store.upload_file(local, "local/blob.bin") == f"gs://{gcs_bucket}/root/local/blob.bin"
    assert gcs_env.content(gcs_bucket, "root/local/blob.bin") == local.read_bytes()
    got = store.download("local/blob.bin", tmp_path / "dl" / "back.bin")
    assert got.read_bytes() == local.read_bytes()
    assert not [p for p in got.parent.iterdir() if p.name.startswith(TMP_PREFIX)]
    with pytest.raises(StoreNotFoundError, match=rf"reading gs://{gcs_bucket}/root/local/nope"):
        store.read_bytes("local/nope.json")
    with pytest.raises(FileNotFoundError):  # also a FileNotFoundError
        store.download("local/nope.json", tmp_path / "nope.json")
    assert not (tmp_path / "nope.json").exists()
    store.delete("local/other.txt")
    store.delete("local/other.txt")  # a missing object is not an error
    assert "root/local/other.txt" not in gcs_env.objects(gcs_bucket)
    assert not store.exists("local/other.txt")


def test_overwrite_replaces_the_whole_object(gcs_bucket: str, gcs_env: GcsEmulator) -> None:
    store = Store(f"gs://{gcs_bucket}/o")
    store.write_bytes("k.bin", b"a" * 1000)
    store.write_bytes("k.bin", b"b" * 10)
    assert store.read_bytes("k.bin") == b"b" * 10
    assert gcs_env.objects(gcs_bucket) == {"o/k.bin": 10}


def test_large_file_goes_up_as_a_resumable_upload(
    gcs_bucket: str, gcs_env: GcsEmulator, tmp_path: Path
) -> None:
    store = Store(f"gs://{gcs_bucket}/big")
    local = tmp_path / "model.bin"
    local.write_bytes(os.urandom(SIMPLE_UPLOAD_LIMIT + 2**20))
    store.upload_file(local, "model.bin")
    assert gcs_env.objects(gcs_bucket) == {"big/model.bin": local.stat().st_size}
    assert gcs_env.content(gcs_bucket, "big/model.bin") == local.read_bytes()
    # write_bytes goes up in one request below gcsfs's 50 MiB chunk size, whatever the size.
    payload = os.urandom(SIMPLE_UPLOAD_LIMIT + 1)
    store.write_bytes("rows.bin", payload)
    assert store.read_bytes("rows.bin") == payload


def test_upload_dir_puts_checksums_and_bundles_last(
    gcs_bucket: str, gcs_env: GcsEmulator, tmp_path: Path
) -> None:
    src = tmp_path / "run"
    (src / "submission").mkdir(parents=True)
    (src / "run_manifest.json").write_text("{}")
    (src / "submission" / "eval.jsonl").write_text('{"a": 1}\n')
    (src / "bundle.zip").write_bytes(b"PK")
    (src / f"{TMP_PREFIX}inflight").write_text("partial")
    sums = hashlib.sha256(b"{}").hexdigest() + "  run_manifest.json\n"
    (src / "SHA256SUMS").write_text(sums)
    store = Store(f"gs://{gcs_bucket}/ev")
    uris = store.upload_dir(src, "ns/r1")
    assert uris == [
        f"gs://{gcs_bucket}/ev/ns/r1/run_manifest.json",
        f"gs://{gcs_bucket}/ev/ns/r1/submission/eval.jsonl",
        f"gs://{gcs_bucket}/ev/ns/r1/SHA256SUMS",
        f"gs://{gcs_bucket}/ev/ns/r1/bundle.zip",
    ]
    listing = gcs_env.listing(gcs_bucket)
    assert sorted(listing) == sorted(uri.split("/", 3)[3] for uri in uris)
    # The emulator stamps each object's generation with the time it landed: the
    # checksums land after the files they cover, the bundle last.
    landed = sorted(listing, key=lambda name: int(listing[name]["generation"]))
    assert [name.rsplit("/", 1)[-1] for name in landed[-2:]] == ["SHA256SUMS", "bundle.zip"]
    assert store.read_text("ns/r1/SHA256SUMS") == sums


def test_temp_objects_are_not_listed(gcs_bucket: str, gcs_env: GcsEmulator) -> None:
    store = Store(f"gs://{gcs_bucket}/p")
    store.write_text("a/done.json", "{}")
    # A stray in-flight temp file that another tool copied up as-is.
    gcs_env.put(gcs_bucket, f"p/a/{TMP_PREFIX}abc123", b"half")
    assert store.list("a") == ["a/done.json"]
    assert store.list("") == ["a/done.json"]
    assert store.exists(f"a/{TMP_PREFIX}abc123")  # there, just never listed


def test_emulator_host_without_a_scheme(
    gcs_bucket: str, gcs_env: GcsEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """STORAGE_EMULATOR_HOST=host:port (how the gcloud emulators print it) works as well."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"127.0.0.1:{gcs_env.port}")
    store = Store(f"gs://{gcs_bucket}")
    store.write_text("x.txt", "hello")
    assert gcs_env.content(gcs_bucket, "x.txt") == b"hello"
    assert store.list() == ["x.txt"]


def test_missing_bucket_is_a_permanent_error(gcs_env: GcsEmulator) -> None:
    store = Store("gs://no-such-bucket-here/p", retry=policy(attempts=4))
    started = time.monotonic()
    with pytest.raises(StoreNotFoundError, match=r"writing gs://no-such-bucket-here/p/k\.txt"):
        store.write_text("k.txt", "x")
    assert time.monotonic() - started < 5  # not retried: a 404 is not transient
    assert store.list("") == []


@pytest.mark.parametrize(
    "uri",
    [
        "gs://user:SIGNATUREsecret99@bucket/p",
        "gs://bucket/p?X-Goog-Credential=me&X-Goog-Signature=SIGNATUREsecret99",
    ],
)
def test_uri_with_credentials_is_refused_and_redacted(uri: str) -> None:
    with pytest.raises(StoreError, match=r"refusing storage URI gs://") as info:
        Store(uri)
    assert "SIGNATUREsecret99" not in str(info.value)
    assert "***" in str(info.value)


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (HttpError({"code": 503, "message": "Service Unavailable"}), True),
        (HttpError({"code": 500, "message": "Backend Error"}), True),
        (HttpError({"code": 429, "message": "rateLimitExceeded"}), True),
        (HttpError({"code": 408, "message": "Request Timeout"}), True),
        (requests.exceptions.ProxyError(), True),  # what gcsfs raises for HTTP 502
        (google.auth.exceptions.RefreshError("metadata server said 500"), True),
        (google.auth.exceptions.TransportError("metadata server unreachable"), True),
        (ChecksumError("md5 mismatch"), True),
        (HttpError({"code": 401, "message": "Login Required"}), False),
        (HttpError({"code": 400, "message": "Bad Request"}), False),
        (OSError("Forbidden: b/o\nno access"), False),  # gcsfs's 403
        (FileExistsError("b/o"), False),  # gcsfs's 412
        (FileNotFoundError("b/o"), False),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else None,
)
def test_gcsfs_errors_are_classified(exc: BaseException, transient: bool) -> None:
    assert is_transient(exc) is transient


# --------------------------------------------------------------------------- faults


@pytest.fixture
def proxy(gcs_env: GcsEmulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[CuttingProxy]:
    p = CuttingProxy(gcs_env.port)
    p.start()
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", p.endpoint)
    yield p
    p.stop()


def retry_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]


@pytest.mark.parametrize(
    "status",
    [b"502 Bad Gateway", b"503 Service Unavailable"],
    ids=["502", "503"],
)
def test_gateway_error_is_retried(
    gcs_bucket: str,
    proxy: CuttingProxy,
    gcs_env: GcsEmulator,
    caplog: pytest.LogCaptureFixture,
    status: bytes,
) -> None:
    body = b'{"error": {"code": 503, "message": "try again"}}'
    proxy.reply = (
        b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body
    )
    proxy.replies = 1
    caplog.set_level(logging.WARNING, logger="tunix_rt.storage")
    store = Store(f"gs://{gcs_bucket}/g", retry=policy(attempts=3))
    store.write_text("ok.json", '{"fine": true}')
    assert proxy.replied == 1
    warnings = retry_warnings(caplog)
    assert len(warnings) == 1
    assert f"writing gs://{gcs_bucket}/g/ok.json: transient error (attempt 1/3)" in warnings[0]
    assert gcs_env.objects(gcs_bucket) == {"g/ok.json": 14}


def test_server_gone_mid_write_is_a_clear_error_and_nothing_is_visible(
    gcs_bucket: str, proxy: CuttingProxy, gcs_env: GcsEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    store = Store(f"gs://{gcs_bucket}/evidence", retry=policy(attempts=3))
    store.write_text("before.txt", "fine")  # the path works until the fault
    payload = os.urandom(2 * 2**20)
    proxy.cut_after = 2**20  # half the body is through when the server goes away
    proxy.cuts = 1
    proxy.go_away = True
    caplog.set_level(logging.WARNING, logger="tunix_rt.storage")
    started = time.monotonic()
    with pytest.raises(StoreError) as info:
        store.write_bytes("big/eval_rows.jsonl", payload)
    elapsed = time.monotonic() - started
    message = str(info.value)
    assert message.startswith(
        f"writing gs://{gcs_bucket}/evidence/big/eval_rows.jsonl failed after 3 attempts"
    )
    assert "Client" in message  # aiohttp's error: reset, then refused
    assert proxy.cut_count == 1
    assert len(retry_warnings(caplog)) == 2
    # One retry loop, the Store's: gcsfs's own (~31 s per attempt) is off.
    assert elapsed < 10
    # No partial object: the emulator (asked directly) holds only the earlier object.
    assert gcs_env.objects(gcs_bucket) == {"evidence/before.txt": 4}
    direct = Store(f"gs://{gcs_bucket}/evidence", endpoint_url=gcs_env.endpoint)
    assert direct.list("") == ["before.txt"]
    assert not direct.exists("big/eval_rows.jsonl")


def test_server_back_after_a_cut_write_is_retried_whole(
    gcs_bucket: str, proxy: CuttingProxy, gcs_env: GcsEmulator
) -> None:
    store = Store(f"gs://{gcs_bucket}/evidence", retry=policy(attempts=6, base=0.2))
    payload = os.urandom(3 * 2**20)
    proxy.cut_after = 2**20
    proxy.cuts = 1
    proxy.go_away = True

    helper = come_back_after_cut(proxy)  # down for a while: early retries are refused too
    store.write_bytes("rows.bin", payload)
    helper.join()
    assert proxy.cut_count == 1
    assert gcs_env.objects(gcs_bucket) == {"evidence/rows.bin": len(payload)}
    assert gcs_env.content(gcs_bucket, "evidence/rows.bin") == payload


def test_resumable_upload_cut_mid_chunk_leaves_no_object(
    gcs_bucket: str, proxy: CuttingProxy, gcs_env: GcsEmulator, tmp_path: Path
) -> None:
    """A resumable upload (file >= 5 MiB) dies while its data goes up: no object appears.

    gcsfs then cancels the upload session (DELETE on its URL). Real GCS answers 499; the
    emulator does not implement that (501), so here the error each attempt reports is
    that 501 (transient too) rather than the reset behind it.
    """
    local = tmp_path / "model.bin"
    local.write_bytes(os.urandom(SIMPLE_UPLOAD_LIMIT + 3 * 2**20))
    store = Store(f"gs://{gcs_bucket}/mp", retry=policy(attempts=2))
    proxy.cut_after = 2 * 2**20  # bytes through one connection: inside the data request
    proxy.cuts = 10**6  # every connection that gets that far is cut
    proxy.go_away = False
    with pytest.raises(StoreError, match=rf"gs://{gcs_bucket}/mp/model.bin failed after 2 att"):
        store.upload_file(local, "model.bin")
    assert proxy.cut_count == 2  # each attempt started an upload session and was cut in it
    assert gcs_env.objects(gcs_bucket) == {}
    proxy.cut_after = None  # healthy again: the same upload goes through whole
    store.upload_file(local, "model.bin")
    assert gcs_env.objects(gcs_bucket) == {"mp/model.bin": local.stat().st_size}
    assert gcs_env.content(gcs_bucket, "mp/model.bin") == local.read_bytes()


def test_server_that_never_answers_times_out_and_is_retried(
    gcs_bucket: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An endpoint that takes the connection and then says nothing: the read timeout
    (TUNIX_RT_STORE_READ_TIMEOUT_S) ends each attempt, the Store retries, then gives up."""
    caplog.set_level(logging.WARNING, logger="tunix_rt.storage")
    with socket.socket() as black_hole:
        black_hole.bind(("127.0.0.1", 0))
        black_hole.listen(16)  # the kernel completes the handshakes; nothing ever reads
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"127.0.0.1:{black_hole.getsockname()[1]}")
        monkeypatch.setenv("TUNIX_RT_STORE_READ_TIMEOUT_S", "0.3")
        store = Store(f"gs://{gcs_bucket}/t", retry=policy(attempts=2))
        started = time.monotonic()
        with pytest.raises(StoreError) as info:
            store.write_text("k.json", "{}")
        elapsed = time.monotonic() - started
    message = str(info.value)
    assert message.startswith(f"writing gs://{gcs_bucket}/t/k.json failed after 2 attempts")
    assert "Timeout" in message
    assert len(retry_warnings(caplog)) == 1
    assert 0.6 <= elapsed < 5  # two attempts of 0.3 s each, not aiohttp's 5-minute default


def test_real_server_stopped_then_restarted(gcs_bucket: str, gcs_env: GcsEmulator) -> None:
    """Stop the emulator itself (connections refused), start it again: the write lands."""
    store = Store(f"gs://{gcs_bucket}/r", retry=policy(attempts=8, base=0.2))
    store.write_text("a.txt", "a")
    gcs_env.stop()
    failures: list[BaseException] = []
    try:
        timer = threading.Timer(0.6, gcs_env.start)
        timer.start()
        try:
            store.write_text("b.txt", "b" * 1000)
        except BaseException as exc:  # pragma: no cover - reported below
            failures.append(exc)
        timer.join()
    finally:
        if not gcs_env.running:
            gcs_env.start()
    assert not failures, failures
    assert gcs_env.objects(gcs_bucket) == {"r/a.txt": 1, "r/b.txt": 1000}


def test_real_server_gone_for_good_is_a_clear_error(
    gcs_bucket: str, gcs_env: GcsEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    store = Store(f"gs://{gcs_bucket}/r", retry=policy(attempts=3))
    caplog.set_level(logging.WARNING, logger="tunix_rt.storage")
    gcs_env.stop()
    started = time.monotonic()
    try:
        with pytest.raises(StoreError) as info:
            store.write_text("c.txt", "c")
        with pytest.raises(StoreError, match=rf"reading gs://{gcs_bucket}/r/c.txt failed after"):
            store.read_bytes("c.txt")
    finally:
        gcs_env.start()
    elapsed = time.monotonic() - started
    message = str(info.value)
    assert message.startswith(f"writing gs://{gcs_bucket}/r/c.txt failed after 3 attempts")
    assert "ClientConnectorError" in message and "Connect" in message
    assert len(retry_warnings(caplog)) == 4  # 2 per operation, then the error
    assert elapsed < 10  # gcsfs's own retry loop would add ~31 s per attempt
    assert gcs_env.objects(gcs_bucket) == {}
