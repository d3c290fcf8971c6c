"""What the operator writes into a Sweep's status: every trial, the best one, progress."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from tunix_rt.api.base import ApiModel
from tunix_rt.api.common import RunStatus
from tunix_rt.api.schedule import ScheduleStep
from tunix_rt.api.trial import TrialState
from tunix_rt.api.warm_start import WarmStartStatus


class TrialSummary(ApiModel):
    """One trial as shown in status (kubectl describe)."""

    id: str = Field(description="Trial id (Ray Tune), also the name of its result file.")
    params: dict[str, Any] = Field(default_factory=dict, description="Searched params.")
    primary_score: float | None = Field(None, description="The trial's primary_score.")
    state: TrialState = Field(
        TrialState.PENDING, description="Pending, Running, Succeeded, Stopped or Failed."
    )
    steps: int | None = Field(None, description="Train steps completed.")
    preemptions: int | None = Field(
        None, description="Times it resumed from its checkpoint after losing its worker."
    )


class BestTrial(ApiModel):
    """The best finished trial by the sweep objective."""

    id: str = Field(description="Trial id.")
    params: dict[str, Any] = Field(default_factory=dict, description="Its searched params.")
    primary_score: float | None = Field(None, description="Its primary_score.")
    reused_from: str | None = Field(
        None,
        description="Set when the best trial is an earlier sweep's, reused by the warm start "
        "(spec.warmStartFrom): that sweep's name.",
    )
    schedule: list[ScheduleStep] | None = Field(
        None, description="Scheduler pbt: the schedule it followed, replayed by a Rehearsal."
    )


class SweepStatus(RunStatus):
    """Written only by the operator (or the local runner) through the status subresource."""

    ray_job_name: str | None = Field(None, description="The owned RayJob running the sweep.")
    trials: list[TrialSummary] = Field(
        default_factory=list,
        description="Every trial this sweep ran so far (a warm start's reused trials are "
        "counted in warmStart, not here).",
    )
    trials_total: int = Field(0, description="Trials the sweep will run in all.")
    trials_completed: int = Field(0, description="Trials finished (succeeded or stopped).")
    trials_failed: int = Field(0, description="Trials that failed.")
    trials_running: int = Field(0, description="Trials running now.")
    trials_progress: str | None = Field(None, description="'completed/total' for kubectl get.")
    preemptions: int = Field(
        0, description="Trials resumed after their worker process, pod or node was lost."
    )
    trials_unreadable: int = Field(
        0, description="Trial records in the store that could not be read (damaged)."
    )
    unreadable_trials: list[str] = Field(
        default_factory=list,
        description="Which trial records could not be read and why (at most 20 listed).",
    )
    best_trial: BestTrial | None = Field(None, description="The best trial so far.")
    primary_score: float | None = Field(None, description="The best trial's primary_score.")
    results_uri: str | None = Field(None, description="Where trial results and summary live.")
    evidence_uri: str | None = Field(
        None, description="Evidence folder of the finished sweep (manifest, report, trials)."
    )
    bundle_uri: str | None = Field(None, description="The finished sweep's evidence zip.")
    start_time: datetime | None = Field(None, description="When the sweep started running.")
    completion_time: datetime | None = Field(None, description="When the sweep finished.")
    attempts: int | None = Field(
        None, description="RayJobs started for this sweep (1 + resumes after failures)."
    )
    attempt_start_time: datetime | None = Field(
        None, description="When the current attempt's RayJob was created."
    )
    last_retry_reason: str | None = Field(
        None, description="Why the latest resume was started (the failed RayJob's reason)."
    )
    accelerator_hours_used: float | None = Field(
        None, description="Accelerator-hours the trials used so far, every attempt included."
    )
    warm_start: WarmStartStatus | None = Field(
        None,
        description="spec.warmStartFrom: the earlier sweep, how many of its trials were "
        "reused and which were skipped, why (warm_start.json in the results has it all).",
    )
