"""The Sweep resource: a Ray Tune search over trainer hyperparameters."""

from __future__ import annotations

import math
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, ConfigDict, Field, ValidationError, model_validator

from tunix_rt.api.base import ApiModel, cel, cel_rules, field_error
from tunix_rt.api.common import (
    ClusterSpec,
    Resource,
    RunStatus,
    TrialResources,
    check_storage,
    cluster_field,
    resources_field,
    storage_field,
)
from tunix_rt.api.trainer import TrainerConfig, wire_param_name
from tunix_rt.api.trial import TrialState
from tunix_rt.scoring import PRIMARY_SCORE

MAX_TRIALS_LIMIT = 200
MAX_SEARCH_PARAMS = 32


class Distribution(StrEnum):
    UNIFORM = "uniform"
    LOGUNIFORM = "loguniform"
    RANDINT = "randint"
    CHOICE = "choice"
    GRID = "grid"


RANGED = frozenset({Distribution.UNIFORM, Distribution.LOGUNIFORM, Distribution.RANDINT})
_RANGED_CEL = "self.type in ['uniform', 'loguniform', 'randint']"


class SearchParam(ApiModel):
    """A distribution over one trainer parameter: bounds for ranges, values for choice/grid."""

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            cel(
                f"{_RANGED_CEL} ? (has(self.low) && has(self.high) && !has(self.values))"
                " : (has(self.values) && !has(self.low) && !has(self.high))",
                "uniform, loguniform and randint take low and high; choice and grid take values",
            ),
            cel(
                "!has(self.low) || !has(self.high) || self.low < self.high",
                "low must be less than high",
                ".low",
            ),
            cel(
                "self.type != 'loguniform' || !has(self.low) || self.low > 0.0",
                "loguniform needs low > 0",
                ".low",
            ),
        )
    )

    type: Distribution = Field(
        description="uniform, loguniform (log scale), randint (integers in [low, high)), "
        "choice (one of values, sampled) or grid (every value, enumerated)."
    )
    low: float | None = Field(None, description="Lower bound (uniform, loguniform, randint).")
    high: float | None = Field(
        None, description="Upper bound (uniform, loguniform; randint: exclusive)."
    )
    values: list[Any] | None = Field(
        None, min_length=1, max_length=1000, description="Candidates (choice, grid)."
    )

    @model_validator(mode="after")
    def _shape(self) -> SearchParam:
        kind = self.type.value
        if self.type in RANGED:
            for name, value in (("low", self.low), ("high", self.high)):
                if value is None:
                    raise field_error(name, f"type {kind} needs low and high")
            if self.values is not None:
                raise field_error("values", f"type {kind} takes low/high, not values", self.values)
            assert self.low is not None and self.high is not None
            if not self.low < self.high:
                raise field_error(
                    "low", f"low ({self.low:g}) must be less than high ({self.high:g})", self.low
                )
            if self.type is Distribution.LOGUNIFORM and self.low <= 0:
                raise field_error("low", "loguniform needs low > 0", self.low)
            if self.type is Distribution.RANDINT:
                for name, value in (("low", self.low), ("high", self.high)):
                    if not float(value).is_integer():
                        raise field_error(name, "randint bounds must be integers", value)
        else:
            if not self.values:
                raise field_error("values", f"type {kind} needs a non-empty values list")
            for name, value in (("low", self.low), ("high", self.high)):
                if value is not None:
                    raise field_error(name, f"type {kind} takes values, not low/high", value)
            for index, value in enumerate(self.values):
                if not isinstance(value, str | int | float | bool):
                    raise field_error(
                        f"values.{index}", "values must be scalars (number, string, bool)", value
                    )
        return self

    def candidates(self) -> list[Any]:
        """Values that bound what the sweep can try (for up-front validation)."""
        if self.values is not None:
            return list(self.values)
        assert self.low is not None and self.high is not None
        if self.type is Distribution.RANDINT:
            return [int(self.low), int(self.high) - 1]
        return [self.low, self.high]


class Objective(ApiModel):
    """What the search algorithm optimises and which trial is best."""

    metric: str = Field(
        PRIMARY_SCORE,
        min_length=1,
        description="Metric the search optimises (primary_score: mean answer correctness).",
    )
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

    type: SchedulerType = Field(
        SchedulerType.FIFO,
        description="fifo (run every trial to the end), asha (successive halving) or "
        "median (median stopping rule).",
    )
    grace_period: int = Field(
        50, ge=1, description="Steps a trial always runs before it may be stopped."
    )
    reduction_factor: float = Field(3.0, gt=1, le=10, description="ASHA halving rate.")
    metric: str = Field(
        "loss",
        min_length=1,
        description="Metric the scheduler compares (loss is reported every logEvery steps).",
    )
    mode: Literal["max", "min"] = Field("min", description="max or min for the scheduler metric.")


class Budget(ApiModel):
    """The per-trial cap: the 'smoke' budget."""

    smoke_steps: int = Field(
        300, ge=1, le=1_000_000, description="Train steps per trial (overrides trainer.maxSteps)."
    )
    trial_timeout_seconds: int | None = Field(
        None, ge=10, description="Stop a trial after this long (its last report counts)."
    )
    sweep_timeout_seconds: int | None = Field(
        None, ge=60, description="Stop the sweep after this long; finished trials are kept."
    )


def _search_key(key: str) -> str:
    return wire_param_name(key)


SearchKey = Annotated[str, AfterValidator(_search_key)]


class SweepSpec(ApiModel):
    """What to search, how, and with which budget. The operator never edits it."""

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            cel(
                "!has(self.maxConcurrentTrials) || self.maxConcurrentTrials <= "
                "(has(self.maxTrials) ? self.maxTrials : 5)",
                "maxConcurrentTrials must not exceed maxTrials",
                ".maxConcurrentTrials",
            ),
            cel(
                "!has(self.algorithm) || self.algorithm != 'tpe' || "
                "self.searchSpace.all(k, self.searchSpace[k].type != 'grid')",
                "grid parameters need algorithm grid or random, not tpe",
                ".algorithm",
            ),
            cel(
                "!has(self.algorithm) || self.algorithm != 'grid' || "
                "self.searchSpace.all(k, self.searchSpace[k].type in ['grid', 'choice'])",
                "algorithm grid needs every searchSpace entry to be grid or choice",
                ".algorithm",
            ),
        )
    )

    trainer: TrainerConfig = Field(
        default_factory=TrainerConfig,
        description="Base trainer config (model size, dataset, eval set, guardrails); "
        "each trial overrides the searched params.",
    )
    search_space: dict[SearchKey, SearchParam] = Field(
        min_length=1,
        max_length=MAX_SEARCH_PARAMS,
        description="Trainer parameter name (e.g. learningRate) -> distribution.",
    )
    objective: Objective = Field(
        default_factory=Objective,
        description="Metric and direction that pick the best trial.",
    )
    algorithm: Algorithm = Field(
        Algorithm.RANDOM, description="random, grid or tpe (Optuna's TPE sampler)."
    )
    scheduler: Scheduler = Field(
        default_factory=Scheduler,
        description="Early stopping of trials (fifo: none).",
    )
    max_trials: int = Field(
        5,
        ge=1,
        le=MAX_TRIALS_LIMIT,
        description="Trials to run. With grid entries: the grid is repeated "
        "maxTrials // gridPoints times (at least once).",
    )
    max_concurrent_trials: int = Field(1, ge=1, le=MAX_TRIALS_LIMIT, description="Trials at once.")
    max_failed_trials: int = Field(
        0,
        ge=0,
        le=MAX_TRIALS_LIMIT,
        description="Failed trials tolerated; one more stops the sweep and fails it.",
    )
    budget: Budget = Field(
        default_factory=Budget,
        description="Per-trial step cap and time budgets.",
    )
    resources: TrialResources = resources_field("one trial")
    cluster: ClusterSpec = cluster_field()
    storage: str = storage_field("trial results")
    seed: int = Field(0, ge=0, description="Seed of the search algorithm.")

    @model_validator(mode="after")
    def _cross_field(self) -> SweepSpec:
        check_storage("storage", self.storage)
        if self.max_concurrent_trials > self.max_trials:
            raise field_error(
                "maxConcurrentTrials",
                f"maxConcurrentTrials ({self.max_concurrent_trials}) exceeds maxTrials "
                f"({self.max_trials})",
                self.max_concurrent_trials,
            )
        types = {key: p.type for key, p in self.search_space.items()}
        if self.algorithm is Algorithm.TPE:
            for key, kind in types.items():
                if kind is Distribution.GRID:
                    raise field_error(
                        "algorithm",
                        f"searchSpace.{key} is a grid; grid parameters need algorithm grid or "
                        "random, not tpe",
                        self.algorithm.value,
                    )
        if self.algorithm is Algorithm.GRID:
            for key, kind in types.items():
                if kind not in {Distribution.GRID, Distribution.CHOICE}:
                    raise field_error(
                        "algorithm",
                        f"algorithm grid needs every searchSpace entry to be grid or choice; "
                        f"searchSpace.{key} is {kind.value}",
                        self.algorithm.value,
                    )
        points = self.grid_points()
        if points > self.max_trials:
            raise field_error(
                "maxTrials",
                f"the grid has {points} points, more than maxTrials ({self.max_trials}); "
                f"raise maxTrials to at least {points}",
                self.max_trials,
            )
        for key, param in self.search_space.items():
            for value in param.candidates():
                try:
                    self.trainer.with_params({key: value})
                except ValidationError as exc:
                    msg = exc.errors()[0]["msg"]
                    where = "values" if param.values is not None else "low/high"
                    raise field_error(
                        f"searchSpace.{key}",
                        f"{where} include {value!r}, which the trainer rejects: {msg}",
                        value,
                    ) from None
        return self

    def grid_keys(self) -> list[str]:
        """Params enumerated exhaustively: grid entries, and choice entries of a grid search."""
        enumerated = {Distribution.GRID}
        if self.algorithm is Algorithm.GRID:
            enumerated.add(Distribution.CHOICE)
        return [k for k, p in self.search_space.items() if p.type in enumerated]

    def grid_points(self) -> int:
        """Size of the grid (1 when nothing is enumerated)."""
        return math.prod(len(self.search_space[k].values or []) for k in self.grid_keys())

    def samples(self) -> int:
        """Ray Tune ``num_samples``: trials, or repeats of the grid when there is one."""
        if not self.grid_keys():
            return self.max_trials
        return max(1, self.max_trials // self.grid_points())

    def planned_trials(self) -> int:
        """How many trials the sweep runs in all (status: trialsTotal)."""
        return self.samples() * self.grid_points()

    def trial_config(self, params: dict[str, Any]) -> TrainerConfig:
        """The trainer config of one trial: base config, searched params, smoke cap."""
        config = self.trainer.with_params(params)
        return config.model_copy(update={"max_steps": self.budget.smoke_steps})


class TrialSummary(ApiModel):
    """One trial as shown in status (kubectl describe)."""

    id: str = Field(description="Trial id (Ray Tune), also the name of its result file.")
    params: dict[str, Any] = Field(default_factory=dict, description="Searched params.")
    primary_score: float | None = Field(None, description="The trial's primary_score.")
    state: TrialState = Field(
        TrialState.PENDING, description="Pending, Running, Succeeded, Stopped or Failed."
    )
    steps: int | None = Field(None, description="Train steps completed.")


class BestTrial(ApiModel):
    """The best finished trial by the sweep objective."""

    id: str = Field(description="Trial id.")
    params: dict[str, Any] = Field(default_factory=dict, description="Its searched params.")
    primary_score: float | None = Field(None, description="Its primary_score.")


class SweepStatus(RunStatus):
    """Written only by the operator (or the local runner) through the status subresource."""

    ray_job_name: str | None = Field(None, description="The owned RayJob running the sweep.")
    trials: list[TrialSummary] = Field(default_factory=list, description="Every trial so far.")
    trials_total: int = Field(0, description="Trials the sweep will run in all.")
    trials_completed: int = Field(0, description="Trials finished (succeeded or stopped).")
    trials_failed: int = Field(0, description="Trials that failed.")
    trials_running: int = Field(0, description="Trials running now.")
    trials_progress: str | None = Field(None, description="'completed/total' for kubectl get.")
    best_trial: BestTrial | None = Field(None, description="The best trial so far.")
    primary_score: float | None = Field(None, description="The best trial's primary_score.")
    results_uri: str | None = Field(None, description="Where trial results and summary live.")
    evidence_uri: str | None = Field(
        None, description="Evidence folder of the finished sweep (manifest, report, trials)."
    )
    bundle_uri: str | None = Field(None, description="The finished sweep's evidence zip.")
    start_time: datetime | None = Field(None, description="When the sweep started running.")
    completion_time: datetime | None = Field(None, description="When the sweep finished.")


class Sweep(Resource[SweepSpec, SweepStatus]):
    """A full Sweep manifest as applied with kubectl."""

    kind: Literal["Sweep"] = "Sweep"
