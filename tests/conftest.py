"""Shared test setup: the repository root, and an environment for subprocesses (Ray runs)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.s3 import MotoS3

ROOT = Path(__file__).resolve().parents[1]

pytest_plugins = ["support.kube_fixtures"]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoS3]:
    """moto's S3 server on loopback, one for the whole session (support.s3)."""
    server = MotoS3()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def moto_s3(moto_server: MotoS3) -> MotoS3:
    """The session's moto server, running (started again if a fault test stopped it);
    each test takes a fresh bucket (``MotoS3.fresh_bucket``)."""
    if not moto_server.running:
        moto_server.start()
    return moto_server


@pytest.fixture
def subprocess_env(tmp_path: Path) -> dict[str, str]:
    """Environment for a child ``tunix-rt`` / ``python -m tunix_rt.tune``: no usage stats,
    the test workloads importable (``entrypoint: support.tune_workloads:train``)."""
    env = dict(os.environ)
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT / "tests"), str(ROOT / "operator"), env.get("PYTHONPATH", "")]
    ).rstrip(os.pathsep)
    env.pop("TUNIX_RT_TRIAL_WORKLOAD", None)
    env["COLUMNS"] = "200"
    return env
