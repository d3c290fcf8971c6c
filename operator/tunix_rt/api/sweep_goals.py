"""What a sweep optimises (and the goal that ends it), which trials a scheduler stops early,
and the budgets that bound trials and the whole sweep."""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from tunix_rt.api.base import ApiModel, cel, cel_list, cel_rules, field_error, refuse, unset
from tunix_rt.api.sweep_effect import (
    BUDGET_RULES,
    SCHEDULER_RULES,
    budget_problems,
    scheduler_problems,
)
from tunix_rt.api.trial_metrics import (
    FINAL_METRICS,
    REPORTED_METRICS,
    SCHEDULER_METRICS,
    backend_metrics_note,
)
from tunix_rt.scoring import PRIMARY_SCORE


class Objective(ApiModel):
    """What the search algorithm optimises and which trial is best."""

    model_config = ConfigDict(
        allow_inf_nan=False,
        json_schema_extra=cel_rules(
            cel(
                f"!has(self.metric) || self.metric in {cel_list(REPORTED_METRICS)}",
                "the trainer does not report this metric; use one of "
                + ", ".join(REPORTED_METRICS),
                ".metric",
            )
        ),
    )

    metric: str = Field(
        PRIMARY_SCORE,
        min_length=1,
        description="Metric the search optimises (primary_score: mean answer correctness; "
        f"{backend_metrics_note()}).",
    )
    mode: Literal["max", "min"] = Field("max", description="max or min.")
    goal: float | None = Field(
        None,
        description="End the sweep as soon as a trial reaches this value of metric (at "
        "least it for max, at most for min); the sweep Succeeds with reason GoalReached.",
    )

    def reached(self, value: float | None) -> bool:
        """Whether ``value`` of the metric reaches :attr:`goal` (never without a goal)."""
        if self.goal is None or value is None or not math.isfinite(value):
            return False
        return value >= self.goal if self.mode == "max" else value <= self.goal

    @model_validator(mode="after")
    def _reported(self) -> Objective:
        if self.metric not in REPORTED_METRICS:
            raise field_error(
                "metric",
                f"the trainer does not report {self.metric!r}; use one of "
                f"{', '.join(REPORTED_METRICS)} (primary_score: mean answer correctness)",
                self.metric,
            )
        return self


class SchedulerType(StrEnum):
    FIFO = "fifo"
    ASHA = "asha"
    MEDIAN = "median"
    PBT = "pbt"


class Scheduler(ApiModel):
    """Early stopping of bad trials, on the metrics trials report while they train."""

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            cel(
                "!has(self.metric) || self.metric in "
                f"{cel_list(SCHEDULER_METRICS)} || "
                f"((!has(self.type) || self.type == 'fifo') && self.metric in "
                f"{cel_list(FINAL_METRICS)})",
                "early stopping compares a metric reported while trials train; use one of "
                f"{', '.join(SCHEDULER_METRICS)}",
                ".metric",
            ),
            *SCHEDULER_RULES,
        )
    )

    type: SchedulerType = Field(
        SchedulerType.FIFO,
        description="fifo (run every trial to the end), asha (successive halving), "
        "median (median stopping rule) or pbt (population-based training: weak trials "
        "continue from strong trials' checkpoints with mutated params).",
    )
    grace_period: int = Field(
        50, ge=1, description="Steps a trial always runs before it may be stopped."
    )
    reduction_factor: float = Field(3.0, gt=1, le=10, description="ASHA halving rate.")
    metric: str = Field(
        "loss",
        min_length=1,
        description="Metric the scheduler compares (loss is reported every logEvery steps; "
        f"{backend_metrics_note()}).",
    )
    mode: Literal["max", "min"] = Field("min", description="max or min for the scheduler metric.")
    perturbation_interval: int | None = unset(
        "pbt: steps between exploit/explore decisions (a multiple of trainer.checkpointEvery).",
        ge=1,
    )
    quantile_fraction: float | None = unset(
        "pbt: the bottom fraction of trials that copy the top fraction (0.25).", gt=0, le=0.5
    )
    resample_probability: float | None = unset(
        "pbt: chance a mutated param is resampled instead of scaled (0.25).", ge=0, le=1
    )
    synchronous: bool | None = unset(
        "pbt: false (the default) decides as each trial reports, so the order "
        "trials report in (timing) picks who copies whom; true decides every perturbation "
        "once all trials have reached it (pausing and restoring each one there), so the "
        "decisions no longer depend on timing. Mutations are drawn from spec.seed either way.",
    )

    @model_validator(mode="after")
    def _reported_while_training(self) -> Scheduler:
        if self.metric in SCHEDULER_METRICS:
            return self
        if self.metric in FINAL_METRICS:
            if self.type is SchedulerType.FIFO:
                return self
            why = f"{self.metric!r} is reported only when a trial ends, so {self.type.value} "
            why += "never compares it"
        else:
            why = f"the trainer does not report {self.metric!r}"
        raise field_error(
            "metric",
            f"{why}; use one of {', '.join(SCHEDULER_METRICS)} (loss: reported every "
            "trainer.logEvery steps)",
            self.metric,
        )

    @model_validator(mode="after")
    def _read_by_type(self) -> Scheduler:
        refuse(scheduler_problems(self))
        return self


class Budget(ApiModel):
    """The caps: per trial (the 'smoke' budget) and for the whole sweep (time, hours)."""

    model_config = ConfigDict(json_schema_extra=cel_rules(*BUDGET_RULES))

    smoke_steps: int = Field(
        300, ge=1, le=1_000_000, description="Train steps per trial (overrides trainer.maxSteps)."
    )
    trial_timeout_seconds: int | None = Field(
        None, ge=10, description="Stop a trial after this long (its last report counts)."
    )
    sweep_timeout_seconds: int | None = Field(
        None, ge=60, description="Stop the sweep after this long; finished trials are kept."
    )
    accelerator_hours: float | None = Field(
        None,
        gt=0,
        le=1_000_000,
        description="Cap on accelerator-hours for the whole sweep, across retries: each "
        "trial counts its devices (GPUs, or TPU chips; 1 for a CPU-only trial) times its "
        "wall hours. No trial starts once the next would pass it; running trials stop at "
        "it; the sweep then Succeeds with reason BudgetExhausted.",
    )
    wall_clock_seconds: int | None = Field(
        None,
        ge=1,
        description="Cap on the sweep's wall-clock time, summed over every attempt (a "
        "resumed sweep counts the time earlier attempts ran); ends like acceleratorHours.",
    )

    @model_validator(mode="after")
    def _reachable(self) -> Budget:
        refuse(budget_problems(self))
        return self
