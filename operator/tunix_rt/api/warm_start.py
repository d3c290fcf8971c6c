"""Warm start (``spec.warmStartFrom``): an earlier sweep's trials fed to a new sweep.

The spec names the earlier sweep (``sweep``: a Sweep in the same namespace, resolved to
its results in the store) or its results directly (``uri``: the sweep's folder or its
``summary.json``). Which earlier trials fit the new sweep is decided by
:func:`tunix_rt.contract.warm_start.judge_trials`; what each algorithm does with them is
:mod:`tunix_rt.tune.warm_start`'s. The models here are the spec field, the verdicts, and
what the summary and the status say about them. Pure pydantic: no I/O.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, ConfigDict, Field, model_validator

from tunix_rt.api.base import EXACTLY_ONE_OF, ApiModel, cel, cel_rules, field_error
from tunix_rt.api.common import NAME_PATTERN, STORAGE_PATTERN, check_name, check_storage

SKIPPED_LISTED = 20
"""The most skipped trials the status names (the count is always whole)."""


class WarmStartFrom(ApiModel):
    """Where the earlier trials come from, and whether measured configs may run again."""

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            cel(
                "has(self.sweep) != has(self.uri)",
                "set exactly one of warmStartFrom.sweep (a Sweep in this namespace) or "
                "warmStartFrom.uri (its results folder or summary.json)",
            ),
        )
        | {EXACTLY_ONE_OF: ["sweep", "uri"]}
    )

    sweep: Annotated[str, AfterValidator(check_name)] | None = Field(
        None,
        min_length=1,
        max_length=253,
        description="Name of a Sweep in this namespace whose trials to reuse (the operator "
        "reads its status.resultsUri; a local run reads <storage>/local/<name>). The "
        "Sweep starts once that Sweep has finished.",
        json_schema_extra={"pattern": NAME_PATTERN},
    )
    uri: str | None = Field(
        None,
        max_length=4096,
        description="Results of an earlier sweep: its folder (file://, s3://, gs://) or "
        "its summary.json.",
        json_schema_extra={"pattern": STORAGE_PATTERN},
    )
    rerun_measured: bool = Field(
        False,
        description="Run a configuration again although an earlier trial measured it under "
        "the same trainer config and dataset (default: never; a grid skips such points).",
    )

    @model_validator(mode="after")
    def _one_source(self) -> WarmStartFrom:
        if (self.sweep is None) == (self.uri is None):
            raise field_error(
                "sweep",
                "set exactly one of warmStartFrom.sweep (a Sweep in this namespace) or "
                "warmStartFrom.uri (its results folder or summary.json)",
            )
        if self.uri is not None:
            check_storage("uri", self.uri)
        return self

    def describe(self) -> str:
        """How logs and messages name the source."""
        return f"Sweep {self.sweep}" if self.sweep else str(self.uri)


class SkipReason(StrEnum):
    """Why an earlier trial was not reused (one code per rule of the verdict)."""

    NOT_FINISHED = "NotFinished"
    FAILED = "Failed"
    STOPPED_EARLY = "StoppedEarly"
    NO_METRIC = "NoMetric"
    OUTSIDE_SPACE = "OutsideSearchSpace"
    TRAINER_CONFIG = "DifferentTrainerConfig"
    DATASET = "DifferentDataset"


class SkippedTrial(ApiModel):
    """An earlier trial the new sweep does not reuse, and why."""

    trial: str = Field(description="The earlier trial's id.")
    reason: SkipReason = Field(description="Which rule excluded it.")
    message: str = Field(description="What differs, in words (which field or parameter).")


class ReusedFrom(ApiModel):
    """Where a reused trial was measured (on a trial record copied into a new sweep)."""

    sweep: str = Field(description="The earlier sweep's name.")
    trial_id: str = Field(description="The trial's id in that sweep.")
    uri: str = Field(description="That sweep's results folder.")


class WarmStartSummary(ApiModel):
    """What a warm start reused and skipped, and what the search algorithm did with it
    (``summary.json``'s ``warmStart``; the reused trials themselves are in its trials,
    each with ``reusedFrom``)."""

    source: str = Field(description="The earlier sweep, as the spec names it.")
    uri: str = Field(description="Where its results were read.")
    rerun_measured: bool = False
    use: str = Field(description="What the search algorithm did with the reused trials.")
    reused: list[str] = Field(default_factory=list, description="Reused trial ids.")
    skipped: list[SkippedTrial] = Field(default_factory=list)
    notes: list[str] = Field(
        default_factory=list,
        description="What could not be compared (e.g. no dataset digest recorded).",
    )


class WarmStartStatus(ApiModel):
    """``status.warmStart``: a short account of the warm start (the evidence has it all)."""

    source: str = Field(description="The earlier sweep (name or URI).")
    uri: str | None = Field(None, description="Where its results were read.")
    reused: int = Field(0, description="Earlier trials fed to the search algorithm.")
    skipped: int = Field(0, description="Earlier trials not reused.")
    skipped_trials: list[SkippedTrial] = Field(
        default_factory=list,
        description=f"Which were skipped and why (at most {SKIPPED_LISTED} listed).",
    )

    @classmethod
    def of(cls, summary: WarmStartSummary) -> WarmStartStatus:
        return cls(
            source=summary.source,
            uri=summary.uri,
            reused=len(summary.reused),
            skipped=len(summary.skipped),
            skipped_trials=summary.skipped[:SKIPPED_LISTED],
        )


def warm_start_field() -> Any:
    """``spec.warmStartFrom``."""
    return Field(
        None,
        description="Reuse an earlier sweep's trials: those measured under the same trainer "
        "config and dataset, inside this searchSpace and with the objective metric are fed "
        "to the search algorithm before it proposes anything and are never run again "
        "(unless rerunMeasured); they can be the best trial and do not count toward "
        "maxTrials. status.warmStart and the evidence list what was reused and skipped.",
    )
