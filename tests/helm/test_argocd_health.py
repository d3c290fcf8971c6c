"""The chart's Argo CD health check (charts/tunix-rt/files/argocd-health.lua), run by a
real Lua runtime (lupa) on status objects the operator's own status code builds, and
the argocd-cm snippet in examples/gitops kept in step with it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from support.argocd import LUA, health
from tunix_rt.api.common import Phase
from tunix_rt.api.sweep import SweepSpec
from tunix_rt.api.trial import SweepResult, TrialResult, TrialState
from tunix_rt.contract.phases import Verdict, judge_rehearsal, judge_sweep
from tunix_rt.contract.reasons import INVALID_SPEC
from tunix_rt.controller import rehearsal_status, sweep_status
from tunix_rt.controller.status import phase_status, started_status

ROOT = Path(__file__).resolve().parents[2]
SNIPPET = ROOT / "examples" / "gitops" / "argocd-cm-health.yaml"
SPEC = SweepSpec.model_validate(
    {"searchSpace": {"learningRate": {"type": "loguniform", "low": 1e-4, "high": 1e-2}}}
)


def rayjob(job_status: str = "", deployment: str = "", message: str = "") -> dict[str, Any]:
    return {
        "status": {"jobStatus": job_status, "jobDeploymentStatus": deployment, "message": message}
    }


def sweep_status_for(
    verdict: Verdict, trials: list[TrialResult], summary: SweepResult | None
) -> dict[str, Any]:
    fields = sweep_status.trial_fields(trials, SPEC, summary)
    settled = sweep_status.settle(verdict, fields)
    base = started_status({}, "sweep-s", "created", 1)
    return {**base, **sweep_status.desired_status(settled, fields, base, "sweep-s", {})}


def trial(state: TrialState, score: float | None = None) -> TrialResult:
    return TrialResult(trial_id=f"t{state.value}", sweep="s", state=state, primary_score=score)


DONE = [trial(TrialState.SUCCEEDED, 0.5), trial(TrialState.FAILED)]
SUMMARY_OK = SweepResult(sweep="s", phase=Phase.SUCCEEDED, message="best trial t: 0.5")
SUMMARY_FAILED = SweepResult(sweep="s", phase=Phase.FAILED, message="2 trial(s) failed")


def sweep_cases() -> list[tuple[str, dict[str, Any], str]]:
    judge = judge_sweep
    return [
        ("created", started_status({}, "sweep-s", "created", 1), "Progressing"),
        (
            "cluster starting",
            sweep_status_for(
                judge(rayjob(deployment="Initializing"), "sweep-s", None, False, 0, 60), [], None
            ),
            "Progressing",
        ),
        (
            "suspended (queued)",
            sweep_status_for(
                judge(rayjob(deployment="Suspended"), "sweep-s", None, False, 0, 60), [], None
            ),
            "Suspended",
        ),
        (
            "queued by Kueue",
            sweep_status_for(
                judge(
                    {
                        "metadata": {"labels": {"kueue.x-k8s.io/queue-name": "team-a"}},
                        "spec": {"suspend": True},
                        "status": {"jobDeploymentStatus": "Suspended"},
                    },
                    "sweep-s",
                    None,
                    False,
                    0,
                    60,
                ),
                [],
                None,
            ),
            "Suspended",
        ),
        (
            "trials running",
            sweep_status_for(
                judge(rayjob("RUNNING", "Running"), "sweep-s", None, True, 0, 60), DONE, None
            ),
            "Progressing",
        ),
        (
            "waiting for the summary",
            sweep_status_for(
                judge(rayjob("SUCCEEDED", "Complete"), "sweep-s", None, True, 5, 60), DONE, None
            ),
            "Progressing",
        ),
        (
            "succeeded",
            sweep_status_for(
                judge(rayjob("SUCCEEDED", "Complete"), "sweep-s", SUMMARY_OK, True, 0, 60),
                DONE,
                SUMMARY_OK,
            ),
            "Healthy",
        ),
        (
            "sweep failed",
            sweep_status_for(
                judge(rayjob("FAILED", "Complete"), "sweep-s", SUMMARY_FAILED, True, 0, 60),
                DONE,
                SUMMARY_FAILED,
            ),
            "Degraded",
        ),
        (
            "RayJob lost",
            sweep_status_for(judge(None, "sweep-s", None, True, 0, 60), DONE, None),
            "Degraded",
        ),
        (
            "deadline exceeded",
            sweep_status_for(
                judge(rayjob("", "Failed", "DeadlineExceeded"), "sweep-s", None, False, 0, 60),
                [],
                None,
            ),
            "Degraded",
        ),
        (
            "invalid spec",
            phase_status({}, Verdict(Phase.FAILED, INVALID_SPEC, "spec.maxTrials: bad")),
            "Degraded",
        ),
    ]


def rehearsal_cases() -> list[tuple[str, dict[str, Any], str]]:
    def status(verdict: Verdict) -> dict[str, Any]:
        base = started_status({}, "rehearsal-r", "created", 1)
        return {**base, **phase_status(base, verdict)}

    uri = "s3://b/ml/rehearsals/r"
    return [
        (
            "waiting for its sweep",
            rehearsal_status.waiting_status({}, "Sweep s is Running", 1, "s"),
            "Progressing",
        ),
        (
            "running",
            status(judge_rehearsal(rayjob("RUNNING", "Running"), "r", False, 0, 60, uri)),
            "Progressing",
        ),
        (
            "succeeded",
            status(judge_rehearsal(rayjob("SUCCEEDED", "Complete"), "r", True, 0, 60, uri)),
            "Healthy",
        ),
        (
            "no evidence",
            status(judge_rehearsal(rayjob("SUCCEEDED", "Complete"), "r", False, 90, 60, uri)),
            "Degraded",
        ),
    ]


@pytest.mark.parametrize(
    ("case", "status", "expected"),
    [pytest.param(*c, id=f"sweep-{c[0]}") for c in sweep_cases()]
    + [pytest.param(*c, id=f"rehearsal-{c[0]}") for c in rehearsal_cases()],
)
def test_health_of_operator_statuses(case: str, status: dict[str, Any], expected: str) -> None:
    assert status["phase"] in {p.value for p in Phase}, case
    got, message = health({"kind": "Sweep", "status": status})
    assert got == expected, (case, status["phase"], status.get("message"))
    assert message == (status.get("message") or status["phase"])


def test_no_status_yet_is_progressing() -> None:
    assert health({"kind": "Sweep", "metadata": {"name": "s"}})[0] == "Progressing"
    assert health({"kind": "Sweep", "status": {}})[0] == "Progressing"


def test_argocd_cm_snippet_carries_the_chart_script_for_both_kinds() -> None:
    snippet = yaml.safe_load(SNIPPET.read_text())
    data = snippet["data"]
    script = LUA.read_text()
    for kind in ("Sweep", "Rehearsal"):
        assert data[f"resource.customizations.health.tunixrt.io_{kind}"] == script
