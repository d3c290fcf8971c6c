"""Kueue (issue 13): a Sweep or Rehearsal naming a LocalQueue gets a RayJob with Kueue's
queue label, created suspended; it shows Queued while Kueue holds it, runs once Kueue
unsuspends it, and the operator never touches ``suspend`` itself."""

from __future__ import annotations

from support import operator as op
from tunix_rt.api.common import QUEUE_LABEL
from tunix_rt.controller import OperatorConfig

TRAINER = {"maxSteps": 20}


async def test_queued_sweep_waits_for_kueue_then_runs(
    api: op.Api, start_operator: op.StartOperator
) -> None:
    await start_operator()
    await api.create(op.SWEEPS, op.sweep_body("q", queueName="team-a"))
    rayjob = await op.wait_for(lambda: api.get(op.RAYJOBS, op.NS, "sweep-q"), what="the RayJob")
    assert rayjob["metadata"]["labels"][QUEUE_LABEL] == "team-a"
    assert rayjob["spec"]["suspend"] is True
    # Pod templates carry no queue label: Kueue queues the RayJob, not its pods.
    head = rayjob["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["metadata"]
    assert QUEUE_LABEL not in head.get("labels", {})

    await api.job_status(op.NS, "sweep-q", jobDeploymentStatus="Suspended")

    async def queued() -> dict | None:
        obj = await api.get(op.SWEEPS, op.NS, "q")
        cond = op.condition(obj, "Progressing")
        return obj if cond.get("reason") == "Queued" else None

    obj = await op.wait_for(queued, what="Queued")
    assert obj is not None and obj["status"]["phase"] == "Pending"
    assert "team-a" in obj["status"]["message"]

    # Kueue admits it: it unsuspends the RayJob, KubeRay starts the job.
    await api.patch(op.RAYJOBS, op.NS, "sweep-q", {"spec": {"suspend": False}})
    await api.job_running(op.NS, "sweep-q")
    await op.wait_for(lambda: op.phase_is(api, op.SWEEPS, "q", "Running"), what="Running")
    after = await api.get(op.RAYJOBS, op.NS, "sweep-q")
    assert after is not None and after["spec"]["suspend"] is False  # left as Kueue set it


async def test_operator_default_queue_and_a_spec_without_one(
    api: op.Api, start_operator: op.StartOperator, config: OperatorConfig
) -> None:
    await start_operator(config.replace(default_queue="shared"))
    await api.create(op.SWEEPS, op.sweep_body("d"))
    await api.create(op.REHEARSALS, op.rehearsal_body("r", trainer=TRAINER, queueName="mine"))
    sweep_job = await op.wait_for(
        lambda: api.get(op.RAYJOBS, op.NS, "sweep-d"), what="sweep RayJob"
    )
    assert sweep_job["metadata"]["labels"][QUEUE_LABEL] == "shared"
    rehearsal_job = await op.wait_for(
        lambda: api.get(op.RAYJOBS, op.NS, "rehearsal-r"), what="RayJob"
    )
    assert rehearsal_job["metadata"]["labels"][QUEUE_LABEL] == "mine"  # the spec's wins
    assert rehearsal_job["spec"]["suspend"] is True


async def test_without_kueue_nothing_changes(api: op.Api, start_operator: op.StartOperator) -> None:
    await start_operator()
    await api.create(op.SWEEPS, op.sweep_body("plain"))
    rayjob = await op.wait_for(lambda: api.get(op.RAYJOBS, op.NS, "sweep-plain"), what="the RayJob")
    assert QUEUE_LABEL not in rayjob["metadata"]["labels"]
    assert "suspend" not in rayjob["spec"]


async def test_promoted_inline_rehearsal_shows_its_source(
    api: op.Api, start_operator: op.StartOperator
) -> None:
    """The Source column reads status.sourceSweep: a promoted manifest's annotations fill
    it for an inline trainer too."""
    await start_operator()
    body = op.rehearsal_body("promoted", trainer=TRAINER)
    body["metadata"]["annotations"] = {
        "tunixrt.io/source-sweep": "sweep-smoke",
        "tunixrt.io/source-trial": "abc_00004",
    }
    await api.create(op.REHEARSALS, body)
    await op.wait_for(lambda: api.get(op.RAYJOBS, op.NS, "rehearsal-promoted"), what="the RayJob")
    obj = await op.wait_for(
        lambda: op.phase_is(api, op.REHEARSALS, "promoted", "Pending"), what="Pending"
    )
    assert obj["sourceSweep"] == "sweep-smoke" and obj["sourceTrial"] == "abc_00004"
