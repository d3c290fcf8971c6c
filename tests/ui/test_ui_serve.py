"""The app started on a free port (what a browser test drives), its landmarks, its
security headers, the cache that spares unchanged files, and what it imports."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from support.imports import ML_STACKS, loaded_by
from support.net import free_port
from tunix_rt.storage import Store
from tunix_rt.ui import UiConfig, make_app, serve
from tunix_rt.ui.app import WARMUP
from tunix_rt.ui.pages import CONTEXT


async def test_serve_binds_a_free_port_and_answers(store: Store) -> None:
    served = await serve(make_app(store.uri, UiConfig()), port=0)
    try:
        assert served.port > 0 and served.url == f"http://127.0.0.1:{served.port}/"
        async with aiohttp.ClientSession() as session:
            async with session.get(served.url + "healthz") as resp:
                assert resp.status == 200 and await resp.text() == "ok\n"
            async with session.get(served.url) as resp:
                html = await resp.text()
    finally:
        await served.close()
    for landmark in (
        '<main id="main"',
        '<nav aria-label="Breadcrumb">',
        "<h1>",
        '<a class="skip" href="#main">',
    ):
        assert landmark in html


async def test_pages_carry_a_strict_content_security_policy(client: TestClient[Any, Any]) -> None:
    resp = await client.get("/sweeps/team-a/mixed")
    policy = resp.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy
    assert "frame-ancestors 'none'" in policy and resp.headers["X-Frame-Options"] == "DENY"
    html = await resp.text()
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "")  # no CDN, nothing remote
    assert "https://" not in html


async def test_a_second_view_parses_nothing_that_did_not_change(
    client: TestClient[Any, Any], store: Store
) -> None:
    app = client.server.app
    cache = app[CONTEXT].catalog.cache
    # the start-up warm-up reads every run in a thread of its own: on a busy machine it
    # may still be parsing after the first view, so wait for it before counting
    await asyncio.wait_for(asyncio.gather(*app[WARMUP]), timeout=60)
    await client.get("/")
    misses = cache.misses
    await client.get("/")
    assert cache.misses == misses and cache.hits > 0
    store.write_text(
        "team-b/growing/trials/g_00001.json", store.read_text("team-b/growing/trials/g_00001.json")
    )
    await client.get("/")
    assert cache.misses == misses + 1  # the one rewritten record, read again


async def test_the_app_reads_the_store_ahead_of_the_first_view(store: Store) -> None:
    app = make_app(store.uri, UiConfig(warm_cache=True))
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        cache = app[CONTEXT].catalog.cache
        await asyncio.wait_for(asyncio.gather(*app[WARMUP]), timeout=60)
        misses = cache.misses
        assert misses > 0
        assert (await client.get("/")).status == 200
        assert cache.misses == misses  # the first view parsed nothing itself
    finally:
        await client.close()


async def test_an_unreachable_store_is_a_page_that_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TUNIX_RT_S3_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("TUNIX_RT_STORE_ATTEMPTS", "1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    client = TestClient(TestServer(make_app("s3://nowhere/runs", UiConfig())))
    await client.start_server()
    try:
        resp = await client.get("/")
        assert resp.status == 503
        html = await resp.text()
        assert "The store cannot be read" in html and "s3://nowhere/runs" in html
    finally:
        await client.close()


def test_the_ui_imports_no_trainer_ray_or_kopf() -> None:
    watched = [*ML_STACKS, "tunix", "kopf", "kubernetes_asyncio"]
    assert loaded_by(["tunix_rt.ui", "tunix_rt.ui.pages"], watched) == []
