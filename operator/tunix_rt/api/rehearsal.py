"""The Rehearsal resource: one full training + evaluation run that leaves evidence."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, ConfigDict, Field, ValidationInfo, model_validator

from tunix_rt.api.base import ApiModel, cel, cel_rules, field_error, refuse
from tunix_rt.api.cluster import ClusterSpec, cluster_field
from tunix_rt.api.common import (
    NAME_PATTERN,
    Resource,
    RunStatus,
    check_name,
    check_storage,
    queue_field,
    storage_field,
)
from tunix_rt.api.names import SOURCE_SWEEP_ANNOTATION, SOURCE_TRIAL_ANNOTATION
from tunix_rt.api.placement import check_placement_here
from tunix_rt.api.secrets import refuse_credentials
from tunix_rt.api.trainer import TrainerConfig, check_overrides, trainer_field_names
from tunix_rt.api.trial_shape import TrialResources, resources_field


class EvidenceOptions(ApiModel):
    """What the evidence bundle contains."""

    package: bool = Field(True, description="Also build the submission zip.")
    include_eval_rows: bool = Field(True, description="Write eval_rows.jsonl (capped traces).")
    report: bool = Field(True, description="Write report.html.")


class RehearsalSpec(ApiModel):
    """A fixed config: inline, or the best trial of a finished Sweep."""

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            cel(
                "has(self.trainer) != has(self.fromSweep)",
                "set exactly one of trainer or fromSweep",
                ".fromSweep",
            ),
        )
    )

    trainer: TrainerConfig | None = Field(None, description="Inline trainer config.")
    from_sweep: Annotated[str, AfterValidator(check_name)] | None = Field(
        None,
        min_length=1,
        max_length=253,
        description="Name of a Sweep in this namespace whose best trial to rehearse.",
        json_schema_extra={"pattern": NAME_PATTERN},  # the API server checks it too
    )
    overrides: dict[str, Any] | None = Field(
        None,
        max_length=64,
        description="Params applied on top (e.g. a longer maxSteps than the smoke cap).",
        # The CRD declares the trainer fields as its properties (values of any shape): the
        # API server refuses another key as an unknown field. A CEL rule over the keys
        # cannot compile there (an object with unknown fields is not a map to CEL).
        json_schema_extra={
            "properties": {
                k: {"description": f"Replaces the trainer's {k}."}
                for k in sorted(trainer_field_names())
            }
        },
    )
    evidence: EvidenceOptions = Field(
        default_factory=EvidenceOptions,
        description="What the evidence bundle contains.",
    )
    resources: TrialResources = resources_field("the run")
    cluster: ClusterSpec = cluster_field()
    storage: str = storage_field("the evidence bundle")
    queue_name: str | None = queue_field()
    timeout_seconds: int | None = Field(
        None,
        ge=60,
        description=(
            "Wall-clock limit of the run, counted from its start: checked before every "
            "train step and before the final evaluation; past it the run fails and its "
            "log goes to the store's failed/ folder. The RayJob's activeDeadlineSeconds "
            "is this plus the operator's deadline grace."
        ),
    )

    @model_validator(mode="before")
    @classmethod
    def _no_credentials(cls, data: Any) -> Any:
        """Credentials anywhere in the spec are refused first (issue 23)."""
        return refuse_credentials(data)

    @model_validator(mode="after")
    def _one_source(self, info: ValidationInfo) -> RehearsalSpec:
        check_storage("storage", self.storage)
        if (self.trainer is None) == (self.from_sweep is None):
            raise field_error("fromSweep", "set exactly one of trainer or fromSweep")
        # The run applies the overrides with TrainerConfig.with_overrides: check them now
        # (against the inline trainer, or as far as possible before the Sweep is known).
        refuse(check_overrides(self.overrides, self.trainer, "overrides"), self.overrides)
        check_placement_here(self, info)
        return self


class RehearsalStatus(RunStatus):
    """Mirrors the run; lists the evidence it left."""

    ray_job_name: str | None = Field(None, description="The owned RayJob running the rehearsal.")
    source_sweep: str | None = Field(None, description="Sweep whose best trial is rehearsed.")
    source_trial: str | None = Field(None, description="That sweep's best trial id.")
    params: dict[str, Any] | None = Field(None, description="Params taken from the sweep.")
    primary_score: float | None = Field(None, description="primary_score of the full run.")
    evidence_uri: str | None = Field(None, description="Folder of the evidence bundle.")
    bundle_uri: str | None = Field(None, description="The packaged zip.")
    evidence_files: list[str] = Field(
        default_factory=list, description="URIs of every evidence file."
    )
    log_uri: str | None = Field(
        None,
        description=(
            "The run's log (kaggle_output_log.txt): in the evidence folder after a success, "
            "under failed/<UTC time>/ next to failure.json after a failed run."
        ),
    )
    start_time: datetime | None = Field(None, description="When the run started.")
    completion_time: datetime | None = Field(None, description="When the run finished.")


@dataclass(frozen=True)
class SourceTrial:
    """The sweep and trial a rehearsal's config was promoted from: provenance, shown and
    recorded (status, evidence, the RayJob), never what runs."""

    sweep: str | None = None
    trial: str | None = None

    @classmethod
    def annotated(cls, annotations: Mapping[str, str] | None) -> SourceTrial:
        """What a promoted manifest's annotations name (an empty value names nothing)."""
        notes = annotations or {}
        return cls(
            notes.get(SOURCE_SWEEP_ANNOTATION) or None, notes.get(SOURCE_TRIAL_ANNOTATION) or None
        )

    def or_else(self, fallback: SourceTrial) -> SourceTrial:
        """Each of these that is given, else ``fallback``'s (flags over the file's)."""
        return SourceTrial(self.sweep or fallback.sweep, self.trial or fallback.trial)


class Rehearsal(Resource[RehearsalSpec, RehearsalStatus]):
    """A full Rehearsal manifest as applied with kubectl."""

    kind: Literal["Rehearsal"] = "Rehearsal"
