"""A Sweep and its Rehearsal run to completion on the simulated cluster: applied with
kubectl, turned into RayClusters and pods by the real KubeRay operator, placed by the real
scheduler on kwok's GKE-shaped nodes, and run as local processes by
:class:`support.rayjob_runner.RayJobRunner` (the RayJob's own entrypoint, against the
operator's store). The Sweep's status then holds the real trials' scores, its best trial
and its evidence; a failing driver fails the Sweep with Ray's message and no retry; a head
pod deleted mid-run has its job submitted again by KubeRay's submitter retry, and the
driver resumes the trials it had."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.cluster import SimulatedCluster
from support.control_plane import ChartOperator, ControlPlane, wait_for_json
from support.durable import snapshot_knows
from support.rayjob_runner import RayJobRunner, wait_idle
from tunix_rt.api.trial import TrialResult, TrialState
from tunix_rt.contract.layout import RehearsalFiles, RehearsalLayout, SweepFiles, SweepLayout
from tunix_rt.storage import Store

NS = "ml-sweeps"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
RUN_TIMEOUT = 600.0
"""Two short trials and a Ray node on a loaded 2-core machine take a few minutes."""


@pytest.fixture(scope="module")
def runner(cluster: SimulatedCluster, cluster_operator: ChartOperator) -> Iterator[RayJobRunner]:
    with RayJobRunner(cluster.plane, NS) as running:
        yield running
    assert not running.errors, running.errors


def small_smoke(name: str, **spec: Any) -> dict[str, Any]:
    """examples/sweep-smoke.yaml, two trials of 40 steps (the example's five of 300 take
    minutes here; ``make cluster-demo`` runs it as written)."""
    doc = yaml.safe_load((EXAMPLES / "sweep-smoke.yaml").read_text())
    doc["metadata"] = {"name": name}
    doc["spec"].update({"maxTrials": 2, "budget": {"smokeSteps": 40}, **spec})
    return dict(doc)


def ended(plane: ControlPlane, kind: str, name: str) -> dict[str, Any]:
    """The Sweep or Rehearsal once Succeeded or Failed (read every 0.2 s for minutes)."""

    def probe() -> dict[str, Any] | None:
        obj = plane.get_object(kind, NS, name) or {}
        return obj if obj.get("status", {}).get("phase") in ("Succeeded", "Failed") else None

    return dict(wait_for_json(plane, f"{kind} {name} ended", probe, timeout=RUN_TIMEOUT))


def trial_scores(store_uri: str, name: str) -> dict[str, float]:
    """Each trial's primary_score as the driver wrote it to the store."""
    files = SweepFiles(Store(store_uri), SweepLayout.of(NS, name))
    return {t.trial_id: t.primary_score for t in files.trials() if t.primary_score is not None}


def test_sweep_then_rehearsal_run_to_completion(
    cluster: SimulatedCluster, runner: RayJobRunner, store_uri: str
) -> None:
    plane = cluster.plane
    plane.apply({**small_smoke("run-smoke"), "metadata": {"name": "run-smoke", "namespace": NS}})
    done = ended(plane, "sweep", "run-smoke")
    status = done["status"]
    assert status["phase"] == "Succeeded", status
    scores = trial_scores(store_uri, "run-smoke")
    assert len(scores) == 2, scores
    best = max(scores, key=lambda t: scores[t])
    assert status["bestTrial"]["id"] == best
    assert status["bestTrial"]["primaryScore"] == pytest.approx(scores[best])
    assert status["primaryScore"] == pytest.approx(scores[best])
    by_id = {t["id"]: t for t in status["trials"]}
    for trial, score in scores.items():
        assert by_id[trial]["primaryScore"] == pytest.approx(score)
    bundle = Path(status["bundleUri"].removeprefix("file://"))  # the evidence zip
    assert bundle.is_file() and bundle.suffix == ".zip", status["bundleUri"]
    run = runner.run_of("sweep-run-smoke")
    assert run is not None and run.submissions == 1 and run.exit_codes == [0]
    job = plane.get_json("rayjob", "sweep-run-smoke", "-n", NS)
    assert job["status"]["jobDeploymentStatus"] == "Complete"  # KubeRay's, from our jobStatus
    table = plane.kubectl("-n", NS, "get", "sweeps").stdout
    assert "run-smoke" in table and "Succeeded" in table, table

    rehearsal = yaml.safe_load((EXAMPLES / "rehearsal-smoke.yaml").read_text())
    rehearsal["metadata"] = {"name": "run-smoke-best", "namespace": NS}
    # The best trial's config, at a sixth of its batch: what is checked is that the run ends
    # and its status is its evidence's, not what the steps learn.
    rehearsal["spec"].update(
        fromSweep="run-smoke", overrides={"maxSteps": 40, "batchSize": 16}, resources={"cpu": 1}
    )
    plane.apply(rehearsal)
    finished = ended(plane, "rehearsal", "run-smoke-best")["status"]
    assert finished["phase"] == "Succeeded", finished
    evidence = RehearsalFiles(Store(store_uri), RehearsalLayout.of(NS, "run-smoke-best"))
    summary = evidence.eval_summary()
    assert summary is not None and evidence.manifest() is not None
    assert finished["primaryScore"] == pytest.approx(summary["primary_score"])
    wait_idle(runner)


@pytest.mark.reliability(
    "fault",
    "a driver that fails on the real KubeRay (trials cannot import the entrypoint)",
    result="Sweep Failed: Ray's first line and the driver's verdict, no retry",
)
def test_a_failing_driver_fails_the_sweep_with_rays_message_and_no_retry(
    cluster: SimulatedCluster, runner: RayJobRunner
) -> None:
    """The python-trainer example on a cluster whose image lacks the user's package (the
    usual first mistake): every trial fails to import it, the driver ends FAILED, KubeRay's
    RayJob is Failed (AppFailed) and the Sweep says why, once."""
    plane = cluster.plane
    doc = yaml.safe_load((EXAMPLES / "sweep-python.yaml").read_text())
    doc["metadata"] = {"name": "run-missing-package", "namespace": NS}
    doc["spec"].update(maxTrials=2, budget={"smokeSteps": 20})
    doc["spec"]["searchSpace"]["feature_set"] = {"type": "grid", "values": ["signed"]}
    plane.apply(doc)
    status = ended(plane, "sweep", "run-missing-package")["status"]
    assert status["phase"] == "Failed", status
    failed = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "AppFailed", failed
    # Ray's first line and the driver's own verdict, not the 20,000 characters of driver
    # output Ray's message carries (contract.phases.ray_job_message).
    message = status["message"]
    assert message.startswith("Job entrypoint command failed with exit code 1; "), message
    assert "more than maxFailedTrials (0)" in message, message
    assert "no module named 'linear_arith'" in message, message
    assert "Traceback" not in message and len(message) < 1024, message
    assert status.get("attempts", 1) == 1, status  # the sweep's own failure: not resumed
    run = runner.run_of("sweep-run-missing-package")
    assert run is not None and run.submissions == 1 and run.exit_codes and run.exit_codes[0] != 0
    job = plane.get_json("rayjob", "sweep-run-missing-package", "-n", NS)["status"]
    assert job["jobDeploymentStatus"] == "Failed" and job["reason"] == "AppFailed"
    wait_idle(runner)


@pytest.mark.reliability(
    "fault",
    "the Ray head pod deleted mid-run (real KubeRay 1.5)",
    result="attempt 2 resumes the trials left; the finished trial kept as it was",
)
def test_head_pod_deleted_mid_run_fails_the_rayjob_and_a_new_attempt_resumes(
    cluster: SimulatedCluster, runner: RayJobRunner, store_uri: str
) -> None:
    """The head pod deleted after one trial finished. KubeRay 1.5 makes no new head for a
    RayJob's cluster; the submitter Job fails its retries and KubeRay fails the RayJob
    (SubmissionFailed). The driver was killed, not ended, so tunix-rt starts attempt 2 (a
    new RayJob), whose driver restores Ray Tune's snapshot from the store and runs only the
    trials left: the finished one is kept as it was."""
    plane, store, name = cluster.plane, Store(store_uri), "run-head-lost"
    plane.apply({**small_smoke(name, maxTrials=3, maxConcurrentTrials=1),
                 "metadata": {"name": name, "namespace": NS}})  # fmt: skip
    files = SweepFiles(store, SweepLayout.of(NS, name))

    def first_done() -> TrialResult | None:
        done = [t for t in files.trials() if t.state is TrialState.SUCCEEDED]
        return done[0] if done and snapshot_knows(store, name, {done[0].trial_id},
                                                  namespace=NS) else None  # fmt: skip

    kept = wait_for_json(plane, "one trial finished and in the snapshot", first_done,
                         timeout=RUN_TIMEOUT)  # fmt: skip
    first = runner.run_of(f"sweep-{name}")
    assert first is not None and first.driver is not None and first.driver.poll() is None
    cluster_name = plane.get_json("rayjob", f"sweep-{name}", "-n", NS)["status"]["rayClusterName"]
    head = f"ray.io/cluster={cluster_name},ray.io/node-type=head"
    plane.kubectl("-n", NS, "delete", "pod", "-l", head, "--wait=false")
    status = ended(plane, "sweep", name)["status"]
    assert status["phase"] == "Succeeded", (status.get("message"), status.get("conditions"))
    assert status["attempts"] == 2 and status["lastRetryReason"] == "SubmissionFailed", status
    lost = plane.get_json("rayjob", f"sweep-{name}", "-n", NS)["status"]
    assert (lost["jobDeploymentStatus"], lost["reason"]) == ("Failed", "SubmissionFailed")
    assert first.exit_codes == [] and len(first.failed_submitters) == 3  # backoffLimit 2
    second = runner.run_of(f"sweep-{name}-a2")
    assert second is not None and second.exit_codes == [0], second
    trials = {t.trial_id: t for t in files.trials()}
    assert len(trials) == 3 and all(t.state is TrialState.SUCCEEDED for t in trials.values())
    assert trials[kept.trial_id].finished_at == kept.finished_at  # not run again
    wait_idle(runner)


STEPS = 100
"""The preempted trial's steps. It is seen checkpointed at its first report (step 25, a
checkpoint at 20) and must still run when its node is killed a few seconds later: its
other 75 steps take ~20 s on an idle core, and a loaded machine slows them as it slows
the kill. The replacement node runs every step from the checkpoint on, so each step more
is test time (300 steps took 3 of the test's 3.5 minutes at load 10)."""


@pytest.mark.reliability(
    "fault",
    "the worker pod of a running trial deleted (a preempted GKE node)",
    result="the trial resumes from its checkpoint on KubeRay's replacement pod, counted as "
    "a preemption (status.preemptions), not a failure; the Sweep succeeds",
)
def test_worker_pod_deleted_mid_trial_resumes_it_from_its_checkpoint(
    cluster: SimulatedCluster, runner: RayJobRunner, store_uri: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """Each worker pod its own Ray node (``per_pod``): deleting the one pod that runs the
    only trial kills its node mid-trial, as GKE's preemption of its node would. KubeRay
    makes a replacement pod, whose node joins; Ray Tune retries the trial there and it
    continues from its newest checkpoint. The RayJob itself never fails."""
    monkeypatch.setattr(runner, "per_pod", True)
    plane, store, name, every = cluster.plane, Store(store_uri), "run-preempted", 20
    doc = small_smoke(name, maxTrials=1, maxConcurrentTrials=1, budget={"smokeSteps": STEPS})
    doc["spec"]["trainer"] = {"checkpointEvery": every}
    plane.apply({**doc, "metadata": {"name": name, "namespace": NS}})
    files = SweepFiles(store, SweepLayout.of(NS, name))

    def checkpointed() -> TrialResult | None:
        running = [t for t in files.trials() if t.state is TrialState.RUNNING]
        return running[0] if running and (running[0].checkpoint_step or 0) >= every else None

    before = wait_for_json(plane, "a running trial with a checkpoint", checkpointed,
                           timeout=RUN_TIMEOUT)  # fmt: skip
    run = runner.run_of(f"sweep-{name}")
    assert run is not None and len(run.worker_pods) == 1, run
    cluster_name = plane.get_json("rayjob", f"sweep-{name}", "-n", NS)["status"]["rayClusterName"]
    workers = f"ray.io/cluster={cluster_name},ray.io/node-type=worker"
    plane.kubectl("-n", NS, "delete", "pod", "-l", workers, "--wait=false")

    status = ended(plane, "sweep", name)["status"]
    assert status["phase"] == "Succeeded", (status.get("message"), status.get("conditions"))
    assert status["preemptions"] == 1 and status["trialsFailed"] == 0, status
    assert status.get("attempts", 1) == 1, status  # the RayJob never failed
    trial = files.trial(before.trial_id)
    assert trial.state is TrialState.SUCCEEDED and trial.preemptions == 1, trial
    assert trial.steps == STEPS and trial.lost_steps <= every, trial
    assert len(run.worker_pods) == 2 and run.exit_codes == [0], run  # the replacement joined
    wait_idle(runner)
