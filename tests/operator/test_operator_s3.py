"""The operator (kopf against kmock) with an s3:// default store served by moto on loopback.

The operator is configured as the Helm chart configures it: ``TUNIX_RT_DEFAULT_STORAGE``
names the ``s3://bucket/prefix`` store and ``TUNIX_RT_S3_ENDPOINT_URL`` plus the AWS
credential variables reach moto (see the ``s3_*`` fixtures in conftest.py). The tests
write what the Tune driver and the rehearsal run leave in the store with a ``Store`` on
the same URI, and read the operator's answer from the Kubernetes API.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import pytest

from support import operator as op
from support.net import CuttingProxy
from support.s3 import SECRET
from tunix_rt.api.trial import TrialState
from tunix_rt.contract.layout import rehearsal_prefix, sweep_evidence_prefix
from tunix_rt.controller import OperatorConfig
from tunix_rt.storage import Store


async def assert_no_credentials(api: op.Api, *objects: tuple[str, str]) -> None:
    """No credential value in the objects (status included) nor in any Event."""
    texts = [json.dumps(await api.get(resource, op.NS, name)) for resource, name in objects]
    texts.append(json.dumps(await api.events(op.NS)))
    for text in texts:
        assert SECRET not in text
        assert op.S3_ACCESS_KEY not in text


async def test_sweep_on_s3_runs_to_success(
    api: op.Api, s3_store: Store, s3_config: OperatorConfig, start_operator: op.StartOperator
) -> None:
    assert s3_store.uri.startswith("s3://")
    await start_operator(s3_config)
    await api.create(op.SWEEPS, op.sweep_body("lr"))

    rayjob = await op.wait_for(lambda: api.get(op.RAYJOBS, op.NS, "sweep-lr"), what="the RayJob")
    assert f"--storage {s3_store.uri}" in rayjob["spec"]["entrypoint"]
    status = await op.wait_for(lambda: op.phase_is(api, op.SWEEPS, "lr", "Pending"), what="Pending")
    assert status["resultsUri"] == f"{s3_store.uri}/{op.NS}/lr"

    # The driver writes trial records to S3 while the job runs.
    await api.job_running(op.NS, "sweep-lr")
    op.write_trial(s3_store, op.NS, "lr", "t_00000", TrialState.SUCCEEDED, 0.5, learningRate=0.001)
    op.write_trial(s3_store, op.NS, "lr", "t_00001", TrialState.RUNNING, learningRate=0.003)

    async def live() -> dict[str, Any] | None:
        s = await op.status_of(api, op.SWEEPS, "lr")
        ok = s.get("phase") == "Running" and s.get("trialsCompleted") == 1
        return s if ok and s.get("trialsRunning") == 1 else None

    status = await op.wait_for(live, what="live progress read from S3")
    assert status["bestTrial"]["id"] == "t_00000" and status["primaryScore"] == 0.5

    # The rest finish; the bundle goes up before summary.json; the job succeeds.
    trials = [
        op.write_trial(
            s3_store, op.NS, "lr", "t_00000", TrialState.SUCCEEDED, 0.5, learningRate=0.001
        ),
        op.write_trial(
            s3_store, op.NS, "lr", "t_00001", TrialState.SUCCEEDED, 0.75, learningRate=0.003
        ),
        op.write_trial(
            s3_store, op.NS, "lr", "t_00002", TrialState.FAILED, None, learningRate=0.009
        ),
        op.write_trial(
            s3_store, op.NS, "lr", "t_00003", TrialState.STOPPED, 0.25, learningRate=2e-4
        ),
    ]
    zip_key = f"{sweep_evidence_prefix(op.NS, 'lr')}/submission/tunix_rt_lr_20261102_0123456.zip"
    s3_store.write_bytes(zip_key, b"PK-not-read-by-the-operator")
    status = await op.sweep_succeeds(api, s3_store, "lr", trials, best="t_00001")
    assert status["resultsUri"] == f"{s3_store.uri}/{op.NS}/lr"
    assert status["bundleUri"] == s3_store.uri_for(zip_key)
    assert status["bundleUri"].startswith(f"{s3_store.uri}/{op.NS}/lr/evidence/submission/")
    assert status["evidenceUri"] == f"{s3_store.uri}/{op.NS}/lr/evidence"
    assert status["trialsProgress"] == "4/4"
    assert status["trialsCompleted"] == 3 and status["trialsFailed"] == 1
    assert [(t["id"], t["state"]) for t in status["trials"]] == [
        ("t_00000", "Succeeded"),
        ("t_00001", "Succeeded"),
        ("t_00002", "Failed"),
        ("t_00003", "Stopped"),
    ]
    assert status["bestTrial"]["id"] == "t_00001" and status["primaryScore"] == 0.75
    sweep = await api.get(op.SWEEPS, op.NS, "lr")
    assert sweep is not None
    op.assert_status_fits_crd(sweep)
    assert op.condition(sweep, "Ready")["status"] == "True"
    # Events are posted asynchronously: wait for them rather than race the status.
    await op.events_of(
        api, op.NS, "lr", reasons={"RayJobCreated", "Running", "TrialFinished", "TrialFailed"}
    )
    await assert_no_credentials(api, (op.SWEEPS, "lr"), (op.RAYJOBS, "sweep-lr"))


async def test_rehearsal_on_s3_runs_to_success(
    api: op.Api, s3_store: Store, s3_config: OperatorConfig, start_operator: op.StartOperator
) -> None:
    await start_operator(s3_config)
    await api.create(op.REHEARSALS, op.rehearsal_body("final", trainer={"learningRate": 0.002}))
    await op.wait_for(lambda: api.get(op.RAYJOBS, op.NS, "rehearsal-final"), what="the RayJob")
    prefix = rehearsal_prefix(op.NS, "final")
    status = await op.wait_for(
        lambda: op.phase_is(api, op.REHEARSALS, "final", "Pending"), what="Pending"
    )
    assert status["evidenceUri"] == f"{s3_store.uri}/{prefix}"

    await api.job_running(op.NS, "rehearsal-final")
    await op.wait_for(lambda: op.phase_is(api, op.REHEARSALS, "final", "Running"), what="Running")
    status, keys = await op.rehearsal_succeeds(
        api, s3_store, "final", score=0.8125, namespace=op.NS
    )

    assert status["primaryScore"] == 0.8125
    assert status["evidenceUri"] == f"{s3_store.uri}/{prefix}"
    assert sorted(status["evidenceFiles"]) == sorted(s3_store.uri_for(k) for k in keys)
    assert all(uri.startswith(f"{s3_store.uri}/{prefix}/") for uri in status["evidenceFiles"])
    assert status["bundleUri"] == s3_store.uri_for(f"{prefix}/submission/tunix_rt_final.zip")
    assert status["logUri"] == s3_store.uri_for(f"{prefix}/kaggle_output_log.txt")
    assert s3_store.uri in status["message"]
    rehearsal = await api.get(op.REHEARSALS, op.NS, "final")
    assert rehearsal is not None
    op.assert_status_fits_crd(rehearsal)
    assert op.condition(rehearsal, "Ready")["status"] == "True"
    await assert_no_credentials(api, (op.REHEARSALS, "final"), (op.RAYJOBS, "rehearsal-final"))


async def test_store_unreachable_while_running_is_retried_until_back(
    api: op.Api,
    s3_store: Store,
    s3_proxy: CuttingProxy,
    proxied_s3_operator: op.OperatorRun,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """S3 goes away while the sweep runs, and the Ray job finishes in the meantime (its
    summary is in the bucket, out of the operator's reach). The operator keeps running,
    warns and retries; the sweep stays Running past the summary grace period (no
    NoSummary failure), and succeeds once the endpoint is back."""
    operator = proxied_s3_operator
    await op.sweep_running(api, op.sweep_body("flaky", maxTrials=2))
    op.write_trial(s3_store, op.NS, "flaky", "t_00000", TrialState.SUCCEEDED, 0.5)

    async def one_done() -> dict[str, Any] | None:
        s = await op.status_of(api, op.SWEEPS, "flaky")
        return s if s.get("phase") == "Running" and s.get("trialsCompleted") == 1 else None

    await op.wait_for(one_done, what="Running with one trial read from S3")

    # The endpoint goes away: open connections are reset, new ones refused.
    caplog.set_level(logging.WARNING)
    s3_proxy.cut_after, s3_proxy.cuts = 0, 10**6
    s3_proxy.stop()
    down_since = time.monotonic()

    # Meanwhile the job finishes and the driver (which still reaches S3) writes it all.
    trials = [
        op.write_trial(s3_store, op.NS, "flaky", "t_00000", TrialState.SUCCEEDED, 0.5),
        op.write_trial(s3_store, op.NS, "flaky", "t_00001", TrialState.SUCCEEDED, 0.9),
    ]
    zip_key = f"{sweep_evidence_prefix(op.NS, 'flaky')}/submission/tunix_rt_flaky_20261102_1.zip"
    s3_store.write_bytes(zip_key, b"PK")
    op.write_summary(s3_store, op.NS, "flaky", trials, best="t_00001")
    await api.job_succeeded(op.NS, "sweep-flaky")

    def operator_warnings() -> list[str]:
        return [
            r.getMessage()
            for r in caplog.records
            if r.levelno == logging.WARNING and "cannot read results from" in r.getMessage()
        ]

    async def several_failed_polls() -> list[str] | None:
        found = operator_warnings()
        return found if len(found) >= 3 else None

    warnings = await op.wait_for(several_failed_polls, what="the operator's store warnings")
    grace = operator.config.summary_grace_seconds
    await asyncio.sleep(max(0.0, grace + 1.0 - (time.monotonic() - down_since)))

    # Down for longer than the summary grace period: still Running, not Failed.
    status = await op.status_of(api, op.SWEEPS, "flaky")
    assert status["phase"] == "Running", status
    assert op.condition(await api.get(op.SWEEPS, op.NS, "flaky"), "Failed").get("status") != "True"
    assert "bundleUri" not in status
    assert operator.thread is not None and operator.thread.is_alive()
    assert operator.error is None
    assert all(s3_store.uri in w and "(retrying)" in w for w in warnings)
    assert any("failed after 2 attempts" in w for w in warnings)
    retries = [r.getMessage() for r in caplog.records if r.name == "tunix_rt.storage"]
    assert any("transient error (attempt 1/2)" in m for m in retries)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert SECRET not in logged and op.S3_ACCESS_KEY not in logged
    assert s3_proxy.connections > 0  # the operator did go through the proxy

    # The endpoint comes back: the same sweep proceeds to Succeeded from what S3 holds.
    s3_proxy.cut_after = None
    s3_proxy.start()
    status = await op.wait_for(
        lambda: op.phase_is(api, op.SWEEPS, "flaky", "Succeeded"), what="Succeeded"
    )
    assert status["bundleUri"] == s3_store.uri_for(zip_key)
    assert status["bestTrial"]["id"] == "t_00001" and status["primaryScore"] == 0.9
    assert status["trialsProgress"] == "2/2"
    events = await op.events_of(api, op.NS, "flaky", reasons={"Succeeded"})
    assert "Failed" not in {e["reason"] for e in events}
    await assert_no_credentials(api, (op.SWEEPS, "flaky"))
