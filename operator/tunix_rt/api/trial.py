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
from tunix_rt.scoring import PRIMARY_SCORE


class TrialState(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    STOPPED = "Stopped"  # stopped early by the scheduler: a result, not a failure
    FAILED = "Failed"


FINISHED_STATES = frozenset({TrialState.SUCCEEDED, TrialState.STOPPED, TrialState.FAILED})


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

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES


class SweepResult(ApiModel):
    """The sweep summary written at the end: ``<storage>/<namespace>/<sweep>/summary.json``."""

    sweep: str
    namespace: str = "default"
    phase: Phase = Field(Phase.SUCCEEDED, description="Succeeded or Failed.")
    message: str | None = Field(None, description="Why the sweep failed, or how it ended.")
    trials_planned: int | None = Field(None, description="Trials the spec asked for.")
    objective_metric: str = PRIMARY_SCORE
    objective_mode: str = "max"
    trials: list[TrialResult] = Field(default_factory=list)
    best_trial_id: str | None = None
    best_params: dict[str, Any] | None = None
    primary_score: float | None = None
    base_config: dict[str, Any] = Field(default_factory=dict, description="Trainer config (wire).")
    started_at: datetime | None = None
    finished_at: datetime | None = None
