"""s3:// against moto's S3 server over real HTTP on loopback, including the server going away."""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.net import CuttingProxy, come_back_after_cut
from support.s3 import SECRET, MotoS3
from tunix_rt.storage import RetryPolicy, Store, StoreError, StoreNotFoundError


def policy(attempts: int, base: float = 0.05) -> RetryPolicy:
    return RetryPolicy(attempts=attempts, base_delay=base, max_delay=1.0, rng=random.Random(1))


def objects(moto: MotoS3, bucket: str) -> dict[str, int]:
    """What S3 shows, read with boto3 straight from moto (not through the store or the proxy)."""
    listing = moto.client().list_objects_v2(Bucket=bucket)
    return {item["Key"]: item["Size"] for item in listing.get("Contents", [])}


def test_roundtrip(bucket: str, s3_env: MotoS3, tmp_path: Path) -> None:
    store = Store(f"s3://{bucket}/root")
    assert store.write_json("local/sw/trials/t1.json", {"primary_score": 0.5}) == (
        f"s3://{bucket}/root/local/sw/trials/t1.json"
    )
    store.write_text("local/sw/summary.json", "{}")
    store.write_text("local/other.txt", "x")
    assert store.read_json("local/sw/trials/t1.json") == {"primary_score": 0.5}
    assert store.exists("local/sw/summary.json")
    assert not store.exists("local/sw/nope.json")
    assert store.list("local/sw") == ["local/sw/summary.json", "local/sw/trials/t1.json"]
    assert store.list("") == [
        "local/other.txt",
        "local/sw/summary.json",
        "local/sw/trials/t1.json",
    ]
    assert store.list("missing/") == []
    local = tmp_path / "f.bin"
    local.write_bytes(os.urandom(70_000))
    store.upload_file(local, "local/blob.bin")
    assert store.download("local/blob.bin", tmp_path / "back.bin").read_bytes() == (
        local.read_bytes()
    )
    with pytest.raises(StoreNotFoundError, match=rf"s3://{bucket}/root/local/nope.json"):
        store.read_bytes("local/nope.json")
    store.delete("local/other.txt")
    assert "root/local/other.txt" not in objects(s3_env, bucket)


def test_missing_bucket_is_a_permanent_error(s3_env: MotoS3) -> None:
    store = Store("s3://no-such-bucket-here/p", retry=policy(attempts=4))
    started = time.monotonic()
    with pytest.raises(StoreError, match=r"s3://no-such-bucket-here/p/k\.txt"):
        store.write_text("k.txt", "x")
    assert time.monotonic() - started < 5  # not retried for long: a 4xx is not transient


@pytest.fixture
def proxy(s3_env: MotoS3, monkeypatch: pytest.MonkeyPatch) -> Iterator[CuttingProxy]:
    p = CuttingProxy(s3_env.port)
    p.start()
    monkeypatch.setenv("TUNIX_RT_S3_ENDPOINT_URL", p.endpoint)
    yield p
    p.stop()


def test_server_gone_mid_write_is_a_clear_error_and_nothing_is_visible(
    bucket: str, proxy: CuttingProxy, s3_env: MotoS3, caplog: pytest.LogCaptureFixture
) -> None:
    store = Store(f"s3://{bucket}/evidence", retry=policy(attempts=3))
    store.write_text("before.txt", "fine")  # the path works until the fault
    payload = os.urandom(2 * 2**20)
    proxy.cut_after = 2**20  # half the body is through when the server goes away
    proxy.cuts = 1
    proxy.go_away = True
    caplog.set_level(logging.WARNING, logger="tunix_rt.storage")
    with pytest.raises(StoreError) as info:
        store.write_bytes("big/eval_rows.jsonl", payload)
    message = str(info.value)
    assert f"writing s3://{bucket}/evidence/big/eval_rows.jsonl failed after 3 attempts" in message
    assert SECRET not in message
    assert proxy.cut_count == 1
    retries = [r for r in caplog.records if "retrying" in r.getMessage()]
    assert len(retries) == 2
    assert all(SECRET not in r.getMessage() for r in caplog.records)
    # No partial object: moto (asked directly) holds only the earlier object.
    assert objects(s3_env, bucket) == {"evidence/before.txt": 4}
    direct = Store(f"s3://{bucket}/evidence", endpoint_url=s3_env.endpoint)
    assert direct.list("") == ["before.txt"]
    assert not direct.exists("big/eval_rows.jsonl")


def test_server_back_after_a_cut_write_is_retried_whole(
    bucket: str, proxy: CuttingProxy, s3_env: MotoS3
) -> None:
    store = Store(f"s3://{bucket}/evidence", retry=policy(attempts=6, base=0.2))
    payload = os.urandom(3 * 2**20)
    proxy.cut_after = 2**20
    proxy.cuts = 1
    proxy.go_away = True

    helper = come_back_after_cut(proxy)  # down for a while: early retries are refused too
    store.write_bytes("rows.bin", payload)
    helper.join()
    assert proxy.cut_count == 1
    assert objects(s3_env, bucket) == {"evidence/rows.bin": len(payload)}
    assert store.read_bytes("rows.bin") == payload


def test_multipart_upload_cut_mid_part_leaves_no_object(
    bucket: str, proxy: CuttingProxy, s3_env: MotoS3
) -> None:
    """A multipart write (5 MiB parts) dies during a part: S3 never shows the object."""
    store = Store(f"s3://{bucket}/mp", retry=policy(attempts=2), part_size=5 * 2**20)
    payload = os.urandom(12 * 2**20)
    proxy.cut_after = 2 * 2**20  # bytes through one connection: inside a part's body
    proxy.cuts = 10**6  # every connection is cut: the server is effectively gone
    proxy.go_away = False
    with pytest.raises(StoreError, match=rf"s3://{bucket}/mp/model.bin failed after 2 attempts"):
        store.write_bytes("model.bin", payload)
    assert objects(s3_env, bucket) == {}
    proxy.cut_after = None  # healthy again: the same write goes through whole
    store.write_bytes("model.bin", payload)
    assert objects(s3_env, bucket) == {"mp/model.bin": len(payload)}


def test_real_server_stopped_then_restarted(bucket: str, s3_env: MotoS3) -> None:
    """Stop moto itself (connections refused), start it again: the write is retried and lands."""
    store = Store(f"s3://{bucket}/r", retry=policy(attempts=8, base=0.2))
    store.write_text("a.txt", "a")
    s3_env.stop()
    failures: list[BaseException] = []
    try:
        timer = threading.Timer(0.6, s3_env.start)
        timer.start()
        try:
            store.write_text("b.txt", "b" * 1000)
        except BaseException as exc:  # pragma: no cover - reported below
            failures.append(exc)
        timer.join()
    finally:
        if s3_env.server is None:
            s3_env.start()
    assert not failures, failures
    assert objects(s3_env, bucket) == {"r/a.txt": 1, "r/b.txt": 1000}


def test_real_server_gone_for_good_is_a_clear_error(bucket: str, s3_env: MotoS3) -> None:
    store = Store(f"s3://{bucket}/r", retry=policy(attempts=3))
    s3_env.stop()
    try:
        with pytest.raises(StoreError) as info:
            store.write_text("c.txt", "c")
    finally:
        s3_env.start()
    message = str(info.value)
    assert message.startswith(f"writing s3://{bucket}/r/c.txt failed after 3 attempts")
    assert "EndpointConnectionError" in message or "Connect" in message
    assert SECRET not in message
    assert objects(s3_env, bucket) == {}
