"""Fixtures of the web view's tests: a store of real and hand-made runs
(support.ui_store), the app over it in aiohttp's test client, and for the Promote
button's git tests the promote-to-git fixtures (support.gitops_fixtures)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from support.gitops_fixtures import bare, env, forge_api
from support.ui_pages import MakeClient
from support.ui_store import build_store
from tunix_rt.storage import Store
from tunix_rt.ui import UiConfig, make_app
from tunix_rt.ui.config import LivePhases, Promoter

__all__ = ["bare", "env", "forge_api"]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return build_store(tmp_path / "store")


@pytest.fixture
async def make_client(store: Store) -> AsyncIterator[MakeClient]:
    """``await make_client(config=…, live=…, promoter=…)``: the app in a test client."""
    clients: list[TestClient[Any, Any]] = []

    async def make(
        config: UiConfig | None = None,
        live: LivePhases | None = None,
        promoter: Promoter | None = None,
    ) -> TestClient[Any, Any]:
        app = make_app(store.uri, config or UiConfig(), live, promoter=promoter)
        client = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


@pytest.fixture
async def client(make_client: MakeClient) -> TestClient[Any, Any]:
    """The app with its defaults: read-only, no live phases, no promoter."""
    return await make_client()
