"""Fixtures: the kmock API server, an HTTP client of it, a file:// store, the operator;
and an s3:// store served by moto on loopback with an operator configured for it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from support import operator as op
from support.net import CuttingProxy
from support.operator_config import operator_config
from support.s3 import AWS_ELSEWHERE, SECRET, MotoS3
from tunix_rt.controller import OperatorConfig
from tunix_rt.storage import Store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(f"file://{tmp_path / 'store'}")


@pytest.fixture
def config(store: Store) -> OperatorConfig:
    return operator_config(store.uri)


@pytest.fixture
async def start_operator(
    apiserver: op.ApiServer, config: OperatorConfig
) -> AsyncIterator[op.StartOperator]:
    """Start the operator (any number of times); every run is stopped at the end."""
    runs: list[op.OperatorRun] = []

    async def start(cfg: OperatorConfig | None = None) -> op.OperatorRun:
        run = op.OperatorRun(cfg or config, str(apiserver.url))
        runs.append(run)
        return await run.start()

    yield start
    for run in runs:
        await run.stop()


# ----------------------------------------------------------------------------- s3://


@pytest.fixture
def s3_env(monkeypatch: pytest.MonkeyPatch, moto_s3: MotoS3) -> MotoS3:
    """Dummy credentials (a recognisable secret) and moto's endpoint in the environment,
    as the Helm chart's storage Secret would provide them; the Store's retries and
    timeouts kept small so that a store fault costs the tests little time."""
    moto_s3.put_client_env(monkeypatch, op.S3_ACCESS_KEY, SECRET, AWS_ELSEWHERE)
    monkeypatch.setenv("TUNIX_RT_STORE_ATTEMPTS", "2")
    monkeypatch.setenv("TUNIX_RT_STORE_BACKOFF_S", "0.05")
    monkeypatch.setenv("TUNIX_RT_STORE_CONNECT_TIMEOUT_S", "1")
    monkeypatch.setenv("TUNIX_RT_STORE_READ_TIMEOUT_S", "5")
    return moto_s3


@pytest.fixture
def s3_bucket(s3_env: MotoS3, request: pytest.FixtureRequest) -> str:
    """A fresh bucket per test (moto keeps its state for the session)."""
    name: str = s3_env.fresh_bucket("op-", request.node.name)
    return name


@pytest.fixture
def s3_store(s3_env: MotoS3, s3_bucket: str) -> Store:
    """The store the driver / rehearsal run writes to, talking to moto directly (the
    operator reaches the same bucket through ``TUNIX_RT_S3_ENDPOINT_URL``)."""
    return Store(f"s3://{s3_bucket}/tunix-rt", endpoint_url=s3_env.endpoint)


@pytest.fixture
def s3_config(monkeypatch: pytest.MonkeyPatch, s3_store: Store) -> OperatorConfig:
    """The operator's configuration as the Helm chart sets it: from the environment, with
    the s3:// store as ``TUNIX_RT_DEFAULT_STORAGE``."""
    env = {
        "TUNIX_RT_IMAGE_CPU": "registry.example/trainer:t-cpu",
        "TUNIX_RT_IMAGE_GPU": "registry.example/trainer:t-cuda",
        "TUNIX_RT_IMAGE_TPU": "registry.example/trainer:t-tpu",
        "TUNIX_RT_DEFAULT_STORAGE": s3_store.uri,
        "TUNIX_RT_STORAGE_SECRET": "store-creds",
        "TUNIX_RT_POLL_SECONDS": "0.2",
        "TUNIX_RT_SUMMARY_GRACE_SECONDS": "1",
        "TUNIX_RT_LIVENESS": "",
        "TUNIX_RT_METRICS_PORT": "0",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name in (
        "TUNIX_RT_NAMESPACES",
        "TUNIX_RT_PEERING",
        "TUNIX_RT_DEFAULT_POOLS",
        "TUNIX_RT_IMAGE_PULL_POLICY",
        "TUNIX_RT_DEADLINE_GRACE_SECONDS",
    ):
        monkeypatch.delenv(name, raising=False)
    config = OperatorConfig.from_env()
    assert config.default_storage == s3_store.uri and config.liveness_endpoint is None
    return config


@pytest.fixture
def s3_proxy(s3_env: MotoS3, monkeypatch: pytest.MonkeyPatch) -> Iterator[CuttingProxy]:
    """The operator reaches moto through a proxy that the test can take away (the driver's
    ``s3_store`` still talks to moto directly)."""
    proxy = CuttingProxy(s3_env.port)
    proxy.start()
    monkeypatch.setenv("TUNIX_RT_S3_ENDPOINT_URL", proxy.endpoint)
    yield proxy
    proxy.stop()


@pytest.fixture
async def proxied_s3_operator(
    s3_proxy: CuttingProxy, s3_config: OperatorConfig, start_operator: op.StartOperator
) -> op.OperatorRun:
    """The operator on the s3:// store, started after ``s3_proxy`` so that it reaches moto
    through the proxy (which the test can take away)."""
    return await start_operator(s3_config)
