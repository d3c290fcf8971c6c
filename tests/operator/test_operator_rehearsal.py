"""The Rehearsal handlers, run by kopf for real against the kmock Kubernetes emulator."""

from __future__ import annotations

import base64
import json
import shlex
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from support import operator as op
from support.rayjob_schema import validate_rayjob
from tunix_rt.api.rehearsal import RehearsalSpec
from tunix_rt.contract.layout import rehearsal_prefix
from tunix_rt.evidence.failure import RehearsalFailure, upload_failure
from tunix_rt.storage import Store


def entrypoint_args(rayjob: dict[str, Any]) -> tuple[list[str], dict[str, str]]:
    argv = shlex.split(rayjob["spec"]["entrypoint"])
    return argv, dict(zip(argv[3::2], argv[4::2], strict=True))


async def finished_sweep(
    api: op.Api,
    name: str,
    phase: str = "Succeeded",
    best: dict[str, Any] | None = None,
    message: str = "",
) -> None:
    """A Sweep that already finished (its status as the operator leaves it)."""
    body = op.sweep_body(name, searchSpace={
        "learningRate": {"type": "loguniform", "low": 1e-4, "high": 1e-2},
        "warmupSteps": {"type": "choice", "values": [10, 50]},
    }, budget={"smokeSteps": 200})  # fmt: skip
    status: dict[str, Any] = {"phase": phase, "message": message, "trialsProgress": "4/4"}
    if best is not None:
        status["bestTrial"] = best
    body["status"] = status
    await api.create(op.SWEEPS, body)


async def test_inline_rehearsal_runs_and_lists_evidence(
    api: op.Api, apiserver: op.ApiServer, store: Store, start_operator: op.StartOperator
) -> None:
    await start_operator()
    await api.create(op.REHEARSALS, op.rehearsal_body(
        "final", trainer={"learningRate": 0.002, "maxSteps": 100},
        overrides={"maxSteps": 1200, "model": {"layers": 3}}, timeoutSeconds=3600,
    ))  # fmt: skip

    rayjob = await op.wait_for(
        lambda: api.get(op.RAYJOBS, op.NS, "rehearsal-final"), what="the RayJob"
    )
    validate_rayjob(rayjob)
    argv, args = entrypoint_args(rayjob)
    assert argv[:3] == ["python", "-m", "tunix_rt.rehearsal"]
    assert args["--namespace"] == op.NS and args["--name"] == "final"
    assert "--source-sweep" not in args
    spec = RehearsalSpec.model_validate(json.loads(base64.b64decode(args["--spec-b64"])))
    assert spec.trainer is not None
    assert spec.trainer.max_steps == 1200 and spec.trainer.model.layers == 3  # overrides
    assert spec.trainer.learning_rate == 0.002
    assert spec.overrides is None and spec.from_sweep is None
    assert rayjob["spec"]["activeDeadlineSeconds"] == 3600 + 900

    status = await op.wait_for(
        lambda: op.phase_is(api, op.REHEARSALS, "final", "Pending"), what="Pending"
    )
    assert status["rayJobName"] == "rehearsal-final"
    assert status["evidenceUri"] == f"{store.uri}/{rehearsal_prefix(op.NS, 'final')}"

    await api.job_running(op.NS, "rehearsal-final")
    await op.wait_for(lambda: op.phase_is(api, op.REHEARSALS, "final", "Running"), what="Running")

    # An edit while it runs is not applied, and says so.
    await api.patch(op.REHEARSALS, op.NS, "final", {"spec": {"overrides": {"maxSteps": 5}}})

    async def ignored() -> dict[str, Any] | None:
        cond = op.condition(await api.get(op.REHEARSALS, op.NS, "final"), "SpecChangeIgnored")
        return cond if cond.get("status") == "True" else None

    assert (
        "create a new Rehearsal"
        in (await op.wait_for(ignored, what="SpecChangeIgnored"))["message"]
    )
    after = await api.get(op.RAYJOBS, op.NS, "rehearsal-final")
    assert after is not None and after["spec"] == rayjob["spec"]

    status, keys = await op.rehearsal_succeeds(api, store, "final", score=0.8125, namespace=op.NS)
    assert status["primaryScore"] == 0.8125
    assert sorted(status["evidenceFiles"]) == sorted(store.uri_for(k) for k in keys)
    assert status["bundleUri"] == store.uri_for(
        f"{rehearsal_prefix(op.NS, 'final')}/submission/tunix_rt_final.zip"
    )
    assert status["logUri"] == store.uri_for(
        f"{rehearsal_prefix(op.NS, 'final')}/kaggle_output_log.txt"
    )
    assert status["completionTime"]
    final = await api.get(op.REHEARSALS, op.NS, "final")
    assert final is not None
    op.assert_status_fits_crd(final)
    assert op.printer_columns(final)["Score"] == 0.8125  # kubectl get rehearsals
    assert op.condition(final, "Ready")["status"] == "True"
    await op.events_of(api, op.NS, "final", reasons={"RayJobCreated", "Running", "Succeeded"})

    # Deleting it removes the RayJob; the evidence stays.
    await api.delete(op.REHEARSALS, op.NS, "final")

    gone = op.all_gone(api, (op.RAYJOBS, "rehearsal-final"), (op.REHEARSALS, "final"))
    await op.wait_for(gone, what="the Rehearsal and its RayJob to go")
    assert all(store.exists(k) for k in keys)


async def test_from_sweep_waits_then_uses_the_best_trial(
    api: op.Api, start_operator: op.StartOperator
) -> None:
    await start_operator()
    await api.create(op.REHEARSALS, op.rehearsal_body(
        "promoted", fromSweep="lr", overrides={"maxSteps": 2000}))  # fmt: skip

    status = await op.wait_for(
        lambda: op.phase_is(api, op.REHEARSALS, "promoted", "Pending"), what="Pending"
    )
    progressing = op.condition(await api.get(op.REHEARSALS, op.NS, "promoted"), "Progressing")
    assert progressing["reason"] == "WaitingForSweep"
    assert "Sweep lr not found" in progressing["message"]
    assert "rayJobName" not in status

    best = {
        "id": "t_00002",
        "params": {"learningRate": 0.0042, "warmupSteps": 10},
        "primaryScore": 0.7,
    }
    await finished_sweep(api, "lr", best=best)

    rayjob = await op.wait_for(
        lambda: api.get(op.RAYJOBS, op.NS, "rehearsal-promoted"),
        what="the RayJob after the sweep succeeded",
    )
    validate_rayjob(rayjob)
    _, args = entrypoint_args(rayjob)
    assert args["--source-sweep"] == "lr" and args["--source-trial"] == "t_00002"
    spec = RehearsalSpec.model_validate(json.loads(base64.b64decode(args["--spec-b64"])))
    assert spec.trainer is not None and spec.from_sweep is None
    assert spec.trainer.learning_rate == 0.0042 and spec.trainer.warmup_steps == 10
    assert spec.trainer.max_steps == 2000  # the override beats the sweep's smoke cap (200)

    async def resolved() -> dict[str, Any] | None:
        s = await op.status_of(api, op.REHEARSALS, "promoted")
        return s if s.get("rayJobName") else None

    status = await op.wait_for(resolved, what="source recorded in status")
    promoted = await api.get(op.REHEARSALS, op.NS, "promoted")
    assert promoted is not None
    op.assert_status_fits_crd(promoted)
    assert op.printer_columns(promoted)["Source"] == "lr"
    assert status["sourceSweep"] == "lr" and status["sourceTrial"] == "t_00002"
    assert status["params"] == {"learningRate": 0.0042, "warmupSteps": 10}
    await op.events_of(api, op.NS, "promoted", reasons={"WaitingForSweep", "RayJobCreated"})


async def test_from_a_failed_sweep_fails_clearly(
    api: op.Api, start_operator: op.StartOperator
) -> None:
    await start_operator()
    await finished_sweep(api, "broken", phase="Failed", message="3 trials failed")
    await finished_sweep(api, "empty", phase="Succeeded")
    await api.create(op.REHEARSALS, op.rehearsal_body("r1", fromSweep="broken"))
    await api.create(op.REHEARSALS, op.rehearsal_body("r2", fromSweep="empty"))

    s1 = await op.wait_for(
        lambda: op.phase_is(api, op.REHEARSALS, "r1", "Failed"), what="r1 Failed"
    )
    assert "Sweep broken failed (3 trials failed)" in s1["message"]
    assert op.condition(await api.get(op.REHEARSALS, op.NS, "r1"), "Failed")["reason"] == (
        "SourceSweepFailed"
    )
    s2 = await op.wait_for(
        lambda: op.phase_is(api, op.REHEARSALS, "r2", "Failed"), what="r2 Failed"
    )
    assert "without a best trial" in s2["message"]
    assert await api.list(op.RAYJOBS, op.NS) == []


async def test_invalid_rehearsal_and_restart_adoption(
    api: op.Api, apiserver: op.ApiServer, store: Store, start_operator: op.StartOperator
) -> None:
    first = await start_operator()
    await api.create(op.REHEARSALS, op.rehearsal_body(
        "both", trainer={"learningRate": 0.001}, fromSweep="lr"))  # fmt: skip
    await api.create(op.REHEARSALS, op.rehearsal_body(
        "badover", trainer={"learningRate": 0.001}, overrides={"learningRate": 7}))  # fmt: skip
    await api.create(op.REHEARSALS, op.rehearsal_body("ok", trainer={"learningRate": 0.001}))

    s = await op.wait_for(lambda: op.phase_is(api, op.REHEARSALS, "both", "Failed"), what="Failed")
    assert s["message"].startswith("spec.fromSweep: set exactly one of trainer or fromSweep")
    failed = op.condition(await api.get(op.REHEARSALS, op.NS, "both"), "Failed")
    assert failed["reason"] == "InvalidSpec"
    s = await op.wait_for(
        lambda: op.phase_is(api, op.REHEARSALS, "badover", "Failed"), what="Failed"
    )
    assert s["message"].startswith("spec.overrides.learningRate")
    events = await op.events_of(api, op.NS, "both", reasons={"InvalidSpec"})
    assert any(e["reason"] == "InvalidSpec" and e["type"] == "Warning" for e in events)

    await op.wait_for(
        lambda: api.get(op.RAYJOBS, op.NS, "rehearsal-ok"), what="the valid one's RayJob"
    )
    await op.wait_for(lambda: op.phase_is(api, op.REHEARSALS, "ok", "Pending"), what="Pending")
    await first.stop()

    await start_operator()
    op.write_evidence(store, op.NS, "ok", score=0.5)
    await api.job_succeeded(op.NS, "rehearsal-ok")
    status = await op.wait_for(
        lambda: op.phase_is(api, op.REHEARSALS, "ok", "Succeeded"), what="Succeeded"
    )
    assert status["primaryScore"] == 0.5
    assert apiserver.count("create", op.RAYJOBS) == 1
    assert [r["metadata"]["name"] for r in await api.list(op.RAYJOBS, op.NS)] == ["rehearsal-ok"]
    # Resuming the RayJob named in the status is logged, not posted as an Event.
    reasons = [e["reason"] for e in await op.events_of(api, op.NS, "ok", reasons={"Succeeded"})]
    assert "RayJobAdopted" not in reasons


def record_failure(
    store: Store, tmp_path: Path, name: str, message: str, ended: datetime, step: int = 812
) -> RehearsalFailure:
    """What ``python -m tunix_rt.rehearsal`` leaves when its run fails."""
    log = tmp_path / f"{name}.log"
    log.write_text(f"2026-01-01T00:00:00.000Z FAILED: {message}\n")
    failure = RehearsalFailure(
        run_name=name, namespace=op.NS, reason="TrainingTimeout", message=message,
        error_type="TrainingTimeout", step=step, max_steps=1000, timeout_seconds=600,
        start_time=ended - timedelta(seconds=601), end_time=ended, wall_seconds=601.0,
        commit_sha="0123abc", config_sha256="ab" * 32,
    )  # fmt: skip
    return upload_failure(store, failure, log)


async def test_failed_run_reports_its_own_message_and_log(
    api: op.Api, store: Store, start_operator: op.StartOperator, tmp_path: Path
) -> None:
    await start_operator()
    timeout = (
        "spec.timeoutSeconds (600) reached at step 812 of 1000 after 601 s; raise "
        "spec.timeoutSeconds or lower the trainer's maxSteps"
    )
    # an earlier Rehearsal of the same name failed too: its record must not be reported
    record_failure(store, tmp_path, "stale", "an old failure", datetime(2020, 1, 1, tzinfo=UTC))
    # ... and an even earlier one succeeded: its evidence stays, but is not this run's score
    old = rehearsal_prefix(op.NS, "stale")
    store.write_json(f"{old}/eval_summary.json", {"primary_score": 0.9})
    store.write_bytes(f"{old}/submission/tunix_rt_stale_20200101_0123456.zip", b"PK")
    for name in ("slow", "stale"):
        await api.create(op.REHEARSALS, op.rehearsal_body(
            name, trainer={"maxSteps": 1000}, timeoutSeconds=600))  # fmt: skip
        await op.wait_for(
            lambda n=name: op.phase_is(api, op.REHEARSALS, n, "Pending"), what=f"{name} Pending"
        )

    recorded = record_failure(store, tmp_path, "slow", timeout, datetime.now(UTC))
    crash = "Job entrypoint command failed with exit code 1"
    ray_message = f"{crash}, last available logs (truncated to 20,000 chars):\n…"
    for name in ("slow", "stale"):
        await api.job_status(op.NS, f"rehearsal-{name}", jobDeploymentStatus="Failed",
                             jobStatus="FAILED", reason="AppFailed",
                             message=ray_message)  # fmt: skip

    status = await op.wait_for(
        lambda: op.phase_is(api, op.REHEARSALS, "slow", "Failed"), what="slow Failed"
    )
    assert recorded.log_uri is not None and recorded.log_uri.endswith("kaggle_output_log.txt")
    assert "/rehearsals/slow/failed/" in recorded.log_uri
    assert status["message"] == f"{timeout} (log: {recorded.log_uri})"
    assert status["logUri"] == recorded.log_uri
    assert status["evidenceFiles"] == []  # the failure log is not evidence
    assert status["completionTime"]
    failed = await api.get(op.REHEARSALS, op.NS, "slow")
    assert failed is not None
    op.assert_status_fits_crd(failed)
    assert op.condition(failed, "Failed")["reason"] == "TrainingTimeout"
    assert op.condition(failed, "Failed")["message"] == status["message"]
    await op.events_of(api, op.NS, "slow", warning_with=timeout)

    stale = await op.wait_for(
        lambda: op.phase_is(api, op.REHEARSALS, "stale", "Failed"), what="stale Failed"
    )
    assert stale["message"] == crash  # the RayJob's own first line: no record of this attempt
    assert "logUri" not in stale
    assert "primaryScore" not in stale and "bundleUri" not in stale
    assert store.uri_for(f"{old}/eval_summary.json") in stale["evidenceFiles"]  # kept, listed
    assert (
        op.condition(await api.get(op.REHEARSALS, op.NS, "stale"), "Failed")["reason"]
        == "AppFailed"
    )


async def test_an_earlier_runs_evidence_is_not_this_runs_result(
    api: op.Api, store: Store, start_operator: op.StartOperator
) -> None:
    """A Rehearsal recreated under the same name: the old bundle at its prefix is kept and
    listed, but a run that leaves no new evidence does not succeed with the old score."""
    await start_operator()
    old_keys = op.write_evidence(
        store, op.NS, "again", score=0.9, ended=datetime(2020, 1, 1, tzinfo=UTC)
    )
    await api.create(op.REHEARSALS, op.rehearsal_body("again", trainer={"learningRate": 0.001}))
    await op.wait_for(lambda: op.phase_is(api, op.REHEARSALS, "again", "Pending"), what="Pending")
    await api.job_succeeded(op.NS, "rehearsal-again")  # fmt: skip
    status = await op.wait_for(
        lambda: op.phase_is(api, op.REHEARSALS, "again", "Failed"), what="Failed"
    )
    assert "left no eval_summary.json" in status["message"]
    assert "primaryScore" not in status and "bundleUri" not in status
    assert sorted(status["evidenceFiles"]) == sorted(store.uri_for(k) for k in old_keys)
    # the old evidence is untouched
    assert (
        store.read_json(f"{rehearsal_prefix(op.NS, 'again')}/eval_summary.json")["primary_score"]
        == 0.9
    )
