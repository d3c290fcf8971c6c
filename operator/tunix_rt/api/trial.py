"""The trial result record: written by the Tune driver, read back by the operator and the CLI.

One model for both sides (DESIGN.md): ``<storage>/<namespace>/<sweep>/trials/<trial-id>.json``.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import Field

from tunix_rt.api.base import ApiModel
from tunix_rt.api.common import Phase
from tunix_rt.api.schedule import ScheduleStep
from tunix_rt.api.warm_start import ReusedFrom, WarmStartSummary
from tunix_rt.scoring import PRIMARY_SCORE


class TrialState(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    STOPPED = "Stopped"  # stopped early by the scheduler: a result, not a failure
    FAILED = "Failed"


FINISHED_STATES = frozenset({TrialState.SUCCEEDED, TrialState.STOPPED, TrialState.FAILED})


def accelerator_hours(accelerators: float, seconds: float) -> float:
    """accelerators x wall hours: a trial's ``acceleratorHours``, a rehearsal's in the web
    view, the budget's count."""
    return accelerators * max(0.0, seconds) / 3600.0


class TrialResult(ApiModel):
    """One trial's params and metrics; the file is rewritten as the trial progresses."""

    trial_id: str = Field(description="Ray Tune trial id, stable across resumes.")
    sweep: str = Field(description="Sweep name.")
    namespace: str = Field("default", description="Sweep namespace (local runs: 'local').")
    params: dict[str, Any] = Field(default_factory=dict, description="Searched params.")
    state: TrialState = TrialState.PENDING
    primary_score: float | None = Field(
        None, description="Mean answer correctness over the eval set (compute_primary_score)."
    )
    metrics: dict[str, float] = Field(default_factory=dict, description="Last reported metrics.")
    steps: int = Field(0, ge=0, description="Train steps completed.")
    wall_seconds: float = Field(0.0, ge=0)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = Field(None, description="Why the trial failed, when it did.")
    backend: str | None = Field(
        None, description="trainer.backend of the trial (absent in records from before backends)."
    )
    model_source: dict[str, Any] | None = Field(
        None,
        description="Where the trial's model came from (config name, checkpoint and digest, "
        "random_init, versions), as its backend reported it.",
    )
    curve: list[dict[str, float]] = Field(
        default_factory=list,
        description="The metrics of every report, in step order (a resumed trial's repeated "
        "steps replace the earlier ones).",
    )
    accelerators: float = Field(
        1.0, ge=0, description="Devices the trial holds (GPUs, TPU chips; 1 on CPU)."
    )
    accelerator_hours: float = Field(
        0.0, ge=0, description="accelerators x wall hours, every session of the trial included."
    )
    starts: int = Field(
        0,
        ge=0,
        description="Times the trial started training (a resume from its checkpoint "
        "after an interruption counts again; a finished trial is never run again).",
    )
    worker: str | None = Field(
        None,
        description="The process that ran the trial's latest start, as <host>:<pid>: where "
        "its Ray worker log is. Built-in trials of one host share a reused worker process.",
    )
    reused_from: ReusedFrom | None = Field(
        None,
        description="Set on an earlier sweep's trial that a warm-started sweep reused "
        "(spec.warmStartFrom): where it was measured. It ran in that sweep, not this one.",
    )

    schedule: list[ScheduleStep] | None = Field(
        None,
        description="Scheduler pbt: the params the trial trained with from each step on, "
        "and the trial each exploit copied (its lineage before that included).",
    )
    preemptions: int = Field(
        0,
        ge=0,
        description="Times the trial's worker process, pod or node was lost and the trial "
        "resumed from its newest checkpoint (a preemption, never a failure).",
    )
    lost_steps: int = Field(
        0, ge=0, description="Train steps done after the newest checkpoint by lost attempts."
    )
    lost_accelerator_hours: float = Field(
        0.0,
        ge=0,
        description="Accelerator-hours of lost attempts since their newest checkpoint "
        "(included in acceleratorHours).",
    )
    checkpoint_step: int | None = Field(
        None, ge=0, description="Step of the trial's newest checkpoint (None: none yet)."
    )
    checkpointed_at: datetime | None = Field(
        None, description="When the newest checkpoint was seen (what a preemption loses)."
    )

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES

    @property
    def reused(self) -> bool:
        """Measured by an earlier sweep and reused here (not run by this sweep)."""
        return self.reused_from is not None

    @property
    def origin_sweep(self) -> str | None:
        """The earlier sweep that measured a reused trial (None: it ran in this one)."""
        return self.reused_from.sweep if self.reused_from is not None else None


class WarmStartRecord(WarmStartSummary):
    """``<storage>/<namespace>/<sweep>/warm_start.json`` (and the evidence's): the warm
    start's verdicts with the reused trials' records, as this sweep holds them (their
    params in its search space's spelling, ``reusedFrom`` set)."""

    trials: list[TrialResult] = Field(default_factory=list, description="The reused trials.")

    def summary(self) -> WarmStartSummary:
        """The record without the trials (``summary.json`` lists those among its own)."""
        return WarmStartSummary.model_validate(self.model_dump(exclude={"trials"}))


class SweepResult(ApiModel):
    """The sweep summary written at the end: ``<storage>/<namespace>/<sweep>/summary.json``."""

    sweep: str
    namespace: str = "default"
    phase: Phase = Field(Phase.SUCCEEDED, description="Succeeded or Failed.")
    message: str | None = Field(None, description="Why the sweep failed, or how it ended.")
    trials_planned: int | None = Field(
        None,
        description="Trials the spec asked for (new ones: a warm start's reused trials "
        "and the grid points they measured are not counted).",
    )
    objective_metric: str = PRIMARY_SCORE
    objective_mode: str = "max"
    trials: list[TrialResult] = Field(
        default_factory=list,
        description="Every trial, best first: this sweep's, and those a warm start reused "
        "(reusedFrom set).",
    )
    unreadable_trials: list[str] | None = Field(
        None,
        description="Trial records found in the store but unreadable (damaged), left out of "
        "trials: 'file: why' each.",
    )
    best_trial_id: str | None = None
    best_params: dict[str, Any] | None = None
    best_schedule: list[ScheduleStep] | None = Field(
        None, description="The best trial's schedule (scheduler pbt), replayed by promotion."
    )
    primary_score: float | None = None
    base_config: dict[str, Any] = Field(default_factory=dict, description="Trainer config (wire).")
    started_at: datetime | None = None
    finished_at: datetime | None = None
    reason: str | None = Field(
        None,
        description="How it ended: Succeeded, BudgetExhausted, GoalReached, TimedOut, "
        "TooManyFailedTrials, NoScore.",
    )
    accelerator_hours_used: float | None = Field(
        None, description="Accelerator-hours of every trial, every attempt included."
    )
    wall_seconds_used: float | None = Field(
        None, description="Wall-clock seconds of every driver session of the sweep."
    )
    preemptions: int | None = Field(
        None, description="Preemptions of every trial (lost workers, resumed from checkpoints)."
    )
    lost_accelerator_hours: float | None = Field(
        None, description="Accelerator-hours preemptions lost (work re-done after a resume)."
    )
    warm_start: WarmStartSummary | None = Field(
        None,
        description="What spec.warmStartFrom reused (in trials, each with reusedFrom) and "
        "skipped, and why.",
    )


class DriverSession(ApiModel):
    """One run of the Tune driver (one RayJob attempt, or one local run): when it ran and
    how it ended. ``exit_code`` None: it did not end on its own (killed, node lost)."""

    started_at: datetime
    seen_at: datetime = Field(description="Last sign of life (updated while it runs).")
    ended_at: datetime | None = None
    exit_code: int | None = Field(None, description="contract.exits.ExitCode, once it ended.")
    message: str | None = None

    @property
    def seconds(self) -> float:
        """Wall seconds it ran (to its end, else to its last sign of life)."""
        end = self.ended_at or self.seen_at
        return max(0.0, (end - self.started_at).total_seconds())


class DriverSessions(ApiModel):
    """``<storage>/<namespace>/<sweep>/sessions.json``: every driver session, oldest first.

    The sweep's wall-clock budget sums them; the operator reads the last one to tell a
    sweep that failed (do not retry) from a driver that was cut off (resume)."""

    sessions: list[DriverSession] = Field(default_factory=list)

    @property
    def wall_seconds(self) -> float:
        return sum(s.seconds for s in self.sessions)

    @property
    def last(self) -> DriverSession | None:
        return self.sessions[-1] if self.sessions else None
