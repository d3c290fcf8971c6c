"""The Sweep resource: a Ray Tune search over trainer hyperparameters."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from tunix_rt.api.base import ApiModel
from tunix_rt.api.common import (
    API_VERSION,
    DEFAULT_STORAGE,
    ClusterSpec,
    Condition,
    ObjectMeta,
    Phase,
    TrialResources,
)
from tunix_rt.api.trainer import TrainerConfig, searchable_name
from tunix_rt.api.trial import TrialState
from tunix_rt.scoring import PRIMARY_SCORE

MAX_TRIALS_LIMIT = 200


class Distribution(StrEnum):
    UNIFORM = "uniform"
    LOGUNIFORM = "loguniform"
    RANDINT = "randint"
    CHOICE = "choice"
    GRID = "grid"


class SearchParam(ApiModel):
    """A distribution over one trainer parameter: bounds for ranges, values for choice/grid."""

    type: Distribution = Field(description="uniform, loguniform, randint, choice or grid.")
    low: float | None = Field(None, description="Lower bound (uniform, loguniform, randint).")
    high: float | None = Field(
        None, description="Upper bound (uniform, loguniform; randint: exclusive)."
    )
    values: list[Any] | None = Field(
        None, min_length=1, max_length=1000, description="Candidates (choice, grid)."
    )

    @model_validator(mode="after")
    def _shape(self) -> SearchParam:
        ranged = self.type in {Distribution.UNIFORM, Distribution.LOGUNIFORM, Distribution.RANDINT}
        if ranged:
            if self.low is None or self.high is None:
                raise ValueError(f"type {self.type.value} needs low and high")
            if self.values is not None:
                raise ValueError(f"type {self.type.value} takes low/high, not values")
            if not self.low < self.high:
                raise ValueError(f"low ({self.low}) must be less than high ({self.high})")
            if self.type is Distribution.LOGUNIFORM and self.low <= 0:
                raise ValueError("loguniform needs low > 0")
        else:
            if not self.values:
                raise ValueError(f"type {self.type.value} needs a non-empty values list")
            if self.low is not None or self.high is not None:
                raise ValueError(f"type {self.type.value} takes values, not low/high")
        return self


class Objective(ApiModel):
    metric: str = Field(PRIMARY_SCORE, description="Metric the search optimises.")
    mode: Literal["max", "min"] = Field("max", description="max or min.")


class Algorithm(StrEnum):
    RANDOM = "random"
    GRID = "grid"
    TPE = "tpe"


class SchedulerType(StrEnum):
    FIFO = "fifo"
    ASHA = "asha"
    MEDIAN = "median"


class Scheduler(ApiModel):
    """Early stopping of bad trials, on the metrics trials report while they train."""

    type: SchedulerType = Field(SchedulerType.FIFO, description="fifo, asha or median.")
    grace_period: int = Field(
        50, ge=1, description="Steps a trial always runs before it may be stopped."
    )
    reduction_factor: float = Field(3.0, gt=1, le=10, description="ASHA halving rate.")
    metric: str = Field(
        "loss", description="Metric the scheduler compares (reported every logEvery steps)."
    )
    mode: Literal["max", "min"] = Field("min", description="max or min for the scheduler metric.")


class Budget(ApiModel):
    """The per-trial cap: the 'smoke' budget."""

    smoke_steps: int = Field(300, ge=1, le=1_000_000, description="Train steps per trial.")
    trial_timeout_seconds: int | None = Field(
        None, ge=10, description="Stop a trial after this long (its last report counts)."
    )
    sweep_timeout_seconds: int | None = Field(
        None, ge=60, description="Stop the sweep after this long; finished trials are kept."
    )


class SweepSpec(ApiModel):
    """What to search, how, and with which budget. The operator never edits it."""

    trainer: TrainerConfig = Field(
        default_factory=TrainerConfig,  # type: ignore[arg-type]
        description="Base trainer config; each trial overrides the searched params.",
    )
    search_space: dict[str, SearchParam] = Field(
        min_length=1, description="Trainer parameter name -> distribution."
    )
    objective: Objective = Field(default_factory=Objective)  # type: ignore[arg-type]
    algorithm: Algorithm = Field(Algorithm.RANDOM, description="random, grid or tpe (Optuna).")
    scheduler: Scheduler = Field(default_factory=Scheduler)  # type: ignore[arg-type]
    max_trials: int = Field(
        5, ge=1, le=MAX_TRIALS_LIMIT, description="Trials to run (grid: repeats of the grid)."
    )
    max_concurrent_trials: int = Field(1, ge=1, le=MAX_TRIALS_LIMIT, description="Trials at once.")
    max_failed_trials: int = Field(
        0, ge=0, description="Failed trials tolerated before the sweep fails."
    )
    budget: Budget = Field(default_factory=Budget)  # type: ignore[arg-type]
    resources: TrialResources = Field(default_factory=TrialResources)  # type: ignore[arg-type]
    cluster: ClusterSpec = Field(default_factory=ClusterSpec)  # type: ignore[arg-type]
    storage: str = Field(
        DEFAULT_STORAGE, description="Store URI for trial results: file://, s3:// or gs://."
    )
    seed: int = Field(0, ge=0, description="Seed of the search algorithm.")

    @field_validator("search_space")
    @classmethod
    def _known_params(cls, value: dict[str, SearchParam]) -> dict[str, SearchParam]:
        out: dict[str, SearchParam] = {}
        for key, param in value.items():
            out[searchable_name(key)] = param
        return out

    @field_validator("storage")
    @classmethod
    def _storage_scheme(cls, value: str) -> str:
        if not value.startswith(("file://", "s3://", "gs://")):
            raise ValueError("storage must start with file://, s3:// or gs://")
        return value

    @model_validator(mode="after")
    def _cross_field(self) -> SweepSpec:
        if self.max_concurrent_trials > self.max_trials:
            raise ValueError(
                f"maxConcurrentTrials ({self.max_concurrent_trials}) exceeds maxTrials "
                f"({self.max_trials})"
            )
        if self.algorithm is Algorithm.TPE and any(
            p.type is Distribution.GRID for p in self.search_space.values()
        ):
            raise ValueError("grid parameters need algorithm: grid or random, not tpe")
        if self.algorithm is Algorithm.GRID and any(
            p.type not in {Distribution.GRID, Distribution.CHOICE}
            for p in self.search_space.values()
        ):
            raise ValueError("algorithm grid needs every searchSpace entry to be grid or choice")
        return self

    def trial_config(self, params: dict[str, Any]) -> TrainerConfig:
        """The trainer config of one trial: base config, searched params, smoke cap."""
        config = self.trainer.with_params(params)
        return config.model_copy(update={"max_steps": self.budget.smoke_steps})


class TrialSummary(ApiModel):
    """One trial as shown in status (kubectl describe)."""

    id: str
    params: dict[str, Any] = Field(default_factory=dict)
    primary_score: float | None = None
    state: TrialState = TrialState.PENDING
    steps: int | None = None


class BestTrial(ApiModel):
    id: str
    params: dict[str, Any] = Field(default_factory=dict)
    primary_score: float | None = None


class SweepStatus(ApiModel):
    """Written only by the operator (or the local runner) through the status subresource."""

    phase: Phase = Phase.PENDING
    message: str | None = None
    conditions: list[Condition] = Field(default_factory=list)
    observed_generation: int | None = None
    ray_job_name: str | None = None
    trials: list[TrialSummary] = Field(default_factory=list)
    trials_total: int = 0
    trials_completed: int = 0
    trials_failed: int = 0
    trials_running: int = 0
    trials_progress: str | None = Field(None, description="'completed/total' for kubectl get.")
    best_trial: BestTrial | None = None
    primary_score: float | None = None
    results_uri: str | None = None
    start_time: datetime | None = None
    completion_time: datetime | None = None


class Sweep(ApiModel):
    """A full Sweep manifest as applied with kubectl."""

    api_version: Literal["tunixrt.io/v1alpha1"] = API_VERSION
    kind: Literal["Sweep"] = "Sweep"
    metadata: ObjectMeta
    spec: SweepSpec
    status: SweepStatus | None = None
