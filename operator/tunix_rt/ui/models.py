"""What each page shows, as data: the catalog (:mod:`~tunix_rt.ui.catalog`) fills these
from the store, the templates lay them out. Plain values only, so that a page is a
function of its model (and a test can look at the model without parsing HTML)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from tunix_rt.ui.config import Kind

RUNNING_PHASES = frozenset({"Pending", "Running"})
"""Phases whose pages refresh themselves."""


class FileLink(BaseModel):
    """A file of a run's folder, served by the app (``path`` relative to the folder)."""

    path: str
    size: int | None = None

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


class RunRow(BaseModel):
    """One Sweep or Rehearsal in the list."""

    kind: Kind
    namespace: str
    name: str
    phase: str
    live: bool = Field(False, description="The phase came from the Kubernetes API.")
    done: int | None = None
    planned: int | None = None
    score: float | None = None
    objective: str = "primary_score"
    accelerator_hours: float | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    message: str | None = None
    in_store: bool = True

    @property
    def running(self) -> bool:
        return self.phase in RUNNING_PHASES

    @property
    def progress(self) -> str:
        if self.done is None:
            return ""
        return f"{self.done} / {self.planned}" if self.planned else str(self.done)

    @property
    def href(self) -> str:
        kind = "sweeps" if self.kind == "Sweep" else "rehearsals"
        return f"/{kind}/{self.namespace}/{self.name}"


class TrialRow(BaseModel):
    """One trial of a sweep: the table row, the charts' mark, the trial page's facts."""

    trial_id: str
    state: str
    score: float | None = Field(None, description="The sweep objective's value.")
    primary_score: float | None = None
    steps: int = 0
    wall_seconds: float = 0.0
    accelerator_hours: float = 0.0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, float] = Field(default_factory=dict)
    curve: list[dict[str, float]] = Field(default_factory=list)
    best: bool = False
    backend: str | None = None
    reused_from: str | None = Field(
        None, description="The earlier sweep a warm start took this trial from (not run here)."
    )
    preemptions: int = Field(0, description="Lost workers it resumed after (checkpoints).")
    lost_steps: int = Field(0, description="Steps re-done after those losses.")


class Goal(BaseModel):
    """The objective and the budgets, as the spec (or the summary) states them."""

    metric: str = "primary_score"
    mode: str = "max"
    goal: float | None = None
    smoke_steps: int | None = None
    trial_timeout_seconds: int | None = None
    sweep_timeout_seconds: int | None = None
    accelerator_hours: float | None = None
    wall_clock_seconds: int | None = None
    max_failed_trials: int | None = None
    algorithm: str | None = None
    search_space: dict[str, Any] = Field(default_factory=dict)


class Verification(BaseModel):
    """What checking the bundle found (``verify_zip``): files, and errors if any."""

    bundle: str
    ok: bool
    files: int
    errors: list[str] = Field(default_factory=list)


class SweepView(BaseModel):
    """A sweep's page."""

    row: RunRow
    goal: Goal
    trials: list[TrialRow]
    reason: str | None = None
    wall_seconds: float | None = None
    evidence: list[FileLink] = Field(default_factory=list)
    logs: list[FileLink] = Field(default_factory=list)
    bundle: FileLink | None = None
    verification: Verification | None = None
    problems: list[str] = Field(default_factory=list)
    last_seen: datetime | None = Field(None, description="The driver's last sign of life.")
    summary_uri: str | None = None
    rehearsals: dict[str, list[str]] = Field(
        default_factory=dict, description="Trial id -> rehearsals promoted from it."
    )

    @property
    def param_names(self) -> list[str]:
        return sorted({name for trial in self.trials for name in trial.params})

    @property
    def failed(self) -> list[TrialRow]:
        return [t for t in self.trials if t.state == "Failed"]

    @property
    def preemptions(self) -> int:
        """Every trial's lost workers: a preemption is a resume, never a failure."""
        return sum(t.preemptions for t in self.trials)

    @property
    def finished(self) -> bool:
        return self.summary_uri is not None


class EvalRow(BaseModel):
    """One eval row: the prompt, the model's trace and answer, the judgement."""

    index: int | None = None
    prompt: str = ""
    expected: str = ""
    answer: str = ""
    output: str = ""
    correct: bool | None = None
    format_valid: bool | None = None
    hit_cap: bool | None = None
    clipped: bool = False


class EvalSample(BaseModel):
    """The first eval rows of a run, and where they come from."""

    source: str = Field(description="Whose rows: the rehearsal's name.")
    href: str
    rows: list[EvalRow]
    total: int | None = Field(None, description="Rows in the file (None: not all read).")


class TrialView(BaseModel):
    """A trial's page."""

    sweep: RunRow
    trial: TrialRow
    objective: str
    sample: EvalSample | None = None


class Failure(BaseModel):
    """A failed attempt of a rehearsal (its failure.json)."""

    folder: str
    reason: str
    message: str
    ended_at: datetime | None = None


class RehearsalView(BaseModel):
    """A rehearsal's page."""

    row: RunRow
    manifest: dict[str, Any] = Field(default_factory=dict)
    summary: dict[str, Any] = Field(default_factory=dict)
    files: list[FileLink] = Field(default_factory=list)
    bundle: FileLink | None = None
    failures: list[Failure] = Field(default_factory=list)
    sample: EvalSample | None = None
    verification: Verification | None = Field(None, description="None: not checked.")
    problems: list[str] = Field(default_factory=list)

    @property
    def source(self) -> dict[str, Any]:
        source = self.manifest.get("source")
        return source if isinstance(source, dict) else {}
