"""gs:// only, against gcp-storage-emulator's GCS JSON API over real HTTP on loopback
(what gs:// shares with s3:// is in test_store_remote.py).

The store reaches the emulator the way a user would, through STORAGE_EMULATOR_HOST. Faults
come from a TCP proxy in front of it that cuts a request half-way or answers like a
failing gateway (502/503), or from an endpoint that never answers.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import time
from pathlib import Path

import google.auth.exceptions
import pytest
import requests
from gcsfs.retry import ChecksumError, HttpError

from support.gcs import GcsEmulator
from support.net import CuttingProxy
from support.stores import StoreBackend, policy, retry_warnings
from tunix_rt.storage import Store, StoreError, is_transient
from tunix_rt.storage.local import TMP_PREFIX

SIMPLE_UPLOAD_LIMIT = 5 * 2**20
"""gcsfs uploads a file of this size or more as a resumable upload (else one request)."""


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


@pytest.mark.parametrize("backend", ["gs"], indirect=True)
@pytest.mark.parametrize(
    "status",
    [b"502 Bad Gateway", b"503 Service Unavailable"],
    ids=["502", "503"],
)
def test_gateway_error_is_retried(
    backend: StoreBackend,
    proxy: CuttingProxy,
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
    store = Store(f"{backend.root}/g", retry=policy(attempts=3))
    store.write_text("ok.json", '{"fine": true}')
    assert proxy.replied == 1
    warnings = retry_warnings(caplog)
    assert len(warnings) == 1
    assert f"writing {backend.root}/g/ok.json: transient error (attempt 1/3)" in warnings[0]
    assert backend.objects() == {"g/ok.json": 14}


@pytest.mark.parametrize("backend", ["gs"], indirect=True)
def test_resumable_upload_cut_mid_chunk_leaves_no_object(
    backend: StoreBackend, proxy: CuttingProxy, tmp_path: Path
) -> None:
    """A resumable upload (file >= 5 MiB) dies while its data goes up: no object appears.

    gcsfs then cancels the upload session (DELETE on its URL). Real GCS answers 499; the
    emulator does not implement that (501), so here the error each attempt reports is
    that 501 (transient too) rather than the reset behind it.
    """
    local = tmp_path / "model.bin"
    local.write_bytes(os.urandom(SIMPLE_UPLOAD_LIMIT + 3 * 2**20))
    store = Store(f"{backend.root}/mp", retry=policy(attempts=2))
    proxy.cut_after = 2 * 2**20  # bytes through one connection: inside the data request
    proxy.cuts = 10**6  # every connection that gets that far is cut
    proxy.go_away = False
    with pytest.raises(StoreError, match=rf"{backend.root}/mp/model.bin failed after 2 att"):
        store.upload_file(local, "model.bin")
    assert proxy.cut_count == 2  # each attempt started an upload session and was cut in it
    assert backend.objects() == {}
    proxy.cut_after = None  # healthy again: the same upload goes through whole
    store.upload_file(local, "model.bin")
    assert backend.objects() == {"mp/model.bin": local.stat().st_size}
    assert backend.content("mp/model.bin") == local.read_bytes()


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
