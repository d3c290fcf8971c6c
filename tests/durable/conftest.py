"""Fixtures for the durability tests: a short local folder for the driver's own state,
a fresh s3:// store on moto, the driver's environment (helpers: ``support.durable``)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from support.operator import ApiServer, OperatorRun
from support.operator_config import operator_config
from support.s3 import AWS_ELSEWHERE, SECRET, MotoS3
from tunix_rt.storage import Store


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short folder under /tmp (Ray's socket paths must stay under ~100 characters)."""
    path = Path(tempfile.mkdtemp(prefix="trt-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def s3_sweep_store(moto_s3: MotoS3, request: pytest.FixtureRequest) -> Store:
    bucket = moto_s3.fresh_bucket("d-", request.node.name)
    return Store(f"s3://{bucket}/tunix-rt", endpoint_url=moto_s3.endpoint)


@pytest.fixture
def driver_env(
    subprocess_env: dict[str, str], moto_s3: MotoS3, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """The driver's environment: moto's endpoint and dummy credentials (as the chart's
    Secret gives them). The test process gets the same variables, so its Store and the
    operator reach moto too."""
    unset = (*AWS_ELSEWHERE, "TUNIX_RT_STORE_ATTEMPTS", "TUNIX_RT_STORE_BACKOFF_S")
    s3 = moto_s3.put_client_env(monkeypatch, "testing", SECRET, unset)
    env = {k: v for k, v in subprocess_env.items() if not k.startswith("AWS_")}
    return env | s3


# ----------------------------------------------------------------------------- operator


@pytest.fixture
async def s3_operator(
    apiserver: ApiServer, s3_sweep_store: Store, driver_env: dict[str, str]
) -> AsyncIterator[OperatorRun]:
    """The operator (kopf against kmock) with the s3:// store as its default storage."""
    config = operator_config(s3_sweep_store.uri, poll_seconds=0.3, summary_grace_seconds=5.0)
    run = OperatorRun(config, str(apiserver.url))
    await run.start()
    yield run
    await run.stop()
