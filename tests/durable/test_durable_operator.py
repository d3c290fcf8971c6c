"""A Sweep survives the loss of its driver: the operator (kopf against kmock) resumes it
with a new RayJob, whose driver (in local mode on moto S3, started by the test as KubeRay
would) restores Ray Tune's state from the store.

The first driver is killed mid-sweep (SIGKILL of its whole process group, Ray included)
and its local state deleted, like a lost head pod; the RayJob fails as KubeRay reports
it. The operator sees a driver session that never ended and starts
``sweep-<name>-a2``; the sweep then finishes with every trial run once (counted from
the store), the cut trial continuing from its checkpoint, and ``attempts`` 2.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from support.durable import (
    NS,
    driver_from_rayjob,
    make_driver,
    records,
    sessions_of,
    snapshot_knows,
    summary_of,
    tiny_spec,
)
from support.operator import (
    RAYJOBS,
    SWEEPS,
    Api,
    OperatorRun,
    assert_status_fits_crd,
    events_of,
    phase_is,
    printer_columns,
    sweep_body,
    wait_for,
)
from tunix_rt.api.trial import TrialState
from tunix_rt.contract.layout import SweepLayout
from tunix_rt.storage import Store

pytestmark = pytest.mark.slow

NAME = "durable"


async def test_killed_driver_is_resumed_by_a_new_rayjob(
    api: Api,
    s3_operator: OperatorRun,
    s3_sweep_store: Store,
    driver_env: dict[str, str],
    short_tmp: Path,
    tmp_path: Path,
) -> None:
    store = s3_sweep_store
    layout = SweepLayout.of(NS, NAME)
    # ~8 s a trial, 2 s between reports: wide enough that the trial seen checkpointed at
    # step 20 is still running when the driver is killed, however loaded the machine.
    env = driver_env | {"TUNIX_RT_TEST_STEP_SECONDS": "2.0"}
    await api.create(SWEEPS, sweep_body(NAME, **tiny_spec()))
    rayjob = await wait_for(lambda: api.get(RAYJOBS, NS, f"sweep-{NAME}"), what="the RayJob")
    status = await wait_for(lambda: phase_is(api, SWEEPS, NAME, "Pending"), what="Pending")
    assert status["attempts"] == 1 and status["resultsUri"] == store.uri_for(layout.prefix)

    # Attempt 1: the driver runs until a trial finished and another is checkpointed.
    first = make_driver(driver_from_rayjob(rayjob), env, short_tmp, 1, tmp_path).start()
    await api.job_status(NS, f"sweep-{NAME}", jobDeploymentStatus="Running", jobStatus="RUNNING")

    def progressed() -> bool:
        trials = records(store, NAME)
        ray = store.list(layout.experiment_prefix + "/")
        done = [t for t in trials.values() if t.state is TrialState.SUCCEEDED]
        halfway = [
            k
            for k, t in trials.items()
            if t.state is TrialState.RUNNING
            and 20 <= t.steps < 30
            and any(key.startswith(f"{layout.experiment_prefix}/{k}/checkpoint_") for key in ray)
        ]
        return bool(done and halfway)

    async def probe() -> bool:
        assert first.proc is not None and first.proc.poll() is None, first.output()[-3000:]
        return await asyncio.to_thread(progressed)

    try:
        await wait_for(probe, timeout=180, what="a finished and a checkpointed trial")
        now = records(store, NAME)
        done = {k for k, t in now.items() if t.state is TrialState.SUCCEEDED}
        ckpt = {k for k, t in now.items() if t.state is TrialState.RUNNING and t.steps >= 20}

        async def known() -> bool:
            return await asyncio.to_thread(snapshot_knows, store, NAME, done, ckpt)

        await wait_for(known, timeout=120, what="a Tune snapshot that knows both")
    finally:
        first.kill()
        first.lose_local_state()
    at_kill = records(store, NAME)
    finished = {
        k: store.read_bytes(layout.trial_key(k))
        for k, t in at_kill.items()
        if t.state is TrialState.SUCCEEDED
    }
    cut = [k for k, t in at_kill.items() if t.state is TrialState.RUNNING]
    assert finished and cut, at_kill
    assert summary_of(store, NAME) is None
    await api.job_status(
        NS, f"sweep-{NAME}", jobDeploymentStatus="Failed", jobStatus="FAILED",
        reason="AppFailed", message="Ray head pod not found",
    )  # fmt: skip

    # The operator resumes it: a new RayJob, attempt 2, said in status and an Event.
    second_job = await wait_for(
        lambda: api.get(RAYJOBS, NS, f"sweep-{NAME}-a2"), timeout=30, what="the second RayJob"
    )
    status = await wait_for(lambda: phase_is(api, SWEEPS, NAME, "Pending"), what="Pending again")
    assert status["attempts"] == 2 and status["lastRetryReason"] == "AppFailed"
    assert status["rayJobName"] == f"sweep-{NAME}-a2"
    events = await events_of(api, NS, NAME, reasons={"Retrying"})
    retrying = [e for e in events if e["reason"] == "Retrying"]
    assert retrying[0]["type"] == "Warning" and "attempt 2 of 3" in retrying[0]["message"]
    assert second_job["spec"]["entrypoint"] == rayjob["spec"]["entrypoint"]

    # Attempt 2: a new driver, nothing local, resumes from the store and finishes, at the
    # stand-in's own pace (0.3 s a report): no kill is timed against this one.
    second = make_driver(driver_from_rayjob(second_job), driver_env, short_tmp, 2, tmp_path)
    second.start()
    await api.job_status(NS, f"sweep-{NAME}-a2", jobDeploymentStatus="Running", jobStatus="RUNNING")
    code = await asyncio.to_thread(second.wait, 240)
    assert code == 0, second.output()[-4000:]
    assert "resuming sweep" in second.output()
    await api.job_status(
        NS, f"sweep-{NAME}-a2", jobDeploymentStatus="Complete", jobStatus="SUCCEEDED"
    )
    status = await wait_for(
        lambda: phase_is(api, SWEEPS, NAME, "Succeeded"), timeout=30, what="Succeeded"
    )

    # Every trial ran exactly once, counted from the store.
    trials = records(store, NAME)
    assert len(trials) == 6 and status["trialsProgress"] == "6/6" and status["attempts"] == 2
    states = {k: (t.state.value, t.starts, t.steps, t.error) for k, t in trials.items()}
    assert all(t.state is TrialState.SUCCEEDED for t in trials.values()), (
        states,
        first.output()[-3000:],
        second.output()[-3000:],
    )
    assert len({t.params["learningRate"] for t in trials.values()}) == 6
    for trial_id, data in finished.items():  # never re-run: byte for byte as it was
        assert store.read_bytes(layout.trial_key(trial_id)) == data
    for trial_id, trial in trials.items():
        if trial_id in cut:  # started again, its curve kept whole
            assert trial.starts == 2, trial
            assert [p["step"] for p in trial.curve] == [10.0, 20.0, 30.0, 40.0]
        else:
            assert trial.starts == 1 and trial.metrics["resumed_from"] == 0, trial
    # ... and it continued from its last checkpoint, not from step 0.
    assert max(trials[k].metrics["resumed_from"] for k in cut) >= 10, [trials[k] for k in cut]
    sessions = sessions_of(store, NAME)
    assert sessions is not None and [s.exit_code for s in sessions.sessions] == [None, 0]
    summary = summary_of(store, NAME)
    assert summary is not None and summary.reason == "Succeeded"
    assert status["acceleratorHoursUsed"] == round(summary.accelerator_hours_used or 0, 6) > 0
    sweep = await api.get(SWEEPS, NS, NAME)
    assert sweep is not None
    assert_status_fits_crd(sweep)
    assert printer_columns(sweep)["Acc-hours"] == status["acceleratorHoursUsed"]
