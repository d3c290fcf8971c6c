"""A Sweep whose trial fits no pod of its pools fails with reason Unschedulable (issue 14,
item 2): before any RayJob, with the numbers side by side; fixing the spec starts it."""

from __future__ import annotations

from support import operator as op

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
    api: op.Api, start_operator: op.StartOperator
) -> None:
    await start_operator()
    await api.create(
        op.SWEEPS, op.sweep_body("big", resources={"gpu": 2}, cluster={"pools": [GPU_POOL]})
    )
    status = await op.wait_for(lambda: op.phase_is(api, op.SWEEPS, "big", "Failed"), what="Failed")
    assert "spec.resources.gpu: a trial asks 2 GPUs" in status["message"]
    assert "gpusPerPod 1" in status["message"]
    failed = op.condition(await api.get(op.SWEEPS, op.NS, "big"), "Failed")
    assert failed["status"] == "True" and failed["reason"] == "Unschedulable"
    assert await api.get(op.RAYJOBS, op.NS, "sweep-big") is None

    await api.patch(op.SWEEPS, op.NS, "big", {"spec": {"resources": {"gpu": 1}}})
    await op.wait_for(
        lambda: api.get(op.RAYJOBS, op.NS, "sweep-big"), what="the fixed Sweep's RayJob"
    )
    await op.wait_for(
        lambda: op.phase_is(api, op.SWEEPS, "big", "Pending"), what="Pending after fix"
    )


async def test_default_pools_are_checked_after_defaults(
    api: op.Api, start_operator: op.StartOperator
) -> None:
    """No pools in the spec: the operator's default (one 2-CPU pod) is what is checked."""
    await start_operator()
    await api.create(op.SWEEPS, op.sweep_body("wide", resources={"cpu": 16}))
    status = await op.wait_for(lambda: op.phase_is(api, op.SWEEPS, "wide", "Failed"), what="Failed")
    assert "a trial asks 16 CPUs but the largest pod offers 2" in status["message"]
    failed = op.condition(await api.get(op.SWEEPS, op.NS, "wide"), "Failed")
    assert failed["reason"] == "Unschedulable"
