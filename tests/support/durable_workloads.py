"""A stand-in trial that checkpoints like the trainer, for the durability tests: a
``trainer.backend: python`` entrypoint (``support.durable_workloads:train``).

It sleeps instead of training, saves ``<trial.checkpoint_dir>/<step>/state.json`` after
every logged step (the newest two kept, written to a temporary name and renamed, like
orbax), resumes from the newest one it finds, and reports ``resumed_from`` (the step it
continued from, 0 for a fresh start) with every report. Ray Tune, the driver, the store,
the records, Tune's checkpoints and the python backend's scoring are real.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from typing import TYPE_CHECKING

from support.tune_workloads import _score, eval_rows

if TYPE_CHECKING:
    from tunix_rt.train.backends.python import Trial

ENTRYPOINT = "support.durable_workloads:train"

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


def train(trial: Trial) -> None:
    """``logEvery`` steps a sleep of ``TUNIX_RT_TEST_STEP_SECONDS`` (default 0.3 s)."""
    step_seconds = float(os.environ.get(STEP_SECONDS_ENV, "0.3"))
    config, directory = trial.config, trial.checkpoint_dir
    resumed = _newest(directory)
    for step in range(resumed + config.log_every, config.max_steps + 1, config.log_every):
        time.sleep(step_seconds)
        if directory:
            _save(directory, step)
        trial.report(step, loss=2.0 / step + config.learning_rate, resumed_from=float(resumed))
    if trial.step == 0:  # nothing left to train: the final metrics still say where it began
        trial.report(resumed, resumed_from=float(resumed))
    trial.eval_rows(eval_rows(trial, _score(config)), step=trial.max_steps)
