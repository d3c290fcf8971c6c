"""The kmock API server and its HTTP client as fixtures, shared by the operator and
durability tests (registered as a plugin in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import kmock
import pytest

from support.operator import Api, ApiServer, register_resources


@pytest.fixture
async def apiserver() -> AsyncIterator[ApiServer]:
    async with ApiServer() as server, kmock.Server(server):
        register_resources(server)
        yield server


@pytest.fixture
def api(apiserver: ApiServer) -> Api:
    return Api(str(apiserver.url))
