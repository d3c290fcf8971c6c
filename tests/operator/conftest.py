"""Fixtures: the kmock API server, an HTTP client of it, a file:// store, the operator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import kmock
import pytest
from operator_helpers import Api, ApiServer, OperatorRun, StartOperator, register_resources

from tunix_rt.controller import OperatorConfig
from tunix_rt.storage import Store


@pytest.fixture
async def apiserver() -> AsyncIterator[ApiServer]:
    async with ApiServer() as server, kmock.Server(server):
        register_resources(server)
        yield server


@pytest.fixture
def api(apiserver: ApiServer) -> Api:
    return Api(str(apiserver.url))


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(f"file://{tmp_path / 'store'}")


@pytest.fixture
def config(store: Store) -> OperatorConfig:
    return OperatorConfig(
        image_cpu="registry.example/trainer:t-cpu",
        image_gpu="registry.example/trainer:t-cuda",
        image_tpu="registry.example/trainer:t-tpu",
        default_storage=store.uri,
        storage_secret="store-creds",
        poll_seconds=0.2,
        summary_grace_seconds=1.0,
        liveness_endpoint=None,
        metrics_port=0,
    )


@pytest.fixture
async def start_operator(
    apiserver: ApiServer, config: OperatorConfig
) -> AsyncIterator[StartOperator]:
    """Start the operator (any number of times); every run is stopped at the end."""
    runs: list[OperatorRun] = []

    async def start(cfg: OperatorConfig | None = None) -> OperatorRun:
        run = OperatorRun(cfg or config, str(apiserver.url))
        runs.append(run)
        return await run.start()

    yield start
    for run in runs:
        await run.stop()
