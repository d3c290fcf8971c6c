"""The behaviour s3:// and gs:// share, run against each backend's loopback server (moto,
the GCS emulator) over real HTTP, including the server going away.

Faults come from stopping the server itself, or from a TCP proxy in front of it that cuts
a request half-way and stops listening. What only one backend does is in
test_store_s3.py and test_gcs_store.py.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from pathlib import Path

import pytest

from support.net import CuttingProxy, come_back_after_cut
from support.s3 import SECRET
from support.stores import StoreBackend, policy, retry_warnings, write_and_list
from tunix_rt.storage import Store, StoreError, StoreNotFoundError
from tunix_rt.storage.local import TMP_PREFIX


def test_roundtrip(backend: StoreBackend, tmp_path: Path) -> None:
    root = backend.root
    store = Store(f"{root}/root/")
    assert store.uri == f"{root}/root"
    write_and_list(store)
    # The server, asked directly, holds exactly these objects, whole.
    assert backend.objects() == {
        "root/local/other.txt": 1,
        "root/local/sw/summary.json": 2,
        "root/local/sw/trials/t1.json": len(store.read_bytes("local/sw/trials/t1.json")),
        "root/local/sw2/other.bin": 2,
    }
    local = tmp_path / "f.bin"
    local.write_bytes(os.urandom(70_000))
    assert store.upload_file(local, "local/blob.bin") == f"{root}/root/local/blob.bin"
    assert backend.content("root/local/blob.bin") == local.read_bytes()
    got = store.download("local/blob.bin", tmp_path / "dl" / "back.bin")
    assert got.read_bytes() == local.read_bytes()
    assert not [p for p in got.parent.iterdir() if p.name.startswith(TMP_PREFIX)]
    nope = re.escape(f"reading {root}/root/local/nope.json")
    with pytest.raises(StoreNotFoundError, match=nope):
        store.read_bytes("local/nope.json")
    with pytest.raises(FileNotFoundError):  # also a FileNotFoundError
        store.download("local/nope.json", tmp_path / "nope.json")
    assert not (tmp_path / "nope.json").exists()
    store.delete("local/other.txt")
    store.delete("local/other.txt")  # a missing object is not an error
    assert "root/local/other.txt" not in backend.objects()
    assert not store.exists("local/other.txt")


def test_overwrite_replaces_the_whole_object(backend: StoreBackend) -> None:
    store = Store(f"{backend.root}/o")
    store.write_bytes("k.bin", b"a" * 1000)
    store.write_bytes("k.bin", b"b" * 10)
    assert store.read_bytes("k.bin") == b"b" * 10
    assert backend.objects() == {"o/k.bin": 10}


def test_missing_bucket_is_a_permanent_error(backend: StoreBackend) -> None:
    store = Store(f"{backend.scheme}://no-such-bucket-here/p", retry=policy(attempts=4))
    started = time.monotonic()
    with pytest.raises(
        StoreError, match=rf"writing {backend.scheme}://no-such-bucket-here/p/k\.txt"
    ) as info:
        store.write_text("k.txt", "x")
    assert time.monotonic() - started < 5  # not retried for long: a 4xx is not transient
    assert isinstance(info.value, StoreNotFoundError)
    assert store.list("") == []


def test_server_gone_mid_write_is_a_clear_error_and_nothing_is_visible(
    backend: StoreBackend, proxy: CuttingProxy, caplog: pytest.LogCaptureFixture
) -> None:
    store = Store(f"{backend.root}/evidence", retry=policy(attempts=3))
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
        f"writing {backend.root}/evidence/big/eval_rows.jsonl failed after 3 attempts"
    )
    if backend.scheme == "gs":
        assert "Client" in message  # aiohttp's error: reset, then refused
    assert SECRET not in message
    assert proxy.cut_count == 1
    assert len(retry_warnings(caplog)) == 2
    assert all(SECRET not in r.getMessage() for r in caplog.records)
    # One retry loop, the Store's: gcsfs's own (~31 s per attempt) is off.
    assert elapsed < 10
    # No partial object: the server (asked directly) holds only the earlier object.
    assert backend.objects() == {"evidence/before.txt": 4}
    direct = Store(f"{backend.root}/evidence", endpoint_url=backend.server.endpoint)
    assert direct.list("") == ["before.txt"]
    assert not direct.exists("big/eval_rows.jsonl")


def test_server_back_after_a_cut_write_is_retried_whole(
    backend: StoreBackend, proxy: CuttingProxy
) -> None:
    # retries for about 7 s: the proxy is back 0.3 s after the cut, later on a busy machine
    store = Store(f"{backend.root}/evidence", retry=policy(attempts=10, base=0.2))
    payload = os.urandom(3 * 2**20)
    proxy.cut_after = 2**20
    proxy.cuts = 1
    proxy.go_away = True

    helper = come_back_after_cut(proxy)  # down for a while: early retries are refused too
    store.write_bytes("rows.bin", payload)
    helper.join()
    assert proxy.cut_count == 1
    assert backend.objects() == {"evidence/rows.bin": len(payload)}
    assert backend.content("evidence/rows.bin") == payload
    assert store.read_bytes("rows.bin") == payload


def test_real_server_stopped_then_restarted(backend: StoreBackend) -> None:
    """Stop the server itself (connections refused), start it again: the write is retried
    and lands."""
    server = backend.server
    store = Store(f"{backend.root}/r", retry=policy(attempts=8, base=0.2))
    store.write_text("a.txt", "a")
    server.stop()
    failures: list[BaseException] = []
    try:
        timer = threading.Timer(0.6, server.start)
        timer.start()
        try:
            store.write_text("b.txt", "b" * 1000)
        except BaseException as exc:  # pragma: no cover - reported below
            failures.append(exc)
        timer.join()
    finally:
        if not server.running:
            server.start()
    assert not failures, failures
    assert backend.objects() == {"r/a.txt": 1, "r/b.txt": 1000}


def test_real_server_gone_for_good_is_a_clear_error(
    backend: StoreBackend, caplog: pytest.LogCaptureFixture
) -> None:
    store = Store(f"{backend.root}/r", retry=policy(attempts=3))
    caplog.set_level(logging.WARNING, logger="tunix_rt.storage")
    backend.server.stop()
    started = time.monotonic()
    try:
        with pytest.raises(StoreError) as info:
            store.write_text("c.txt", "c")
        reading = re.escape(f"reading {backend.root}/r/c.txt failed after")
        with pytest.raises(StoreError, match=reading):
            store.read_bytes("c.txt")
    finally:
        backend.server.start()
    elapsed = time.monotonic() - started
    message = str(info.value)
    assert message.startswith(f"writing {backend.root}/r/c.txt failed after 3 attempts")
    if backend.scheme == "s3":
        assert "EndpointConnectionError" in message or "Connect" in message
    else:
        assert "ClientConnectorError" in message and "Connect" in message
    assert SECRET not in message
    assert len(retry_warnings(caplog)) == 4  # 2 per operation, then the error
    assert elapsed < 10  # gcsfs's own retry loop would add ~31 s per attempt
    assert backend.objects() == {}
