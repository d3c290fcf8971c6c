"""A Sweep whose trial fits no pod of its pools fails with reason Unschedulable (issue 14,
item 2): before any RayJob, with the numbers side by side; fixing the spec starts it."""

from __future__ import annotations

from support.operator import (
    RAYJOBS,
    SWEEPS,
    Api,
    StartOperator,
    condition,
    phase_is,
    sweep_body,
    wait_for,
)

NS = "ml"
# 2 pods: the Sweep's 2 concurrent trials of 1 GPU each run at once (admission refuses more
# concurrent trials than the pools hold)
GPU_POOL = {
    "name": "gpu",
    "accelerator": "gpu",
    "gpusPerPod": 1,
    "cpu": "8",
    "memory": "32Gi",
    "replicas": 2,
}


async def test_unschedulable_sweep_fails_and_starts_once_fixed(
    api: Api, start_operator: StartOperator
) -> None:
    await start_operator()
    await api.create(SWEEPS, sweep_body("big", resources={"gpu": 2}, cluster={"pools": [GPU_POOL]}))
    status = await wait_for(lambda: phase_is(api, SWEEPS, "big", "Failed"), what="Failed")
    assert "spec.resources.gpu: a trial asks 2 GPUs" in status["message"]
    assert "gpusPerPod 1" in status["message"]
    failed = condition(await api.get(SWEEPS, NS, "big"), "Failed")
    assert failed["status"] == "True" and failed["reason"] == "Unschedulable"
    assert await api.get(RAYJOBS, NS, "sweep-big") is None

    await api.patch(SWEEPS, NS, "big", {"spec": {"resources": {"gpu": 1}}})
    await wait_for(lambda: api.get(RAYJOBS, NS, "sweep-big"), what="the fixed Sweep's RayJob")
    await wait_for(lambda: phase_is(api, SWEEPS, "big", "Pending"), what="Pending after fix")


async def test_default_pools_are_checked_after_defaults(
    api: Api, start_operator: StartOperator
) -> None:
    """No pools in the spec: the operator's default (one 2-CPU pod) is what is checked."""
    await start_operator()
    await api.create(SWEEPS, sweep_body("wide", resources={"cpu": 16}))
    status = await wait_for(lambda: phase_is(api, SWEEPS, "wide", "Failed"), what="Failed")
    assert "a trial asks 16 CPUs but the largest pod offers 2" in status["message"]
    failed = condition(await api.get(SWEEPS, NS, "wide"), "Failed")
    assert failed["reason"] == "Unschedulable"
