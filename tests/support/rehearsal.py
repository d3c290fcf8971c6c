"""Helpers for the rehearsal tests: a stand-in for tunix_rt.train.run_trial with the same
interface (fast tests of resolution, evidence and upload), and a tiny real config.

The end-to-end tests run the real trainer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from support.manifests import rehearsal_manifest
from tunix_rt.api.trainer import TrainerConfig

EVIDENCE_FILES = {
    "run_manifest.json",
    "eval_summary.json",
    "eval_rows.jsonl",
    "kaggle_output_log.txt",
    "report.html",
    "SHA256SUMS",
}
"""The files a rehearsal leaves in its output folder (the zip goes under submission/)."""


class StubTimeout(TimeoutError):
    """What a trainer raises at its deadline (as tunix_rt.train.TrainingTimeout does)."""

    def __init__(self, step: int, max_steps: int) -> None:
        super().__init__(f"deadline reached at step {step} of {max_steps}")
        self.step = step
        self.max_steps = max_steps


class FakeTrainer:
    """Records the configs it was given; rows alternate correct/incorrect (score 0.5 by default).

    Honours ``deadline`` between its (recorded) steps like the real trainer, reports each
    step, and can be slow (``step_seconds``) or fail part-way (``fail_at``)."""

    def __init__(
        self,
        rows: int = 6,
        correct_every: int = 2,
        log_lines: tuple[str, ...] = (),
        step_seconds: float = 0.0,
        fail_at: int | None = None,
    ) -> None:
        self.rows = rows
        self.correct_every = correct_every
        self.log_lines = log_lines
        self.step_seconds = step_seconds
        """Sleep per (recorded) step: a slow trainer for timeout tests."""
        self.fail_at = fail_at
        """Raise FloatingPointError after the first recorded step at or past this one."""
        self.configs: list[TrainerConfig] = []
        self.deadlines: list[float | None] = []

    def __call__(
        self,
        config: TrainerConfig,
        *,
        report: Callable[..., Any] | None = None,
        checkpoint_dir: str | None = None,
        log: Callable[[str], None] | None = None,
        deadline: float | None = None,
    ) -> Any:
        self.configs.append(config)
        self.deadlines.append(deadline)
        say = log or (lambda _m: None)
        tell = report or (lambda _m: None)
        history = []
        for step in range(0, config.max_steps + 1, max(1, config.max_steps // 4)):
            if deadline is not None and time.monotonic() >= deadline:
                raise StubTimeout(step, config.max_steps)
            if self.step_seconds:
                time.sleep(self.step_seconds)
            loss = 3.0 / (1 + step)
            history.append({"step": float(step), "loss": loss, "lr": config.learning_rate})
            say(f"step {step} loss {loss:.4f}")
            tell({"step": float(step), "loss": loss})
            if self.fail_at is not None and step >= self.fail_at:
                raise FloatingPointError(f"loss is NaN at step {step}")
        for line in self.log_lines:
            say(line)
        eval_rows: list[dict[str, Any]] = []
        for i in range(self.rows):
            ok = i % self.correct_every == 0
            answer = 2 * i if ok else -1
            eval_rows.append(
                {
                    "index": i,
                    "prompt": f"What is {i} + {i}? <script>alert(1)</script>",
                    "expected_answer": str(2 * i),
                    "output": f"<reasoning>{i}+{i}</reasoning><answer>{answer}</answer>",
                    "reasoning": f"{i}+{i}",
                    "answer": str(answer),
                    "answer_correctness": 1 if ok else 0,
                    "format_valid": True,
                    "trace_tokens": 12,
                    "hit_cap": False,
                }
            )
        score = sum(r["answer_correctness"] for r in eval_rows) / len(eval_rows)
        return SimpleNamespace(
            primary_score=score,
            metrics={"format_valid_rate": 1.0, "cap_hit_rate": 0.0, "trace_len_p50": 12.0},
            eval_rows=eval_rows,
            history=history,
            steps=config.max_steps,
            wall_seconds=0.25,
            dataset={
                "name": config.dataset.name,
                "sha256": "ab" * 32,
                "train_rows": config.dataset.train_size,
                "eval_rows": self.rows,
            },
            devices=["TFRT_CPU_0"],
            config=config.to_wire(),
            model_id=f"tunix-rt-decoder-l{config.model.layers}-w{config.model.width}",
        )


def tiny_trainer(**extra: Any) -> dict[str, Any]:
    """A small trainer config (wire form) that the real trainer runs in seconds."""
    base: dict[str, Any] = {
        "maxSteps": 20,
        "batchSize": 16,
        "warmupSteps": 2,
        "logEvery": 5,
        "model": {"layers": 1, "width": 32, "heads": 2, "context": 96},
        "dataset": {"trainSize": 256, "evalSize": 16},
        "eval": {"maxTraceTokens": 26, "batchSize": 16},
    }
    base.update(extra)
    return base


def make_namespace(**kwargs: Any) -> SimpleNamespace:
    return SimpleNamespace(**kwargs)


def use_trainer(monkeypatch: pytest.MonkeyPatch, trainer: Callable[..., Any]) -> None:
    """Make the rehearsal run import ``trainer`` as ``tunix_rt.train.run_trial`` (as the CLI
    and ``python -m tunix_rt.rehearsal`` do), for the tests that go through those."""
    monkeypatch.setattr(
        "tunix_rt.rehearsal.run.importlib.import_module",
        lambda name: type("M", (), {"run_trial": staticmethod(trainer)}),
    )


def write_rehearsal(
    path: Path, name: str, spec: dict[str, Any], *, api_version: bool = True
) -> Path:
    """A Rehearsal manifest file (with or without its apiVersion line)."""
    manifest = rehearsal_manifest(name, spec)
    if not api_version:
        del manifest["apiVersion"]
    path.write_text(yaml.safe_dump(manifest))
    return path
