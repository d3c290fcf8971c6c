"""Preflight: a sweep or a rehearsal whose store cannot be written fails in seconds,
before any training, with the URI and the cause named (issue 14, item 3).

``Store.probe`` writes ``<prefix>/.tunix-rt-probe-<random>`` and deletes it. The S3 cases
run against moto (credentials missing, bucket absent); the file:// case uses a folder
that cannot be written (read-only for a normal user; under /sys for root, who ignores
file modes).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from support.manifests import write_sweep
from support.rehearsal import FakeTrainer, tiny_trainer
from support.s3 import MotoS3
from support.sweeps import driver_cmd, stand_in_grid
from tunix_rt.api.rehearsal import RehearsalSpec
from tunix_rt.contract.exits import ExitCode
from tunix_rt.rehearsal import RehearsalError, plan_from_spec, run_rehearsal
from tunix_rt.rehearsal.run import STORE_UNAVAILABLE_REASON
from tunix_rt.storage import Store
from tunix_rt.storage.errors import StorePreflightError
from tunix_rt.storage.store import PROBE_PREFIX

FAST = 5.0
"""Seconds a failed preflight may take (it is a few requests; no retries for 4xx)."""


def _clear_s3_cache() -> None:
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()  # credentials are resolved per instance


@pytest.fixture
def no_credentials(s3_env: MotoS3, monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoS3]:
    """moto reachable, but no AWS credentials anywhere (env, files, instance metadata)."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    monkeypatch.delenv("AWS_WEB_IDENTITY_TOKEN_FILE", raising=False)
    _clear_s3_cache()
    yield s3_env
    _clear_s3_cache()


def unwritable_folder(tmp_path: Path) -> Path:
    """A folder nobody here can write into."""
    if os.geteuid() == 0:  # root ignores file modes; sysfs refuses new entries even to root
        return Path("/sys/tunix-rt-preflight-test")
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    return folder


def _probe_error(uri: str, *prefix: str) -> StorePreflightError:
    """What ``Store(uri).probe(*prefix)`` raises."""
    with pytest.raises(StorePreflightError) as caught:
        Store(uri).probe(*prefix)
    return caught.value


# ------------------------------------------------------------------------- Store.probe


def test_probe_writes_then_deletes(bucket: str, s3_env: MotoS3, tmp_path: Path) -> None:
    _clear_s3_cache()
    assert Store(f"s3://{bucket}/root").probe("ns/sweep") == f"s3://{bucket}/root"
    assert s3_env.objects(bucket) == {}  # nothing left behind
    local = Store(f"file://{tmp_path}/store")
    local.probe("ns/sweep")
    assert not [p for p in (tmp_path / "store").rglob("*") if PROBE_PREFIX in p.name]


@pytest.mark.reliability(
    "fault",
    "s3:// store without credentials at start",
    result="probe fails in < 5 s: cause 'credentials missing', URI and bucket named",
)
def test_probe_names_missing_credentials(no_credentials: MotoS3) -> None:
    started = time.monotonic()
    error = _probe_error("s3://some-bucket/prefix", "ns/x")
    assert time.monotonic() - started < FAST
    assert error.cause.startswith("credentials missing")
    assert "s3://some-bucket/prefix/ns/x" in str(error)
    assert "bucket 'some-bucket'" in str(error)


@pytest.mark.reliability(
    "fault",
    "s3:// bucket absent at start",
    result="probe fails: cause 'bucket absent', bucket named",
)
def test_probe_names_absent_bucket(s3_env: MotoS3) -> None:
    _clear_s3_cache()
    error = _probe_error("s3://no-such-bucket-here/p")
    assert error.cause == "bucket absent"
    assert "bucket 'no-such-bucket-here'" in str(error)


@pytest.mark.reliability(
    "fault",
    "file:// store folder not writable at start",
    result="StorePreflightError: URI and cause (permission denied / read-only) named",
)
def test_probe_names_unwritable_folder(tmp_path: Path) -> None:
    folder = unwritable_folder(tmp_path)
    error = _probe_error(f"file://{folder}", "ns/x")
    assert error.cause in ("permission denied", "read-only file system")
    assert str(folder) in str(error)


# ------------------------------------------------------------------------- rehearsal


def _rehearsal_error(storage: str, trainer: FakeTrainer) -> RehearsalError:
    """What a rehearsal of the tiny trainer config on ``storage`` raises."""
    spec = RehearsalSpec.model_validate({"trainer": tiny_trainer(), "storage": storage})
    plan = plan_from_spec(spec, name="pre", namespace="ml")
    with pytest.raises(RehearsalError) as caught:
        run_rehearsal(plan, trainer=trainer, echo=None)
    return caught.value


@pytest.mark.reliability(
    "fault",
    "rehearsal whose bucket is absent",
    result="reason StoreUnavailable, 'bucket absent', bucket named, < 5 s; no training",
)
def test_rehearsal_fails_before_training_when_bucket_absent(s3_env: MotoS3) -> None:
    _clear_s3_cache()
    trainer = FakeTrainer()
    started = time.monotonic()
    error = _rehearsal_error("s3://absent-bucket-pre/runs", trainer)
    assert time.monotonic() - started < FAST
    assert trainer.configs == []  # never trained
    assert error.reason == STORE_UNAVAILABLE_REASON == "StoreUnavailable"
    assert "preflight failed, nothing ran" in str(error)
    assert "bucket absent" in str(error) and "absent-bucket-pre" in str(error)


@pytest.mark.reliability(
    "fault",
    "rehearsal without store credentials",
    result="reason StoreUnavailable, 'credentials missing'; trainer never called",
)
def test_rehearsal_fails_before_training_without_credentials(no_credentials: MotoS3) -> None:
    trainer = FakeTrainer()
    error = _rehearsal_error("s3://somewhere/runs", trainer)
    assert trainer.configs == []
    assert error.reason == "StoreUnavailable"
    assert "credentials missing" in str(error)


@pytest.mark.reliability(
    "fault",
    "rehearsal on a read-only file:// store (CLI entrypoint)",
    result="exit 1 (FAILED) in < 5 s; trainer never called",
)
def test_rehearsal_entrypoint_exits_failed_on_unwritable_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from support.rehearsal import use_trainer
    from tunix_rt.rehearsal.__main__ import main

    trainer = FakeTrainer()
    use_trainer(monkeypatch, trainer)
    spec = tmp_path / "r.yaml"
    spec.write_text(yaml.safe_dump({"trainer": tiny_trainer()}))
    folder = unwritable_folder(tmp_path)
    started = time.monotonic()
    code = main(["--spec", str(spec), "--name", "ro", "--storage", f"file://{folder}"])
    assert code == ExitCode.FAILED
    assert time.monotonic() - started < FAST
    assert trainer.configs == []


# ------------------------------------------------------------------------- sweep driver


@pytest.mark.reliability(
    "fault",
    "sweep whose bucket is absent (driver)",
    result="exit 1, 'preflight failed, nothing ran', bucket named; Ray never started",
)
def test_sweep_driver_fails_before_ray_when_bucket_absent(
    s3_env: MotoS3, tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    env = subprocess_env | s3_env.client_env("testing", "testing-secret")
    spec = write_sweep(tmp_path / "s.yaml", "pre", stand_in_grid([0.003]))
    cmd = driver_cmd(spec, "s3://absent-bucket-sweep/runs")
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == ExitCode.FAILED, out.stdout[-2000:] + out.stderr[-2000:]
    assert "preflight failed, nothing ran" in out.stderr
    assert "bucket absent" in out.stderr and "absent-bucket-sweep" in out.stderr
    assert "Started a local Ray instance" not in out.stdout + out.stderr


@pytest.mark.reliability(
    "fault",
    "sweep on a read-only file:// store (driver)",
    result="outcome FAILED in < 5 s, folder named; Ray never started",
)
def test_sweep_run_fails_before_ray_on_unwritable_folder(tmp_path: Path) -> None:
    import ray

    from tunix_rt.api.manifests import load_sweep
    from tunix_rt.tune.driver import run_sweep
    from tunix_rt.tune.session import SweepRun

    doc = load_sweep(str(write_sweep(tmp_path / "s.yaml", "pre", stand_in_grid([0.003]))))
    folder = unwritable_folder(tmp_path)
    started = time.monotonic()
    outcome = run_sweep(SweepRun(spec=doc.spec, name="pre", storage=f"file://{folder}", echo=False))
    assert time.monotonic() - started < FAST
    assert outcome.exit_code == ExitCode.FAILED
    assert "preflight failed, nothing ran" in outcome.message
    assert str(folder) in outcome.message
    assert not ray.is_initialized()
