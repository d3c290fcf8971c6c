"""A stand-in trial workload that checkpoints like the trainer, for the durability tests.

It sleeps instead of training, saves ``<checkpoint_dir>/<step>/state.json`` after every
logged step (the newest two kept, written to a temporary name and renamed, like orbax),
resumes from the newest one it finds, and reports ``resumed_from`` (the step it
continued from, 0 for a fresh start) with every report. Ray Tune, the driver, the store,
the records and Tune's checkpoints are real.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from typing import Any

from support.tune_workloads import FakeResult, _score
from tunix_rt.api.trainer import TrainerConfig

STEP_SECONDS_ENV = "TUNIX_RT_TEST_STEP_SECONDS"


def _newest(directory: str | None) -> int:
    if not directory or not os.path.isdir(directory):
        return 0
    steps = [int(n) for n in os.listdir(directory) if n.isdigit()]
    return max(steps, default=0)


def _save(directory: str, step: int) -> None:
    tmp = os.path.join(directory, f".tmp-{step}")
    os.makedirs(tmp, exist_ok=True)
    with open(os.path.join(tmp, "state.json"), "w") as out:
        json.dump({"step": step}, out)
    os.replace(tmp, os.path.join(directory, str(step)))
    for old in sorted(int(n) for n in os.listdir(directory) if n.isdigit())[:-2]:
        shutil.rmtree(os.path.join(directory, str(old)), ignore_errors=True)


def run_trial(
    config: TrainerConfig,
    *,
    report: Callable[[dict[str, float]], None] | None = None,
    checkpoint_dir: str | None = None,
    log: Callable[[str], None] | None = None,
    **_: Any,
) -> FakeResult:
    """``logEvery`` steps a sleep of ``TUNIX_RT_TEST_STEP_SECONDS`` (default 0.3 s)."""
    step_seconds = float(os.environ.get(STEP_SECONDS_ENV, "0.3"))
    start = time.monotonic()
    resumed = _newest(checkpoint_dir)
    history = []
    for step in range(resumed + config.log_every, config.max_steps + 1, config.log_every):
        time.sleep(step_seconds)
        metrics = {
            "step": float(step),
            "loss": 2.0 / step + config.learning_rate,
            "resumed_from": float(resumed),
        }
        history.append(metrics)
        if checkpoint_dir:
            _save(checkpoint_dir, step)
        if report:
            report(metrics)
    score = _score(config)
    final = {
        "step": float(config.max_steps),
        "primary_score": score,
        "resumed_from": float(resumed),
    }
    if report:
        report(final)
    return FakeResult(score, final, config.max_steps, time.monotonic() - start, history)
