"""Store.entries (one listing: folders, files with size and change stamp) and
Store.read_range, on every backend; and the web view over an object store, which reads
nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from support.stores import StoreBackend
from support.ui_store import write_growing, write_mixed
from tunix_rt.storage import Store, StoreEntry
from tunix_rt.ui import UiConfig, make_app


def check_entries(store: Store) -> None:
    store.write_text("ns/sweep/summary.json", "{}")
    store.write_text("ns/sweep/trials/t1.json", "{}")
    store.write_text("ns/sweep/trials/t2.json", "{}")
    top = store.entries("ns/sweep")
    assert set(top) == {"summary.json", "trials"}
    assert top["trials"] == StoreEntry(folder=True)
    summary = top["summary.json"]
    assert not summary.folder and summary.size == 2 and summary.stamp
    assert set(store.entries("ns/sweep/trials")) == {"t1.json", "t2.json"}
    assert store.entries("ns") == {"sweep": StoreEntry(folder=True)}
    assert store.entries("nowhere") == {}
    assert store.entries("ns/sweep/summary.json") == {}  # a file has no entries
    store.write_text("ns/sweep/summary.json", '{"phase": "Succeeded"}')
    rewritten = store.entries("ns/sweep")["summary.json"]
    assert rewritten.stamp != summary.stamp and rewritten.size == 22
    assert store.read_range("ns/sweep/summary.json", 2, 7) == b"phase"
    assert store.read_range("ns/sweep/summary.json", 20, 100) == b'"}'


def test_entries_on_a_local_folder(tmp_path: Path) -> None:
    check_entries(Store(f"file://{tmp_path}"))


def test_entries_on_an_object_store(backend: StoreBackend) -> None:
    check_entries(Store(f"{backend.root}/prefix"))


@pytest.mark.parametrize("backend", ["s3"], indirect=True)
async def test_the_web_view_reads_an_object_store(backend: StoreBackend) -> None:
    store = Store(f"{backend.root}/runs")
    write_mixed(store)
    write_growing(store)
    client = TestClient(TestServer(make_app(store.uri, UiConfig())))
    await client.start_server()
    try:
        html = await (await client.get("/")).text()
        assert 'data-run="team-a/mixed"' in html and 'data-run="team-b/growing"' in html
        sweep = await (await client.get("/sweeps/team-a/mixed")).text()
        assert sweep.count('<tr id="trial-') == 4
        log = await client.get("/files/sweeps/team-a/mixed/sweep_log.txt")
        assert log.status == 200 and await log.text() == "driver: 4 trials\n"
    finally:
        await client.close()
