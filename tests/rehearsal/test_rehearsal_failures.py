"""Failed rehearsals: spec.timeoutSeconds, the failure log and failure.json in the store,
earlier evidence left intact, a store that refuses the upload, the CLI and the entrypoint."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from support.rehearsal import FakeTrainer, tiny_trainer, use_trainer, write_rehearsal
from tunix_rt.api.rehearsal import RehearsalSpec
from tunix_rt.contract.layout import rehearsal_prefix
from tunix_rt.evidence.failure import failure_schema_errors
from tunix_rt.evidence.manifest import canonical_json
from tunix_rt.rehearsal import (
    RehearsalError,
    RehearsalPlan,
    failure_from_store,
    plan_from_file,
    plan_from_spec,
    result_from_store,
    run_rehearsal,
)
from tunix_rt.rehearsal import __main__ as entry
from tunix_rt.rehearsal.errors import exit_code
from tunix_rt.rehearsal.run import sigterm_interrupts
from tunix_rt.storage import Store, StoreError

STAMP = r"\d{8}T\d{6}Z(-\d+)?"


def spec_plan(tmp_path: Path, name: str, **extra: Any) -> RehearsalPlan:
    spec = RehearsalSpec.model_validate(
        {"trainer": tiny_trainer(), "storage": f"file://{tmp_path}/store", **extra}
    )
    return plan_from_spec(spec, name=name)


def failed_files(store: Store, name: str) -> dict[str, str]:
    """failed/<stamp>/<file> -> key, for every failed attempt of a rehearsal."""
    prefix = rehearsal_prefix("local", name)
    keys = [k for k in store.list(prefix) if k.startswith(f"{prefix}/failed/")]
    return {k[len(prefix) + 1 :]: k for k in keys}


def snapshot(store: Store, prefix: str) -> dict[str, bytes]:
    return {k: store.read_bytes(k) for k in store.list(prefix) if "/failed/" not in k}


def test_plan_takes_the_timeout_from_the_spec_file_or_flag(tmp_path: Path) -> None:
    plan = spec_plan(tmp_path, "t", timeoutSeconds=600)
    assert (plan.timeout_seconds, plan.timeout_field) == (600, "spec.timeoutSeconds")
    assert spec_plan(tmp_path, "t").timeout_seconds is None
    manifest = write_rehearsal(
        tmp_path / "r.yaml",
        "r",
        {"trainer": tiny_trainer(), "timeoutSeconds": 900},
        api_version=False,
    )
    assert plan_from_file(manifest).timeout_seconds == 900
    flagged = plan_from_file(manifest, timeout_seconds=30)
    assert (flagged.timeout_seconds, flagged.timeout_field) == (30, "--timeout-seconds")
    with pytest.raises(RehearsalError, match="--timeout-seconds must be positive"):
        plan_from_file(manifest, timeout_seconds=0)


def test_timeout_fails_names_the_field_and_uploads_the_log(tmp_path: Path) -> None:
    plan = spec_plan(tmp_path, "slow", timeoutSeconds=600)
    plan.timeout_seconds = 0.3  # the spec's minimum is 60 s; the run takes the plan's value
    slow = FakeTrainer(step_seconds=0.2)
    store = Store(f"file://{tmp_path}/store")
    with pytest.raises(RehearsalError) as caught:
        run_rehearsal(plan, trainer=slow, out_dir=tmp_path / "out", echo=None)
    error = caught.value
    message = str(error)
    assert re.fullmatch(
        r"rehearsal slow: spec\.timeoutSeconds \(0\.3\) reached at step (\d+) of 20 after \d+ s; "
        r"raise spec\.timeoutSeconds or lower the trainer's maxSteps "
        rf"\(log: file://.*/local/rehearsals/slow/failed/{STAMP}/kaggle_output_log\.txt\)",
        message,
    ), message
    assert error.reason == "TrainingTimeout"
    assert error.step is not None and 0 < error.step < 20
    assert slow.deadlines[0] is not None  # the trainer got the deadline
    # in the store: the log and failure.json, nothing else (no evidence)
    files = failed_files(store, "slow")
    assert {f.rsplit("/", 1)[-1] for f in files} == {"kaggle_output_log.txt", "failure.json"}
    assert len({f.split("/")[1] for f in files}) == 1
    assert all(re.fullmatch(rf"failed/{STAMP}/[a-z_.]+", f) for f in files)
    assert result_from_store(store, "local", "slow") is None
    log_key = next(k for f, k in files.items() if f.endswith(".txt"))
    assert error.log_uri == store.uri_for(log_key)
    log = store.read_text(log_key)
    assert "timeout: spec.timeoutSeconds 0.3 s" in log
    assert f"FAILED: spec.timeoutSeconds (0.3) reached at step {error.step} of 20" in log
    assert log == (tmp_path / "out" / "kaggle_output_log.txt").read_text()
    doc = json.loads(store.read_bytes(next(k for f, k in files.items() if f.endswith(".json"))))
    assert failure_schema_errors(doc) == []
    assert doc["phase"] == "Failed" and doc["reason"] == "TrainingTimeout"
    assert doc["message"] == message.removeprefix("rehearsal slow: ").split(" (log: ")[0]
    assert doc["step"] == error.step and doc["max_steps"] == 20
    assert doc["timeout_seconds"] == 0.3 and doc["error_type"] == "StubTimeout"
    assert (
        doc["config_sha256"]
        == __import__("hashlib").sha256(canonical_json(plan.config.to_wire())).hexdigest()
    )
    assert re.fullmatch(r"[0-9a-f]{7,64}|unknown", doc["commit_sha"])
    assert doc["start_time"] <= doc["end_time"] and doc["log"] == "kaggle_output_log.txt"
    # read back, as the operator and `tunix-rt rehearsal show` do
    failure = failure_from_store(store, "local", "slow")
    assert failure is not None
    assert failure.message == doc["message"] and failure.step == error.step
    assert failure.log_uri == error.log_uri and failure.failure_uri == error.failure_uri
    assert failure_from_store(store, "local", "slow", since=datetime.now(UTC)) is None
    assert failure_from_store(store, "local", "never") is None


def test_deadline_already_past_stops_before_the_first_step(tmp_path: Path) -> None:
    plan = spec_plan(tmp_path, "late", timeoutSeconds=60)
    plan.timeout_seconds = 1e-9
    with pytest.raises(RehearsalError, match=r"reached at step 0 of 20 after 0 s") as caught:
        run_rehearsal(plan, trainer=FakeTrainer(), echo=None)
    assert caught.value.step == 0


def test_raising_trainer_leaves_log_and_failure_json(tmp_path: Path) -> None:
    plan = spec_plan(tmp_path, "nan")
    lines: list[str] = []
    with pytest.raises(RehearsalError) as caught:
        run_rehearsal(plan, trainer=FakeTrainer(fail_at=5), echo=lines.append)
    error = caught.value
    assert str(error).startswith(
        "rehearsal nan: training failed: FloatingPointError: loss is NaN at step 5 (log: file://"
    )
    assert error.reason == "TrainingFailed" and error.step == 5
    store = Store(f"file://{tmp_path}/store")
    failure = failure_from_store(store, "local", "nan")
    assert failure is not None
    assert failure.reason == "TrainingFailed" and failure.error_type == "FloatingPointError"
    assert failure.step == 5 and failure.timeout_seconds is None
    assert failure.message == "training failed: FloatingPointError: loss is NaN at step 5"
    assert failure.log_uri == error.log_uri
    log = store.read_text(failure.log_uri.removeprefix(store.uri + "/"))  # type: ignore[union-attr]
    assert "FAILED: training raised FloatingPointError: loss is NaN at step 5" in log
    assert "Traceback (most recent call last)" in log  # where it broke
    assert "step 5 loss" in log
    assert any(line.startswith("failure log uploaded to file://") for line in lines)
    assert not (Path(tmp_path) / "out").exists()  # no --out: the temp folder is gone


def test_failed_retry_leaves_the_good_bundle_alone(tmp_path: Path) -> None:
    store = Store(f"file://{tmp_path}/store")
    prefix = rehearsal_prefix("local", "keep")
    good = run_rehearsal(spec_plan(tmp_path, "keep"), trainer=FakeTrainer(), echo=None)
    before = snapshot(store, prefix)
    assert len(before) == 7 and good.log_uri == store.uri_for(f"{prefix}/kaggle_output_log.txt")

    for trainer, timeout in ((FakeTrainer(fail_at=0), None), (FakeTrainer(), 1e-9)):
        retry = spec_plan(tmp_path, "keep")
        retry.timeout_seconds = timeout
        with pytest.raises(RehearsalError):
            run_rehearsal(retry, trainer=trainer, echo=None)
    assert snapshot(store, prefix) == before  # byte for byte
    again = result_from_store(store, "local", "keep")
    assert again is not None
    assert again.evidence_files == good.evidence_files  # failed/ is not evidence
    assert again.primary_score == good.primary_score and again.log_uri == good.log_uri
    folders = {f.split("/")[1] for f in failed_files(store, "keep")}
    assert len(folders) == 2  # two attempts, two folders (a suffix when the second is the same)
    latest = failure_from_store(store, "local", "keep")
    assert latest is not None and latest.reason == "TrainingTimeout"

    # the next good run replaces the evidence and keeps the failure logs
    run_rehearsal(spec_plan(tmp_path, "keep"), trainer=FakeTrainer(), echo=None)
    assert {f.split("/")[1] for f in failed_files(store, "keep")} == folders


def test_out_dir_in_the_store_is_not_wiped_by_a_failed_run(tmp_path: Path) -> None:
    store = Store(f"file://{tmp_path}/store")
    prefix = rehearsal_prefix("local", "inplace")
    in_store = store.local_path(prefix)
    assert in_store is not None
    good = run_rehearsal(
        spec_plan(tmp_path, "inplace"), trainer=FakeTrainer(), out_dir=in_store, echo=None
    )
    assert good.local_dir == str(in_store)
    before = snapshot(store, prefix)
    with pytest.raises(RehearsalError, match="training failed"):
        run_rehearsal(
            spec_plan(tmp_path, "inplace"),
            trainer=FakeTrainer(fail_at=0),
            out_dir=in_store,
            echo=None,
        )
    assert snapshot(store, prefix) == before


class RefusingStore(Store):
    """A store that accepts nothing after the preflight probe: every upload fails after its
    retries (the store went away while the run trained)."""

    def probe(self, prefix: str = "") -> str:
        return self.uri

    def upload_file(self, local: str | Path, key: str) -> str:
        raise StoreError(f"uploading to {self.uri_for(key)} failed after 5 attempts: 503")

    def write_bytes(self, key: str, data: bytes) -> str:
        raise StoreError(f"writing {self.uri_for(key)} failed after 5 attempts: 503")


def test_a_failed_upload_still_surfaces_the_run_error(tmp_path: Path) -> None:
    store = RefusingStore(f"file://{tmp_path}/store")
    plan = spec_plan(tmp_path, "offline")
    with pytest.raises(RehearsalError) as caught:
        run_rehearsal(plan, trainer=FakeTrainer(fail_at=0), store=store, echo=None)
    error = caught.value
    message = str(error)
    assert message.startswith("rehearsal offline: training failed: FloatingPointError")
    assert "the failure log could not be uploaded to file://" in message
    assert "/local/rehearsals/offline/failed/: uploading to" in message and "503" in message
    assert error.log_uri is None and error.local_log is not None
    kept = Path(error.local_log)
    try:
        assert f"it is kept at {kept}" in message
        assert "FAILED: training raised FloatingPointError" in kept.read_text()
        assert json.loads((kept.parent / "failure.json").read_text())["reason"] == (
            "TrainingFailed"
        )
    finally:
        shutil.rmtree(kept.parent, ignore_errors=True)
    # an upload of good evidence that fails is a failed run too
    with pytest.raises(RehearsalError, match="uploading the evidence failed: uploading to") as up:
        run_rehearsal(plan, trainer=FakeTrainer(), store=store, echo=None)
    assert up.value.reason == "UploadFailed"
    assert up.value.local_log is not None
    shutil.rmtree(Path(up.value.local_log).parent, ignore_errors=True)


def test_cli_timeout_flag_error_and_show(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tunix_rt.cli.rehearsal import app

    monkeypatch.chdir(tmp_path)
    slow = FakeTrainer(step_seconds=0.4)
    use_trainer(monkeypatch, slow)
    manifest = write_rehearsal(
        tmp_path / "r.yaml",
        "cli-slow",
        {"trainer": tiny_trainer(), "timeoutSeconds": 3600},
        api_version=False,
    )
    runner = CliRunner()
    ran = runner.invoke(app, ["run", str(manifest), "--timeout-seconds", "1"])
    assert ran.exit_code == 1, ran.output
    assert re.search(
        r"error: rehearsal cli-slow: --timeout-seconds \(1\) reached at step \d+ of 20 after "
        r"\d+ s; raise --timeout-seconds or lower the trainer's maxSteps \(log: file://\S+/"
        rf"runs/local/rehearsals/cli-slow/failed/{STAMP}/kaggle_output_log\.txt\)",
        ran.output,
    ), ran.output
    shown = runner.invoke(app, ["show", "cli-slow"])
    assert shown.exit_code == 1
    assert "rehearsal cli-slow: Failed (TrainingTimeout): --timeout-seconds (1) reached" in (
        shown.output
    )
    assert "kaggle_output_log.txt" in shown.output
    as_json = json.loads(runner.invoke(app, ["show", "cli-slow", "--json"]).output)
    assert as_json["phase"] == "Failed" and as_json["logUri"].endswith("kaggle_output_log.txt")


def test_module_entrypoint_exits_1_and_says_where_the_log_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = FakeTrainer(fail_at=0)
    use_trainer(monkeypatch, broken)
    b64 = base64.b64encode(json.dumps({"trainer": tiny_trainer()}).encode()).decode()
    args = ["--spec-b64", b64, "--storage", f"file://{tmp_path}/store", "--namespace", "ml"]
    assert entry.main([*args, "--name", "op", "--timeout-seconds", "-5"]) == 2
    assert "--timeout-seconds must be positive" in capsys.readouterr().err
    assert entry.main([*args, "--name", "op"]) == 1
    err = capsys.readouterr().err
    assert re.search(
        rf"error: rehearsal op: training failed: FloatingPointError: .* \(log: file://\S+/ml/"
        rf"rehearsals/op/failed/{STAMP}/kaggle_output_log\.txt\)",
        err,
    ), err
    assert failure_from_store(f"file://{tmp_path}/store", "ml", "op") is not None


def test_sigterm_ends_the_run_as_an_interrupted_failure_with_its_log(tmp_path: Path) -> None:
    """A stopped RayJob (SIGTERM) or Ctrl-C still leaves the log and failure.json."""
    plan = spec_plan(tmp_path, "stopped")
    inner = FakeTrainer()

    def stopped_part_way(config: Any, **kwargs: Any) -> Any:
        report = kwargs["report"]
        report({"step": 5, "loss": 1.0})
        os.kill(os.getpid(), signal.SIGTERM)  # what the job supervisor sends on stop
        time.sleep(5)  # the handler raises here, in the main thread
        return inner(config, **kwargs)

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(RehearsalError) as caught, sigterm_interrupts():
        run_rehearsal(plan, trainer=stopped_part_way, echo=None)
    assert signal.getsignal(signal.SIGTERM) is before  # restored
    error = caught.value
    assert error.reason == "Interrupted" and exit_code(error) == 130
    assert re.search(r"interrupted at step 5 of 20 \(Ctrl-C, or SIGTERM", str(error)), str(error)
    assert error.log_uri is not None
    failure = failure_from_store(plan.storage, "local", "stopped")
    assert failure is not None and failure.reason == "Interrupted" and failure.step == 5
    assert failure_schema_errors(failure.document()) == []
    store = Store(plan.storage)
    (log_key,) = [k for k in failed_files(store, "stopped").values() if k.endswith(".txt")]
    assert store.uri_for(log_key) == error.log_uri
    assert "FAILED: interrupted at step 5" in store.read_text(log_key)
    assert result_from_store(plan.storage, "local", "stopped") is None  # no evidence claimed
