"""Faults the operator survives (issue 14, items 1 and 5), each against kmock for real.

Which test shows what (``*``: covered elsewhere, not repeated here):

* ``spec`` a string, a list or null; ``status`` not an object:
  ``test_spec_that_is_not_an_object_fails_once``;
* a Kubernetes API request that times out: ``test_client_timeout_names_its_cause``;
* operator restarts post no Event flood; an operator killed between creating the RayJob
  and patching the status (the RayJob adopted once): ``test_restarts_post_no_adoption_events``;
* operator stopped and restarted mid-sweep*:
  ``test_operator_sweep.py::test_restart_adopts_the_rayjob``;
* operator killed (SIGKILL) mid-sweep, one RayJob, the same result:
  ``test_operator_killed_mid_sweep_converges``;
* a RayJob that fails (deadline)*:
  ``test_operator_sweep.py::test_failed_rayjob_fails_the_sweep_and_keeps_trials``;
* trials that crash until maxFailedTrials, then a RayJob that fails (driver exit 1):
  ``test_crashing_trials_count_until_max_failed_trials``;
* the driver killed and restarted: ``test_driver_restart_keeps_finished_trials``;
* the store unreachable past the summary grace*:
  ``test_operator_s3.py::test_store_unreachable_while_running_is_retried_until_back``;
* the store unreachable for a while, Degraded condition, nothing lost:
  ``test_store_outage_sets_degraded_and_loses_nothing``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import kopf
import pytest

from support import operator as op
from support.net import CuttingProxy
from support.s3 import SECRET
from tunix_rt.api.common import Phase
from tunix_rt.api.sweep import SweepSpec
from tunix_rt.api.trial import SweepResult, TrialResult, TrialState
from tunix_rt.contract.layout import summary_key
from tunix_rt.contract.phases import SweepEnd, sweep_verdict
from tunix_rt.controller import OperatorConfig
from tunix_rt.kuberay.client import RAYJOBS as RAYJOB_REF
from tunix_rt.kuberay.client import KubeApiError, KubeClient
from tunix_rt.kuberay.metadata import Owner
from tunix_rt.kuberay.rayjob import build_sweep_rayjob
from tunix_rt.storage import Store


def raw(kind: str, name: str, **fields: Any) -> dict[str, Any]:
    """An object as a client that bypasses the CRD schema may write it."""
    return {
        "apiVersion": "tunixrt.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": name, "namespace": op.NS},
        **fields,
    }


async def reasons_of(api: op.Api, name: str) -> Counter[str]:
    return Counter(e["reason"] for e in await api.events(op.NS, name))


# ----------------------------------------------------------------------------- item 1


async def test_spec_that_is_not_an_object_fails_once(
    api: op.Api, apiserver: op.ApiServer, start_operator: op.StartOperator
) -> None:
    """A ``spec`` that is a string, a list or null fails the object once (InvalidSpec, the
    field and the expected shape named, a Warning Event), is not retried, and starts once
    fixed; a ``status`` that is not an object is taken as empty and replaced. A valid
    Sweep beside them is served as usual."""
    await start_operator()
    await api.create(op.SWEEPS, raw("Sweep", "text", spec="maxTrials: 4"))
    await api.create(op.SWEEPS, raw("Sweep", "listed", spec=[{"maxTrials": 4}]))
    await api.create(op.SWEEPS, raw("Sweep", "null", spec=None))
    await api.create(op.REHEARSALS, raw("Rehearsal", "text", spec="trainer: {}"))
    garbage_status = op.sweep_body("garbled")
    garbage_status["status"] = "not an object"
    await api.create(op.SWEEPS, garbage_status)
    await api.create(op.SWEEPS, op.sweep_body("good"))

    expected = {
        (op.SWEEPS, "text"): "got a string: 'maxTrials: 4'",
        (op.SWEEPS, "listed"): "got a list: [{'maxTrials': 4}]",
        (op.SWEEPS, "null"): "got null",
        (op.REHEARSALS, "text"): "got a string: 'trainer: {}'",
    }
    for (resource, name), got in expected.items():
        status = await op.wait_for(
            lambda r=resource, n=name: op.phase_is(api, r, n, "Failed"), what=f"{name} Failed"
        )
        assert status["message"].startswith("spec: expected an object (a mapping of fields")
        assert status["message"].endswith(got), status["message"]
        obj = await api.get(resource, op.NS, name)
        assert obj is not None
        op.assert_status_fits_crd(obj)
        failed = op.condition(obj, "Failed")
        assert failed["status"] == "True" and failed["reason"] == "InvalidSpec"
    sweep_message = (await op.status_of(api, op.SWEEPS, "text"))["message"]
    assert "searchSpace, maxTrials" in sweep_message
    assert "trainer or fromSweep" in (await op.status_of(api, op.REHEARSALS, "text"))["message"]

    await op.wait_for(lambda: op.phase_is(api, op.SWEEPS, "good", "Pending"), what="the valid one")
    status = await op.wait_for(
        lambda: op.phase_is(api, op.SWEEPS, "garbled", "Pending"), what="garbled"
    )
    assert status["rayJobName"] == "sweep-garbled"

    await asyncio.sleep(1.5)  # several polls: nothing is retried, no Event repeated
    for resource, name in expected:
        events = await op.events_of(api, op.NS, name, reasons={"InvalidSpec"})
        invalid = [e for e in events if e["reason"] == "InvalidSpec"]
        # Rehearsals and Sweeps share names here: the Events of both kinds are counted.
        assert len(invalid) == (2 if name == "text" else 1), invalid
        assert all(e["type"] == "Warning" and "spec: expected" in e["message"] for e in invalid)
        obj = await api.get(resource, op.NS, name)
        assert obj is not None
        progress = (obj["metadata"].get("annotations") or {}).get(
            f"tunixrt.io/start_{obj['kind'].lower()}"
        )
        assert progress is None, progress  # kopf has nothing left to retry
    assert await api.get(op.RAYJOBS, op.NS, "sweep-text") is None

    # Fixing the spec starts it, as for any invalid spec.
    await api.replace(op.SWEEPS, op.NS, "text", "spec", op.sweep_body("text")["spec"])
    await op.wait_for(
        lambda: api.get(op.RAYJOBS, op.NS, "sweep-text"), what="the fixed one's RayJob"
    )
    await op.wait_for(
        lambda: op.phase_is(api, op.SWEEPS, "text", "Pending"), what="Pending after fix"
    )
    assert apiserver.count("create", op.RAYJOBS) == 3  # good, garbled, text


# ----------------------------------------------------------------------------- item 2


@contextlib.asynccontextmanager
async def stalling_server() -> AsyncIterator[str]:
    """An HTTP server that reads requests and never answers."""
    hold = asyncio.Event()

    async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await hold.wait()
        writer.close()

    server = await asyncio.start_server(stall, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        hold.set()
        server.close()
        await server.wait_closed()


async def test_client_timeout_names_its_cause() -> None:
    """A request the API server never answers: the error says it timed out, and after how
    long (a bare TimeoutError prints as an empty string)."""
    async with stalling_server() as url:
        client = KubeClient(kopf.ConnectionInfo(server=url, insecure=True), timeout=0.3)
        try:
            with pytest.raises(KubeApiError) as caught:
                await client.get(RAYJOB_REF, op.NS, "sweep-slow")
        finally:
            await client.close()
    error = caught.value
    assert error.status == 0
    assert (
        str(error) == "GET /apis/ray.io/v1/namespaces/ml/rayjobs/sweep-slow: timed out after 0.3 s"
    )
    assert error.message == str(error)


# ----------------------------------------------------------------------------- item 3


async def test_restarts_post_no_adoption_events(
    api: op.Api, apiserver: op.ApiServer, config: OperatorConfig, start_operator: op.StartOperator
) -> None:
    """Two operator restarts against the same API server post no Event for objects the
    status already records as followed. A RayJob that the status does not name (an
    operator killed between creating it and patching the status) is adopted once, with
    one ``RayJobAdopted`` Event, and never created twice."""
    first = await start_operator()
    await api.create(op.SWEEPS, op.sweep_body("steady"))
    await api.create(op.REHEARSALS, op.rehearsal_body("steady", trainer={"learningRate": 0.001}))
    await op.wait_for(
        lambda: op.phase_is(api, op.SWEEPS, "steady", "Pending"), what="Sweep Pending"
    )
    await op.wait_for(lambda: op.phase_is(api, op.REHEARSALS, "steady", "Pending"), what="Pending")
    await op.events_of(api, op.NS, "steady", reasons={"RayJobCreated", "Pending"})
    await first.stop()

    # What an operator killed right after its POST leaves: a RayJob, no status.
    orphan = await api.create(op.SWEEPS, op.sweep_body("orphan"))
    owner = Owner("tunixrt.io/v1alpha1", "Sweep", "orphan", orphan["metadata"]["uid"])
    spec = SweepSpec.model_validate(config.with_defaults(orphan["spec"]))
    manifest = build_sweep_rayjob(
        name="orphan", namespace=op.NS, spec=spec, owner=owner, options=config.build_options()
    )
    await api.create(op.RAYJOBS, manifest)

    before = await api.events(op.NS)
    counts: list[int] = []
    for _ in range(3):
        run = await start_operator()
        await op.wait_for(
            lambda: op.phase_is(api, op.SWEEPS, "orphan", "Pending"), what="orphan Pending"
        )
        await asyncio.sleep(1.0)  # resume handlers and several polls
        await run.stop()
        counts.append(len(await api.events(op.NS)))

    after = await api.events(op.NS)
    new = Counter((e["involvedObject"]["name"], e["reason"]) for e in after[len(before) :])
    assert new == {("orphan", "RayJobAdopted"): 1, ("orphan", "Pending"): 1}, new
    assert counts[0] == counts[1] == counts[2], counts  # the 2nd and 3rd start: no Event
    steady = await reasons_of(api, "steady")
    assert steady["RayJobAdopted"] == 0 and steady["RayJobCreated"] == 2  # Sweep + Rehearsal
    # 2 created by the operator, the orphan's by us, and the operator's one try at the
    # orphan's (create first: refused 409, then adopted); never a second RayJob.
    assert apiserver.count("create", op.RAYJOBS) == 4
    assert len(await api.list(op.RAYJOBS, op.NS)) == 3
    status = await op.status_of(api, op.SWEEPS, "orphan")
    assert status["rayJobName"] == "sweep-orphan"


# ----------------------------------------------------------------------------- item 5


def comparable(status: dict[str, Any]) -> dict[str, Any]:
    """A final status without what differs between two runs of the same sweep."""
    drop = {"startTime", "completionTime", "rayJobName", "resultsUri", "evidenceUri"}
    out = {k: v for k, v in status.items() if k not in drop}
    out["conditions"] = sorted(
        (c["type"], c["status"], c["reason"]) for c in status.get("conditions") or []
    )
    return out


async def test_operator_killed_mid_sweep_converges(
    api: op.Api, apiserver: op.ApiServer, store: Store, tmp_path: Path
) -> None:
    """``tunix-rt operator`` killed with SIGKILL while a sweep runs, trials finishing while
    it is down, then started again: exactly one RayJob, and the final status is the one an
    uninterrupted operator gives for the same trials (the ``calm`` Sweep, created after
    the restart and fed the same way)."""
    env = {"TUNIX_RT_DEFAULT_STORAGE": store.uri, "TUNIX_RT_POLL_SECONDS": "0.2",
           "TUNIX_RT_SUMMARY_GRACE_SECONDS": "5"}  # fmt: skip
    operator = op.OperatorProcess(str(apiserver.url), tmp_path, **env)
    await operator.start()
    try:
        await op.sweep_running(api, op.sweep_body("killed", maxTrials=3))
        op.write_trial(store, op.NS, "killed", "t_00000", TrialState.SUCCEEDED, 0.5)
        await op.wait_for(lambda: _completed(api, "killed", 1), what="one trial seen")
        output = await operator.kill()
        assert "Traceback" not in output, output[-3000:]

        # While it is down: the other trials finish, the job succeeds.
        trials = [
            op.write_trial(store, op.NS, "killed", "t_00000", TrialState.SUCCEEDED, 0.5),
            op.write_trial(store, op.NS, "killed", "t_00001", TrialState.FAILED, None),
            op.write_trial(store, op.NS, "killed", "t_00002", TrialState.SUCCEEDED, 0.7),
        ]
        op.write_summary(store, op.NS, "killed", trials, best="t_00002")
        await api.job_succeeded(op.NS, "sweep-killed")

        await operator.start()
        await api.create(op.SWEEPS, op.sweep_body("calm", maxTrials=3))
        await op.wait_for(lambda: api.get(op.RAYJOBS, op.NS, "sweep-calm"), what="the calm RayJob")
        for trial in trials:
            op.write_trial(store, op.NS, "calm", trial.trial_id, trial.state, trial.primary_score)
        op.write_summary(
            store,
            op.NS,
            "calm",
            [t.model_copy(update={"sweep": "calm"}) for t in trials],
            "t_00002",
        )
        await api.job_succeeded(op.NS, "sweep-calm")
        killed = await op.wait_for(
            lambda: op.phase_is(api, op.SWEEPS, "killed", "Succeeded"), timeout=30
        )
        calm = await op.wait_for(
            lambda: op.phase_is(api, op.SWEEPS, "calm", "Succeeded"), timeout=30
        )
    finally:
        output = await operator.kill()
    assert "Traceback" not in output, output[-3000:]

    assert comparable(killed) == comparable(calm)
    assert killed["trialsProgress"] == "3/3" and killed["trialsFailed"] == 1
    assert killed["bestTrial"]["id"] == "t_00002" and killed["primaryScore"] == 0.7
    assert apiserver.count("create", op.RAYJOBS) == 2  # sweep-killed once, sweep-calm once
    assert [r["metadata"]["name"] for r in await api.list(op.RAYJOBS, op.NS)] == [
        "sweep-killed",
        "sweep-calm",
    ]
    reasons = await reasons_of(api, "killed")
    assert reasons["RayJobCreated"] == 1 and reasons["RayJobAdopted"] == 0
    assert reasons["TrialFinished"] + reasons["TrialFailed"] == 3  # each trial said once


async def _completed(api: op.Api, name: str, count: int) -> dict[str, Any] | None:
    status = await op.status_of(api, op.SWEEPS, name)
    return status if status.get("trialsCompleted") == count else None


def driver_summary(
    store: Store, name: str, spec: SweepSpec, trials: list[TrialResult]
) -> SweepResult:
    """The summary the driver writes, its verdict by the run contract's own rule."""
    verdict = sweep_verdict(SweepEnd(trials, len(trials), False, False), spec)
    summary = SweepResult(
        sweep=name, namespace=op.NS, phase=verdict.phase, message=verdict.message,
        trials_planned=spec.planned_trials(), trials=trials,
    )  # fmt: skip
    store.write_json(summary_key(op.NS, name), summary)
    return summary


async def test_crashing_trials_count_until_max_failed_trials(
    api: op.Api, store: Store, config: OperatorConfig, start_operator: op.StartOperator
) -> None:
    """A trial that crashes is counted (trialsFailed, a TrialFailed Warning) and the sweep
    goes on; one failure past ``maxFailedTrials`` ends it: the driver exits 1, the RayJob
    fails, and the Sweep fails with the RayJob's message and the driver's reason, every
    trial result kept."""
    await start_operator()
    body = op.sweep_body("crashy", maxTrials=6, maxFailedTrials=1)
    await op.sweep_running(api, body)

    op.write_trial(store, op.NS, "crashy", "t_00000", TrialState.FAILED, None)

    async def counted() -> dict[str, Any] | None:
        s = await op.status_of(api, op.SWEEPS, "crashy")
        return s if s.get("phase") == "Running" and s.get("trialsFailed") == 1 else None

    status = await op.wait_for(counted, what="the crashed trial counted")
    assert "(1 failed)" in status["message"]
    await op.events_of(api, op.NS, "crashy", reasons={"TrialFailed"}, warning_with="(OOM)")

    # Within maxFailedTrials: the sweep goes on.
    op.write_trial(store, op.NS, "crashy", "t_00001", TrialState.SUCCEEDED, 0.6)
    op.write_trial(store, op.NS, "crashy", "t_00002", TrialState.RUNNING)
    status = await op.wait_for(lambda: _completed(api, "crashy", 1), what="the sweep going on")
    assert status["phase"] == "Running" and status["trialsRunning"] == 1
    assert status["trialsProgress"] == "2/6"

    # One more crash: past maxFailedTrials (1). The driver stops, writes its verdict, exits 1.
    trials = [
        op.write_trial(store, op.NS, "crashy", "t_00000", TrialState.FAILED, None),
        op.write_trial(store, op.NS, "crashy", "t_00001", TrialState.SUCCEEDED, 0.6),
        op.write_trial(store, op.NS, "crashy", "t_00002", TrialState.FAILED, None),
    ]
    spec = SweepSpec.model_validate(config.with_defaults(body["spec"]))
    summary = driver_summary(store, "crashy", spec, trials)
    assert summary.phase is Phase.FAILED
    job_message = "Job entrypoint command failed with exit code 1"
    await api.job_status(
        op.NS, "sweep-crashy", jobDeploymentStatus="Complete", jobStatus="FAILED",
        reason="AppFailed", message=job_message,
    )  # fmt: skip
    status = await op.wait_for(
        lambda: op.phase_is(api, op.SWEEPS, "crashy", "Failed"), what="Failed"
    )
    assert status["message"] == f"{job_message}; {summary.message}"
    assert "2 trial(s) failed, more than maxFailedTrials (1); first error: OOM" in status["message"]
    assert status["trialsFailed"] == 2 and status["trialsCompleted"] == 1
    assert [t["id"] for t in status["trials"]] == ["t_00000", "t_00001", "t_00002"]
    assert status["bestTrial"]["id"] == "t_00001" and status["primaryScore"] == 0.6
    crashy = await api.get(op.SWEEPS, op.NS, "crashy")
    assert op.condition(crashy, "Failed")["reason"] == "AppFailed"
    assert crashy is not None
    op.assert_status_fits_crd(crashy)
    events = await op.events_of(api, op.NS, "crashy", reasons={"AppFailed"})
    assert [e["reason"] for e in events].count("TrialFailed") == 2


async def test_driver_restart_keeps_finished_trials(
    api: op.Api, store: Store, start_operator: op.StartOperator
) -> None:
    """The driver is killed and started again (the RayJob's job goes back to PENDING, then
    RUNNING; the new session restores the finished trials from Tune's state and re-writes
    their records, and re-runs the one that was running). The Sweep never loses a finished
    trial, never fails, never repeats a trial Event, and ends with every trial."""
    await start_operator()
    await op.sweep_running(api, op.sweep_body("phoenix", maxTrials=4, maxFailedTrials=1))
    done = [
        op.write_trial(store, op.NS, "phoenix", "t_00000", TrialState.SUCCEEDED, 0.5),
        op.write_trial(store, op.NS, "phoenix", "t_00001", TrialState.FAILED, None),
    ]
    op.write_trial(store, op.NS, "phoenix", "t_00002", TrialState.RUNNING)
    await op.wait_for(lambda: _completed(api, "phoenix", 1), what="the first trials")

    seen: list[dict[str, Any]] = []
    watching = True

    async def watch() -> None:
        while watching:
            seen.append(await op.status_of(api, op.SWEEPS, "phoenix"))
            await asyncio.sleep(0.05)

    async def read_more(reads: int = 6) -> None:
        """Let the watcher read the status ``reads`` more times (about 0.6 s when idle): on a
        busy machine a fixed 0.6 s may be a single read."""
        target = len(seen) + reads

        async def enough() -> bool:
            return len(seen) >= target

        await op.wait_for(enough, what=f"{reads} more status reads")

    watcher = asyncio.create_task(watch())
    try:
        # The driver dies; KubeRay reports the job pending while it is started again.
        await api.job_status(
            op.NS, "sweep-phoenix", jobDeploymentStatus="Running", jobStatus="PENDING"
        )
        await read_more()
        # The new session restores what finished and re-runs the running trial.
        for trial in done:
            op.write_trial(
                store, op.NS, "phoenix", trial.trial_id, trial.state, trial.primary_score
            )
        op.write_trial(store, op.NS, "phoenix", "t_00002", TrialState.RUNNING)
        await api.job_running(op.NS, "sweep-phoenix")
        await read_more()
        trials = [
            *done,
            op.write_trial(store, op.NS, "phoenix", "t_00002", TrialState.SUCCEEDED, 0.8),
            op.write_trial(store, op.NS, "phoenix", "t_00003", TrialState.SUCCEEDED, 0.7),
        ]
        final = await op.sweep_succeeds(api, store, "phoenix", trials, best="t_00002")
    finally:
        watching = False
        await watcher
    assert final["trialsProgress"] == "4/4" and final["trialsFailed"] == 1
    assert final["bestTrial"]["id"] == "t_00002" and final["primaryScore"] == 0.8

    finished = [s["trialsCompleted"] + s["trialsFailed"] for s in seen if "trialsCompleted" in s]
    assert len(finished) > 10 and finished == sorted(finished), finished  # never went back
    assert min(finished) >= 2
    assert all(s.get("phase") != "Failed" for s in seen)
    for s in seen:
        states = {t["id"]: t["state"] for t in s.get("trials") or []}
        assert states.get("t_00000") == "Succeeded" and states.get("t_00001") == "Failed", s
    reasons = await reasons_of(api, "phoenix")
    assert reasons["TrialFinished"] == 3 and reasons["TrialFailed"] == 1


async def test_store_outage_sets_degraded_and_loses_nothing(
    api: op.Api, s3_store: Store, s3_proxy: CuttingProxy, proxied_s3_operator: op.OperatorRun
) -> None:
    """The s3:// store cannot be reached for a while: the Sweep gets ``Degraded=True``
    (reason StoreUnavailable, the store URI and the error in the message; one Warning
    Event), keeps what it showed, and stays Running; the trials the driver wrote meanwhile
    appear once the store is back, ``Degraded`` turns False (one Normal Event), and the
    sweep finishes with every trial."""
    run = proxied_s3_operator
    await op.sweep_running(api, op.sweep_body("outage", maxTrials=3))
    op.write_trial(s3_store, op.NS, "outage", "t_00000", TrialState.SUCCEEDED, 0.5)
    await op.wait_for(lambda: _completed(api, "outage", 1), what="one trial read from S3")
    assert op.condition(await api.get(op.SWEEPS, op.NS, "outage"), "Degraded") == {}

    s3_proxy.cut_after, s3_proxy.cuts = 0, 10**6
    s3_proxy.stop()

    async def degraded(value: str) -> dict[str, Any] | None:
        cond = op.condition(await api.get(op.SWEEPS, op.NS, "outage"), "Degraded")
        return cond if cond.get("status") == value else None

    cond = await op.wait_for(lambda: degraded("True"), what="Degraded=True")
    assert cond["reason"] == "StoreUnavailable"
    assert cond["message"].startswith(f"cannot read the store {s3_store.uri}: ")
    assert "failed after 2 attempts" in cond["message"], cond["message"]
    # Meanwhile the driver (which still reaches S3) goes on writing trial records.
    op.write_trial(s3_store, op.NS, "outage", "t_00001", TrialState.FAILED, None)
    op.write_trial(s3_store, op.NS, "outage", "t_00002", TrialState.SUCCEEDED, 0.9)
    await op.polled(run, 3)  # several polls while the store is away
    obj = await api.get(op.SWEEPS, op.NS, "outage")
    assert obj is not None
    op.assert_status_fits_crd(obj)
    status = obj["status"]
    assert status["phase"] == "Running" and status["trialsCompleted"] == 1
    assert [t["id"] for t in status["trials"]] == ["t_00000"]  # what it had, kept

    s3_proxy.cut_after = None
    s3_proxy.start()
    cond = await op.wait_for(lambda: degraded("False"), what="Degraded=False")
    assert cond["reason"] == "StoreAvailable" and s3_store.uri in cond["message"]
    status = await op.wait_for(
        lambda: _completed(api, "outage", 2), what="the trials written meanwhile"
    )
    assert status["trialsFailed"] == 1 and status["phase"] == "Running"
    assert status["bestTrial"]["id"] == "t_00002"

    trials = [
        op.write_trial(s3_store, op.NS, "outage", "t_00000", TrialState.SUCCEEDED, 0.5),
        op.write_trial(s3_store, op.NS, "outage", "t_00001", TrialState.FAILED, None),
        op.write_trial(s3_store, op.NS, "outage", "t_00002", TrialState.SUCCEEDED, 0.9),
    ]
    status = await op.sweep_succeeds(api, s3_store, "outage", trials, best="t_00002")
    assert status["trialsProgress"] == "3/3" and status["primaryScore"] == 0.9
    final = await api.get(op.SWEEPS, op.NS, "outage")
    assert op.condition(final, "Degraded")["status"] == "False"
    events = await op.events_of(
        api, op.NS, "outage", reasons={"StoreUnavailable", "StoreAvailable"}
    )
    reasons = Counter(e["reason"] for e in events)
    assert reasons["StoreUnavailable"] == 1 and reasons["StoreAvailable"] == 1, reasons
    unavailable = next(e for e in events if e["reason"] == "StoreUnavailable")
    assert unavailable["type"] == "Warning" and s3_store.uri in unavailable["message"]
    text = json.dumps([final, events])
    assert SECRET not in text and op.S3_ACCESS_KEY not in text
