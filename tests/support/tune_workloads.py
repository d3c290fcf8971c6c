"""Stand-in trial workloads with ``run_trial``'s signature, for failure-injection tests.

Ray Tune, the driver, the store and the records are real; only the training is replaced
by a few sleeps so that failure and resume paths run in seconds. The end-to-end tests
use the real trainer.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tunix_rt.api.trainer import TrainerConfig


@dataclass
class FakeResult:
    primary_score: float | None
    metrics: dict[str, float]
    steps: int
    wall_seconds: float
    history: list[dict[str, float]] = field(default_factory=list)


def _score(config: TrainerConfig) -> float:
    # Best near learning rate 3e-3; deterministic.
    return max(0.0, 1.0 - abs(math.log10(config.learning_rate) - math.log10(3e-3)) / 2)


def run_trial(
    config: TrainerConfig,
    *,
    report: Callable[[dict[str, float]], None] | None = None,
    checkpoint_dir: str | None = None,
    log: Callable[[str], None] | None = None,
    step_seconds: float = 0.05,
) -> FakeResult:
    """Fails when the learning rate is above 0.1 (a 'diverging' trial)."""
    start = time.monotonic()
    history = []
    for step in range(config.log_every, config.max_steps + 1, config.log_every):
        time.sleep(step_seconds)
        if config.learning_rate > 0.1:
            raise FloatingPointError(f"loss diverged at step {step} (learning rate too high)")
        metrics = {"step": float(step), "loss": 2.0 / step + config.learning_rate}
        history.append(metrics)
        if report:
            report(metrics)
    score = _score(config)
    final = {"step": float(config.max_steps), "loss": history[-1]["loss"], "primary_score": score}
    if report:
        report(final)
    return FakeResult(score, final, config.max_steps, time.monotonic() - start, history)


def run_trial_slow(config: TrainerConfig, **kwargs: Any) -> FakeResult:
    """About 0.5 s per logged step: slow enough to interrupt between trials."""
    return run_trial(config, step_seconds=0.5, **kwargs)


def run_trial_pid(
    config: TrainerConfig,
    *,
    report: Callable[[dict[str, float]], None] | None = None,
    **kwargs: Any,
) -> FakeResult:
    """:func:`run_trial` whose every report says which process ran it (``worker_pid``)."""
    pid = float(os.getpid())

    def with_pid(metrics: dict[str, float]) -> None:
        if report:
            report(metrics | {"worker_pid": pid})

    result = run_trial(config, report=with_pid, step_seconds=0.3, **kwargs)
    result.metrics["worker_pid"] = pid
    return result
