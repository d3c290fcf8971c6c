"""What every trainer backend is given and gives back (the run, its outcome, the trial's
result, the model's source, the deadline error): shared here so no backend imports another."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tunix_rt.api.trainer import TrainerConfig
from tunix_rt.scoring import PRIMARY_SCORE
from tunix_rt.train.data import DatasetInfo
from tunix_rt.train.eval_rows import EvalRow

Report = Callable[[dict[str, float]], None]
Log = Callable[[str], None]


class TrainingTimeout(TimeoutError):
    """``run_trial`` passed its deadline: ``step`` of ``max_steps`` train steps were
    dispatched (the device may still be finishing the last few) after ``elapsed_seconds``
    of run_trial; ``before_eval`` when training was complete but the final evaluation had
    not started."""

    def __init__(
        self, step: int, max_steps: int, elapsed_seconds: float, *, before_eval: bool = False
    ) -> None:
        self.step = step
        self.max_steps = max_steps
        self.elapsed_seconds = elapsed_seconds
        self.before_eval = before_eval
        where = "before the final evaluation" if before_eval else "in training"
        super().__init__(
            f"deadline reached at step {step} of {max_steps} ({where}) after "
            f"{elapsed_seconds:.0f} s"
        )


class ModelSource(BaseModel):
    """Where a backend's model came from: what the run manifest records about it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Config name, e.g. gemma3-1b or char-transformer-L2-W128.")
    config: dict[str, Any] = Field(description="The model config the backend built.")
    checkpoint: str | None = Field(None, description="Weights URI or path; None: random init.")
    checkpoint_sha256: str | None = Field(None, description="Digest of the weights read.")
    random_init: bool = Field(description="True when no checkpoint was loaded.")
    versions: dict[str, str] = Field(
        default_factory=dict, description="Library versions, e.g. google-tunix, qwix."
    )


class TrainResult(BaseModel):
    """Everything one trial produced; snake_case JSON (eval rows feed compute_primary_score)."""

    model_config = ConfigDict(extra="forbid")

    primary_score: float | None = Field(description="compute_primary_score over the final eval.")
    metrics: dict[str, float] = Field(description="Final eval metrics, final loss, throughput.")
    eval_rows: list[EvalRow] = Field(description="Every final eval row with its output and score.")
    history: list[dict[str, float]] = Field(
        description="Every report, in order: the learning curve."
    )
    steps: int = Field(description="Train steps completed.")
    wall_seconds: float = Field(description="Wall time of run_trial, compile and eval included.")
    dataset: DatasetInfo
    devices: list[str] = Field(description="The JAX devices the batch was split over.")
    config: dict[str, Any] = Field(description="The TrainerConfig used, wire (camelCase) form.")
    model_id: str = Field(description="e.g. tunix-rt/char-transformer-L2-W128.")
    backend: str = Field("builtin", description="The trainer.backend that ran.")
    model_source: ModelSource | None = Field(
        None, description="Checkpoint, digest and versions (None for the built-in trainer)."
    )


@dataclass(frozen=True)
class Run:
    """One trial as a backend's ``train`` function gets it (``backends.run_trial`` made it)."""

    config: TrainerConfig
    tell: Report
    """Step metrics (a dict with ``step``) as training goes."""
    say: Log
    checkpoint_dir: str | None
    deadline: float | None
    """A ``time.monotonic()`` instant, or None: no limit."""
    started: float
    """``time.perf_counter()`` when the run began."""


@dataclass(frozen=True)
class Outcome:
    """What a backend's training produced; ``backends.run_trial`` makes it a TrainResult."""

    primary_score: float | None
    metrics: dict[str, float]
    eval_rows: list[EvalRow]
    history: list[dict[str, float]]
    steps: int
    dataset: DatasetInfo
    devices: list[str]
    model_id: str
    model_source: ModelSource | None = None


def progress_line(metrics: dict[str, float], total: int) -> str:
    """The log line of a step report, the same for every backend that trains in steps."""
    line = (
        f"step {metrics['step']:.0f}/{total} loss {metrics['loss']:.4f} "
        f"lr {metrics['learning_rate']:.2e} {metrics['steps_per_second']:.1f} steps/s"
    )
    if PRIMARY_SCORE in metrics:
        line += f" primary_score {metrics[PRIMARY_SCORE]:.4f} on {metrics['eval_rows']:.0f} rows"
    return line
