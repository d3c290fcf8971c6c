"""Kueue (issue 13): a Sweep or Rehearsal naming a LocalQueue gets a RayJob with Kueue's
queue label, created suspended; it shows Queued while Kueue holds it, runs once Kueue
unsuspends it, and the operator never touches ``suspend`` itself."""

from __future__ import annotations

from support.operator import (
    RAYJOBS,
    REHEARSALS,
    SWEEPS,
    Api,
    StartOperator,
    condition,
    phase_is,
    rehearsal_body,
    sweep_body,
    wait_for,
)
from tunix_rt.api.common import QUEUE_LABEL
from tunix_rt.controller import OperatorConfig

NS = "ml"
TRAINER = {"maxSteps": 20}


async def test_queued_sweep_waits_for_kueue_then_runs(
    api: Api, start_operator: StartOperator
) -> None:
    await start_operator()
    await api.create(SWEEPS, sweep_body("q", queueName="team-a"))
    rayjob = await wait_for(lambda: api.get(RAYJOBS, NS, "sweep-q"), what="the RayJob")
    assert rayjob["metadata"]["labels"][QUEUE_LABEL] == "team-a"
    assert rayjob["spec"]["suspend"] is True
    # Pod templates carry no queue label: Kueue queues the RayJob, not its pods.
    head = rayjob["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["metadata"]
    assert QUEUE_LABEL not in head.get("labels", {})

    await api.job_status(NS, "sweep-q", jobDeploymentStatus="Suspended")

    async def queued() -> dict | None:
        obj = await api.get(SWEEPS, NS, "q")
        cond = condition(obj, "Progressing")
        return obj if cond.get("reason") == "Queued" else None

    obj = await wait_for(queued, what="Queued")
    assert obj is not None and obj["status"]["phase"] == "Pending"
    assert "team-a" in obj["status"]["message"]

    # Kueue admits it: it unsuspends the RayJob, KubeRay starts the job.
    await api.patch(RAYJOBS, NS, "sweep-q", {"spec": {"suspend": False}})
    await api.job_status(NS, "sweep-q", jobDeploymentStatus="Running", jobStatus="RUNNING")
    await wait_for(lambda: phase_is(api, SWEEPS, "q", "Running"), what="Running")
    after = await api.get(RAYJOBS, NS, "sweep-q")
    assert after is not None and after["spec"]["suspend"] is False  # left as Kueue set it


async def test_operator_default_queue_and_a_spec_without_one(
    api: Api, start_operator: StartOperator, config: OperatorConfig
) -> None:
    await start_operator(config.replace(default_queue="shared"))
    await api.create(SWEEPS, sweep_body("d"))
    await api.create(REHEARSALS, rehearsal_body("r", trainer=TRAINER, queueName="mine"))
    sweep_job = await wait_for(lambda: api.get(RAYJOBS, NS, "sweep-d"), what="sweep RayJob")
    assert sweep_job["metadata"]["labels"][QUEUE_LABEL] == "shared"
    rehearsal_job = await wait_for(lambda: api.get(RAYJOBS, NS, "rehearsal-r"), what="RayJob")
    assert rehearsal_job["metadata"]["labels"][QUEUE_LABEL] == "mine"  # the spec's wins
    assert rehearsal_job["spec"]["suspend"] is True


async def test_without_kueue_nothing_changes(api: Api, start_operator: StartOperator) -> None:
    await start_operator()
    await api.create(SWEEPS, sweep_body("plain"))
    rayjob = await wait_for(lambda: api.get(RAYJOBS, NS, "sweep-plain"), what="the RayJob")
    assert QUEUE_LABEL not in rayjob["metadata"]["labels"]
    assert "suspend" not in rayjob["spec"]


async def test_promoted_inline_rehearsal_shows_its_source(
    api: Api, start_operator: StartOperator
) -> None:
    """The Source column reads status.sourceSweep: a promoted manifest's annotations fill
    it for an inline trainer too."""
    await start_operator()
    body = rehearsal_body("promoted", trainer=TRAINER)
    body["metadata"]["annotations"] = {
        "tunixrt.io/source-sweep": "sweep-smoke",
        "tunixrt.io/source-trial": "abc_00004",
    }
    await api.create(REHEARSALS, body)
    await wait_for(lambda: api.get(RAYJOBS, NS, "rehearsal-promoted"), what="the RayJob")
    obj = await wait_for(lambda: phase_is(api, REHEARSALS, "promoted", "Pending"), what="Pending")
    assert obj["sourceSweep"] == "sweep-smoke" and obj["sourceTrial"] == "abc_00004"
