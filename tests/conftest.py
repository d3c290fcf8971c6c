"""Shared test setup: the repository root, an environment for subprocesses (Ray runs), and
the ``integration`` mark that keeps ``make test-fast`` to unit tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.s3 import MotoS3

ROOT = Path(__file__).resolve().parents[1]

pytest_plugins = ["support.kube_fixtures"]

INTEGRATION_MODULES = (
    "operator/",  # the operator (kopf) against the emulated API server
    "bad_inputs/test_bad_inputs.py",
    "ui/test_ui_playwright.py",  # a browser
    "evidence/test_report_browser.py",
    "tunix/",  # Gemma3 models built and compiled
    "train/test_train.py",  # the built-in trainer compiled and run
    "train/test_evaluate.py",
    "train/test_deadline.py",
    "train/test_model.py",
    "train/test_numerics.py",
    "train/test_schedule_replay.py",
    "tune/test_trial_threads.py",  # processes: the CLI, the driver, a trial
    "cli/test_cli_sweep_runs.py",
    "cli/test_cli_activity.py",
    "cli/test_cli_ui.py",
    "storage/test_preflight.py",
    "storage/test_store_remote.py",  # servers: S3 and GCS emulators, a git forge
    "security/test_canary.py",
    "rehearsal/test_rehearsal_layers.py",
    "gitops/test_gitops_forge.py",
    "bench/",
)
"""Test files that start a process, a server or a browser, or compile a model: each test
takes seconds, not milliseconds. ``make test`` runs them; ``make test-fast`` leaves them
out (with ``slow`` and ``load``), as it does every test that takes a server fixture."""
SERVER_FIXTURES = frozenset({"moto_server", "moto_s3"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    tests = Path(__file__).resolve().parent
    for item in items:
        where = item.path.relative_to(tests).as_posix()
        fixtures = set(getattr(item, "fixturenames", ()))
        if where.startswith(INTEGRATION_MODULES) or fixtures & SERVER_FIXTURES:
            item.add_marker(pytest.mark.integration)


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
    env["COLUMNS"] = "200"
    return env
