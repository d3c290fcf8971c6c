"""The Rehearsal resource: one full training + evaluation run that leaves evidence."""

from __future__ import annotations

from datetime import datetime
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
from tunix_rt.api.trainer import TrainerConfig


class EvidenceOptions(ApiModel):
    package: bool = Field(True, description="Also build the submission zip.")
    include_eval_rows: bool = Field(True, description="Write eval_rows.jsonl (capped traces).")
    report: bool = Field(True, description="Write report.html.")


class RehearsalSpec(ApiModel):
    """A fixed config: inline, or the best trial of a finished Sweep."""

    trainer: TrainerConfig | None = Field(None, description="Inline trainer config.")
    from_sweep: str | None = Field(
        None, description="Name of a Sweep in this namespace whose best trial to rehearse."
    )
    overrides: dict[str, Any] | None = Field(
        None, description="Params applied on top (e.g. a longer maxSteps than the smoke cap)."
    )
    evidence: EvidenceOptions = Field(default_factory=EvidenceOptions)  # type: ignore[arg-type]
    resources: TrialResources = Field(default_factory=TrialResources)  # type: ignore[arg-type]
    cluster: ClusterSpec = Field(default_factory=ClusterSpec)  # type: ignore[arg-type]
    storage: str = Field(DEFAULT_STORAGE, description="Store URI for the evidence bundle.")
    timeout_seconds: int | None = Field(None, ge=60, description="Stop the run after this long.")

    @field_validator("storage")
    @classmethod
    def _storage_scheme(cls, value: str) -> str:
        if not value.startswith(("file://", "s3://", "gs://")):
            raise ValueError("storage must start with file://, s3:// or gs://")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> RehearsalSpec:
        if (self.trainer is None) == (self.from_sweep is None):
            raise ValueError("set exactly one of trainer or fromSweep")
        return self


class RehearsalStatus(ApiModel):
    phase: Phase = Phase.PENDING
    message: str | None = None
    conditions: list[Condition] = Field(default_factory=list)
    observed_generation: int | None = None
    ray_job_name: str | None = None
    source_sweep: str | None = None
    source_trial: str | None = None
    params: dict[str, Any] | None = None
    primary_score: float | None = None
    evidence_uri: str | None = None
    bundle_uri: str | None = None
    evidence_files: list[str] = Field(default_factory=list)
    start_time: datetime | None = None
    completion_time: datetime | None = None


class Rehearsal(ApiModel):
    api_version: Literal["tunixrt.io/v1alpha1"] = API_VERSION
    kind: Literal["Rehearsal"] = "Rehearsal"
    metadata: ObjectMeta
    spec: RehearsalSpec
    status: RehearsalStatus | None = None
