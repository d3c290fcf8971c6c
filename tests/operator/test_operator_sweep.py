"""The Sweep handlers, run by kopf for real against the kmock Kubernetes emulator."""

from __future__ import annotations

import base64
import json
import shlex
from typing import Any

from support import operator as op
from support.rayjob_schema import validate_rayjob
from tunix_rt.api.sweep import SweepSpec
from tunix_rt.api.trial import TrialState
from tunix_rt.contract.layout import sweep_evidence_prefix, trial_key
from tunix_rt.storage import Store


async def event_reasons(api: op.Api, name: str) -> list[str]:
    return [e["reason"] for e in await api.events(op.NS, name)]


async def test_sweep_runs_to_success(
    api: op.Api, apiserver: op.ApiServer, store: Store, start_operator: op.StartOperator
) -> None:
    operator = await start_operator()
    await api.create(op.SWEEPS, op.sweep_body("lr", cluster={"pools": [
        {"name": "cpu", "replicas": 2},
        {"name": "v6e", "accelerator": "tpu", "tpuAccelerator": "tpu-v6e-slice",
         "tpuTopology": "4x4"},
    ]}))  # fmt: skip

    # A RayJob with the right shape appears, owned by the Sweep.
    rayjob = await op.wait_for(lambda: api.get(op.RAYJOBS, op.NS, "sweep-lr"), what="the RayJob")
    validate_rayjob(rayjob)
    sweep = await api.get(op.SWEEPS, op.NS, "lr")
    assert sweep is not None
    assert rayjob["metadata"]["ownerReferences"][0]["uid"] == sweep["metadata"]["uid"]
    assert rayjob["metadata"]["labels"]["tunixrt.io/sweep"] == "lr"
    argv = shlex.split(rayjob["spec"]["entrypoint"])
    assert argv[:3] == ["python", "-m", "tunix_rt.tune"]
    args = dict(zip(argv[3::2], argv[4::2], strict=True))
    assert args["--storage"] == store.uri  # the operator's default storage
    spec = SweepSpec.model_validate(json.loads(base64.b64decode(args["--spec-b64"])))
    assert spec.max_trials == 4 and spec.storage == store.uri
    groups = {g["groupName"]: g for g in rayjob["spec"]["rayClusterSpec"]["workerGroupSpecs"]}
    assert groups["v6e"]["numOfHosts"] == 4
    assert groups["cpu"]["template"]["spec"]["containers"][0]["image"] == (
        "registry.example/trainer:t-cpu"
    )

    status = await op.wait_for(lambda: op.phase_is(api, op.SWEEPS, "lr", "Pending"), what="Pending")
    assert status["rayJobName"] == "sweep-lr"
    assert status["trialsTotal"] == 4 and status["trialsProgress"] == "0/4"
    assert status["observedGeneration"] == 1
    assert status["resultsUri"] == f"{store.uri}/{op.NS}/lr"
    assert op.condition(await api.get(op.SWEEPS, op.NS, "lr"), "Progressing")["status"] == "True"

    # KubeRay starts the job; the driver writes a running trial.
    await api.job_running(op.NS, "sweep-lr")
    op.write_trial(store, op.NS, "lr", "t_00000", TrialState.RUNNING, learningRate=0.001)
    status = await op.wait_for(lambda: op.phase_is(api, op.SWEEPS, "lr", "Running"), what="Running")
    assert status["trialsRunning"] == 1

    # Live progress: finished trials show up while the sweep runs.
    op.write_trial(store, op.NS, "lr", "t_00000", TrialState.SUCCEEDED, 0.5, learningRate=0.001)
    op.write_trial(store, op.NS, "lr", "t_00001", TrialState.SUCCEEDED, 0.75, learningRate=0.003)

    async def two_done() -> dict[str, Any] | None:
        s = await op.status_of(api, op.SWEEPS, "lr")
        return s if s.get("trialsCompleted") == 2 else None

    status = await op.wait_for(two_done, what="two finished trials")
    assert status["phase"] == "Running"
    assert status["trialsProgress"] == "2/4"
    assert status["bestTrial"] == {
        "id": "t_00001",
        "params": {"learningRate": 0.003},
        "primaryScore": 0.75,
    }
    assert status["primaryScore"] == 0.75
    assert {t["id"]: t["primaryScore"] for t in status["trials"]} == {
        "t_00000": 0.5, "t_00001": 0.75}  # fmt: skip

    # The rest finish, the driver writes the summary, the job succeeds.
    t = [
        op.write_trial(
            store, op.NS, "lr", "t_00000", TrialState.SUCCEEDED, 0.5, learningRate=0.001
        ),
        op.write_trial(
            store, op.NS, "lr", "t_00001", TrialState.SUCCEEDED, 0.75, learningRate=0.003
        ),
        op.write_trial(store, op.NS, "lr", "t_00002", TrialState.FAILED, None, learningRate=0.009),
        op.write_trial(
            store, op.NS, "lr", "t_00003", TrialState.STOPPED, 0.25, learningRate=0.0002
        ),
    ]
    # The driver uploads the evidence bundle before the summary (see tune/driver.py).
    zip_key = f"{sweep_evidence_prefix(op.NS, 'lr')}/submission/tunix_rt_lr_20261102_0123456.zip"
    store.write_bytes(zip_key, b"PK-not-read-by-the-operator")
    status = await op.sweep_succeeds(api, store, "lr", t, best="t_00001")
    assert status["bundleUri"] == store.uri_for(zip_key)
    assert status["evidenceUri"] == f"{store.uri}/{op.NS}/lr/evidence"
    assert status["trialsCompleted"] == 3 and status["trialsFailed"] == 1
    assert status["trialsProgress"] == "4/4"
    assert [(x["id"], x["state"], x.get("primaryScore")) for x in status["trials"]] == [
        ("t_00000", "Succeeded", 0.5),
        ("t_00001", "Succeeded", 0.75),
        ("t_00002", "Failed", None),
        ("t_00003", "Stopped", 0.25),
    ]
    assert status["bestTrial"]["id"] == "t_00001" and status["primaryScore"] == 0.75
    assert status["completionTime"] and status["startTime"]
    sweep = await api.get(op.SWEEPS, op.NS, "lr")
    assert sweep is not None
    op.assert_status_fits_crd(sweep)
    columns = op.printer_columns(sweep)  # kubectl get sweeps
    assert columns["Phase"] == "Succeeded" and columns["Trials"] == "4/4"
    assert columns["Best score"] == 0.75 and columns["Best trial"] == "t_00001"
    assert op.condition(sweep, "Ready")["status"] == "True"
    assert op.condition(sweep, "Progressing")["status"] == "False"
    assert op.condition(sweep, "Failed")["status"] == "False"

    # Events on each transition and per finished trial.
    reasons = await op.wait_for(
        lambda: _reasons_with(api, "lr", "Succeeded"), what="the Succeeded event"
    )
    for reason in ("RayJobCreated", "Pending", "Running", "TrialFinished", "TrialFailed"):
        assert reason in reasons
    assert reasons.count("TrialFinished") == 3

    # Metrics follow.
    assert operator.runtime is not None
    text = operator.runtime.metrics.render().decode()
    assert 'tunixrt_sweeps{phase="Succeeded"} 1.0' in text
    assert 'tunixrt_sweeps{phase="Running"} 0.0' in text
    assert 'tunixrt_trials_completed_total{namespace="ml"} 4.0' in text
    assert 'tunixrt_rayjobs_created_total{kind="sweep"} 1.0' in text
    assert apiserver.count("create", op.RAYJOBS) == 1


async def _reasons_with(api: op.Api, name: str, reason: str) -> list[str] | None:
    reasons = await event_reasons(api, name)
    return reasons if reason in reasons else None


async def test_rayjob_is_created_before_kopfs_finalizer_cycle(
    api: op.Api, apiserver: op.ApiServer, start_operator: op.StartOperator
) -> None:
    """The RayJob is created on the Sweep's first watch event (the eager start), before
    kopf patches in its finalizer; the create handler then takes it without another
    request, and says so once, as before."""
    await start_operator()
    await api.create(op.SWEEPS, op.sweep_body("eager"))
    status = await op.wait_for(
        lambda: op.phase_is(api, op.SWEEPS, "eager", "Pending"), what="Pending"
    )
    assert status["rayJobName"] == "sweep-eager"

    requests = [(action.lower(), res, name) for action, res, name in apiserver.writes]
    rayjob_create = requests.index(("create", op.RAYJOBS, None))
    first_patch = requests.index(("update", op.SWEEPS, "eager"))
    assert rayjob_create < first_patch, requests
    assert apiserver.count("create", op.RAYJOBS) == 1
    assert apiserver.count("fetch", op.RAYJOBS) == 0  # created first, not looked up first
    reasons = await op.wait_for(lambda: _reasons_with(api, "eager", "Pending"), what="Events")
    assert reasons.count("RayJobCreated") == 1 and reasons.count("RayJobAdopted") == 0


async def test_restart_adopts_the_rayjob(
    api: op.Api, apiserver: op.ApiServer, store: Store, start_operator: op.StartOperator
) -> None:
    first = await start_operator()
    await op.sweep_running(api, op.sweep_body("restart"))
    op.write_trial(store, op.NS, "restart", "t_00000", TrialState.SUCCEEDED, 0.4)
    await op.wait_for(lambda: op.phase_is(api, op.SWEEPS, "restart", "Running"), what="Running")
    await first.stop()

    await start_operator()
    op.write_trial(store, op.NS, "restart", "t_00001", TrialState.SUCCEEDED, 0.6)
    await api.job_succeeded(op.NS, "sweep-restart")
    trials = [
        op.write_trial(store, op.NS, "restart", "t_00000", TrialState.SUCCEEDED, 0.4),
        op.write_trial(store, op.NS, "restart", "t_00001", TrialState.SUCCEEDED, 0.6),
    ]
    op.write_summary(store, op.NS, "restart", trials, best="t_00001")
    status = await op.wait_for(
        lambda: op.phase_is(api, op.SWEEPS, "restart", "Succeeded"), what="Succeeded"
    )
    assert status["primaryScore"] == 0.6

    assert len(await api.list(op.RAYJOBS, op.NS)) == 1
    assert apiserver.count("create", op.RAYJOBS) == 1  # the second operator never tried

    async def both_trials_reported() -> list[str] | None:
        reasons = await event_reasons(api, "restart")  # posted after the status patch
        return reasons if reasons.count("TrialFinished") >= 2 else None

    reasons = await op.wait_for(both_trials_reported, what="the TrialFinished events")
    assert reasons.count("RayJobCreated") == 1
    # Resuming the RayJob named in the status is no news: logged, not an Event.
    assert reasons.count("RayJobAdopted") == 0
    # Trial events were not repeated by the second operator.
    assert reasons.count("TrialFinished") == 2


async def test_delete_removes_the_rayjob_and_keeps_results(
    api: op.Api, store: Store, start_operator: op.StartOperator
) -> None:
    await start_operator()
    await op.sweep_running(api, op.sweep_body("gone"))
    op.write_trial(store, op.NS, "gone", "t_00000", TrialState.SUCCEEDED, 0.3)
    await op.wait_for(lambda: op.phase_is(api, op.SWEEPS, "gone", "Running"), what="Running")

    await api.delete(op.SWEEPS, op.NS, "gone")

    both_gone = op.all_gone(api, (op.RAYJOBS, "sweep-gone"), (op.SWEEPS, "gone"))
    await op.wait_for(both_gone, what="the Sweep and its RayJob to go")
    assert store.exists(trial_key(op.NS, "gone", "t_00000"))


async def test_invalid_sweep_fails_and_others_are_served(
    api: op.Api, apiserver: op.ApiServer, start_operator: op.StartOperator
) -> None:
    await start_operator()
    bad = op.sweep_body("bad", searchSpace={
        "learningRate": {"type": "loguniform", "low": 0.01, "high": 0.0001}})  # fmt: skip
    await api.create(op.SWEEPS, bad)
    await api.create(op.SWEEPS, op.sweep_body("good"))

    status = await op.wait_for(lambda: op.phase_is(api, op.SWEEPS, "bad", "Failed"), what="Failed")
    assert status["message"].startswith("spec.searchSpace.learningRate")
    assert "low (0.01) must be less than high (0.0001)" in status["message"]
    bad_obj = await api.get(op.SWEEPS, op.NS, "bad")
    assert bad_obj is not None
    op.assert_status_fits_crd(bad_obj)
    failed = op.condition(bad_obj, "Failed")
    assert failed["status"] == "True" and failed["reason"] == "InvalidSpec"
    assert "spec.searchSpace.learningRate" in failed["message"]
    events = await op.wait_for(lambda: _warnings(api, "bad"), what="a Warning event")
    assert any(e["reason"] == "InvalidSpec" and "spec.searchSpace" in e["message"] for e in events)

    await op.wait_for(lambda: api.get(op.RAYJOBS, op.NS, "sweep-good"), what="the other RayJob")
    await op.wait_for(
        lambda: op.phase_is(api, op.SWEEPS, "good", "Pending"), what="the other Sweep Pending"
    )
    assert await api.get(op.RAYJOBS, op.NS, "sweep-bad") is None

    # Documented: fixing an invalid spec starts the Sweep.
    await api.patch(op.SWEEPS, op.NS, "bad", {"spec": {"searchSpace": {
        "learningRate": {"type": "loguniform", "low": 0.0001, "high": 0.01}}}})  # fmt: skip
    await op.wait_for(
        lambda: api.get(op.RAYJOBS, op.NS, "sweep-bad"), what="the fixed Sweep's RayJob"
    )
    status = await op.wait_for(
        lambda: op.phase_is(api, op.SWEEPS, "bad", "Pending"), what="Pending after fix"
    )
    assert status["observedGeneration"] == 2
    assert op.condition(await api.get(op.SWEEPS, op.NS, "bad"), "Failed")["status"] == "False"


async def _warnings(api: op.Api, name: str) -> list[dict[str, Any]]:
    return [e for e in await api.events(op.NS, name) if e.get("type") == "Warning"]


async def test_unbuildable_pool_fails_with_the_field(
    api: op.Api, start_operator: op.StartOperator
) -> None:
    await start_operator()
    await api.create(op.SWEEPS, op.sweep_body("tpu", cluster={"pools": [{
        "name": "v6e", "accelerator": "tpu", "tpuAccelerator": "tpu-v6e-slice",
        "tpuTopology": "3x3"}]}))  # fmt: skip
    status = await op.wait_for(lambda: op.phase_is(api, op.SWEEPS, "tpu", "Failed"), what="Failed")
    assert status["message"].startswith("spec.cluster.pools[0].tpuTopology: ")
    assert op.condition(await api.get(op.SWEEPS, op.NS, "tpu"), "Failed")["reason"] == "InvalidSpec"


async def test_spec_change_while_running_is_ignored(
    api: op.Api, start_operator: op.StartOperator
) -> None:
    await start_operator()
    rayjob = await op.sweep_running(api, op.sweep_body("edit"))
    await op.wait_for(lambda: op.phase_is(api, op.SWEEPS, "edit", "Running"), what="Running")

    await api.patch(op.SWEEPS, op.NS, "edit", {"spec": {"maxTrials": 8}})

    async def ignored() -> dict[str, Any] | None:
        cond = op.condition(await api.get(op.SWEEPS, op.NS, "edit"), "SpecChangeIgnored")
        return cond if cond.get("status") == "True" else None

    cond = await op.wait_for(ignored, what="SpecChangeIgnored")
    assert "create a new Sweep" in cond["message"]
    assert cond["observedGeneration"] == 2
    events = await op.wait_for(lambda: _warnings(api, "edit"), what="a Warning event")
    assert any(e["reason"] == "SpecChangeIgnored" for e in events)
    after = await api.get(op.RAYJOBS, op.NS, "sweep-edit")
    assert after is not None and after["spec"] == rayjob["spec"]  # untouched
    status = await op.status_of(api, op.SWEEPS, "edit")
    assert status["phase"] == "Running" and status["trialsTotal"] == 4


async def test_failed_rayjob_fails_the_sweep_and_keeps_trials(
    api: op.Api, store: Store, start_operator: op.StartOperator
) -> None:
    await start_operator()
    await api.create(op.SWEEPS, op.sweep_body("doomed", budget={"sweepTimeoutSeconds": 600}))
    rayjob = await op.wait_for(
        lambda: api.get(op.RAYJOBS, op.NS, "sweep-doomed"), what="the RayJob"
    )
    assert rayjob["spec"]["activeDeadlineSeconds"] == 600 + 900
    await api.job_running(op.NS, "sweep-doomed")
    op.write_trial(store, op.NS, "doomed", "t_00000", TrialState.SUCCEEDED, 0.42)
    await op.wait_for(lambda: op.phase_is(api, op.SWEEPS, "doomed", "Running"), what="Running")

    await api.job_status(
        op.NS,
        "sweep-doomed",
        jobDeploymentStatus="Failed",
        jobStatus="STOPPED",
        reason="DeadlineExceeded",
        message="The RayJob has passed the activeDeadlineSeconds.",
    )
    status = await op.wait_for(
        lambda: op.phase_is(api, op.SWEEPS, "doomed", "Failed"), what="Failed"
    )
    assert status["message"] == "The RayJob has passed the activeDeadlineSeconds."
    doomed = await api.get(op.SWEEPS, op.NS, "doomed")
    assert doomed is not None
    op.assert_status_fits_crd(doomed)
    failed = op.condition(doomed, "Failed")
    assert failed["status"] == "True" and failed["reason"] == "DeadlineExceeded"
    assert status["trials"] == [
        {
            "id": "t_00000",
            "params": {"learningRate": 0.001},
            "primaryScore": 0.42,
            "state": "Succeeded",
            "steps": 10,
        }
    ]
    assert status["bestTrial"]["id"] == "t_00000"
    events = await op.wait_for(lambda: _warnings(api, "doomed"), what="a Warning event")
    assert any(e["reason"] == "DeadlineExceeded" for e in events)
