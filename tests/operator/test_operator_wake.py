"""A Pending Sweep is followed by its RayJob's watch events, not polled
(:mod:`tunix_rt.controller.wake`): with the poll and resync timers slower than the test,
only a RayJob event can move it on."""

from __future__ import annotations

import asyncio
from typing import Any

from support import operator as op
from tunix_rt.controller import OperatorConfig
from tunix_rt.controller.wake import EMPTY, parent_of, signature


def rayjob(status: dict[str, Any] | None = None, **meta: Any) -> dict[str, Any]:
    return {"metadata": {"name": "sweep-a", **meta}, "spec": {}, "status": status}


def test_signature_is_what_the_phase_rules_read() -> None:
    assert signature(rayjob()) == EMPTY
    running = rayjob({"jobStatus": "RUNNING", "jobDeploymentStatus": "Running"})
    assert signature(running) != EMPTY
    noisy = rayjob({"jobStatus": "RUNNING", "jobDeploymentStatus": "Running", "startTime": "t"})
    assert signature(noisy) == signature(running)  # fields the rules do not read: no wake
    suspended = {**rayjob(), "spec": {"suspend": True}}
    assert signature(suspended) != EMPTY


def test_parent_is_the_controlling_owner_of_our_group() -> None:
    ref = {"apiVersion": "tunixrt.io/v1alpha1", "kind": "Sweep", "name": "a", "uid": "u"}
    assert parent_of(rayjob(ownerReferences=[{**ref, "controller": True}])) == ("Sweep", "a")
    assert parent_of(rayjob(ownerReferences=[ref])) is None  # not the controller
    other = {**ref, "apiVersion": "example.com/v1", "controller": True}
    assert parent_of(rayjob(ownerReferences=[other])) is None
    assert parent_of(rayjob()) is None


async def test_pending_sweep_moves_on_rayjob_events_without_polling(
    api: op.Api, apiserver: op.ApiServer, config: OperatorConfig, start_operator: op.StartOperator
) -> None:
    await start_operator(config.replace(poll_seconds=120.0, resync_seconds=120.0))
    await api.create(op.SWEEPS, op.sweep_body("woken"))
    await op.wait_for(lambda: op.phase_is(api, op.SWEEPS, "woken", "Pending"), what="Pending")

    # Pending and nothing changes: the operator does not read the RayJob again.
    reads = apiserver.count("fetch", op.RAYJOBS, "sweep-woken")
    await asyncio.sleep(1.0)
    assert apiserver.count("fetch", op.RAYJOBS, "sweep-woken") == reads

    # KubeRay starts it: the watch event moves the Sweep to Running at once.
    await api.job_running(op.NS, "sweep-woken")
    await op.wait_for(
        lambda: op.phase_is(api, op.SWEEPS, "woken", "Running"), what="Running", timeout=60
    )


async def test_pending_sweep_fails_when_its_rayjob_fails_or_goes(
    api: op.Api, config: OperatorConfig, start_operator: op.StartOperator
) -> None:
    await start_operator(config.replace(poll_seconds=120.0, resync_seconds=120.0))
    for name in ("doomed", "lost"):
        await api.create(op.SWEEPS, op.sweep_body(name))
        await op.wait_for(lambda n=name: op.phase_is(api, op.SWEEPS, n, "Pending"), what="Pending")
    await api.job_status(
        op.NS, "sweep-doomed", jobDeploymentStatus="Failed", jobStatus="FAILED", message="OOM"
    )
    await api.delete(op.RAYJOBS, op.NS, "sweep-lost")
    doomed = await op.wait_for(lambda: op.phase_is(api, op.SWEEPS, "doomed", "Failed"), timeout=60)
    lost = await op.wait_for(lambda: op.phase_is(api, op.SWEEPS, "lost", "Failed"), timeout=60)
    assert "OOM" in doomed["message"]
    assert lost["conditions"] and "RayJob sweep-lost was deleted" in lost["message"]


async def test_a_rayjob_event_that_overtakes_the_start_still_wakes_the_sweep(
    api: op.Api, config: OperatorConfig, start_operator: op.StartOperator
) -> None:
    """KubeRay can answer before the start handler's status patch lands (a slow API server):
    the event then finds a Sweep with no phase yet. It is woken again once started, not
    left for the resync timer."""
    sweep = await api.create(op.SWEEPS, op.sweep_body("early"))
    owner = {"apiVersion": "tunixrt.io/v1alpha1", "kind": "Sweep", "name": "early",
             "uid": sweep["metadata"]["uid"], "controller": True}  # fmt: skip
    labels = {"app.kubernetes.io/managed-by": "tunix-rt", "tunixrt.io/sweep": "early"}
    await api.create(op.RAYJOBS, {
        "apiVersion": "ray.io/v1", "kind": "RayJob",
        "metadata": {"name": "sweep-early", "namespace": op.NS, "labels": labels,
                     "ownerReferences": [owner]},
        "spec": {"entrypoint": "python -m tunix_rt.tune"},
        "status": {"jobDeploymentStatus": "Running", "jobStatus": "RUNNING"},
    })  # fmt: skip
    await start_operator(config.replace(poll_seconds=120.0, resync_seconds=120.0))
    await op.wait_for(
        lambda: op.phase_is(api, op.SWEEPS, "early", "Running"), what="Running", timeout=30
    )
