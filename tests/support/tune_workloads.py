"""Stand-in trial workloads for failure-injection tests: ``trainer.backend: python``
entrypoints (``entrypoint: support.tune_workloads:train``) that sleep instead of training.

Ray Tune, the driver, the store, the records and the python backend's scoring are real;
only the training is replaced by a few sleeps so that failure and resume paths run in
seconds. The end-to-end tests use the real trainer.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from tunix_rt.api.trainer import TrainerConfig
from tunix_rt.train.tokenizer import format_target

if TYPE_CHECKING:
    from tunix_rt.train.backends.python import Trial

ENTRYPOINT = "support.tune_workloads:train"
"""The stand-in as a Sweep's ``trainer.entrypoint`` (with ``backend: python``)."""


def python_trainer(entrypoint: str = ENTRYPOINT, **fields: Any) -> dict[str, Any]:
    """A Sweep's ``trainer`` block that runs ``entrypoint`` with the python backend."""
    return {"backend": "python", "entrypoint": entrypoint, **fields}


def _score(config: TrainerConfig) -> float:
    # Best near learning rate 3e-3; deterministic.
    return max(0.0, 1.0 - abs(math.log10(config.learning_rate) - math.log10(3e-3)) / 2)


def eval_rows(trial: Trial, score: float) -> Iterator[dict[str, Any]]:
    """The eval split answered so that its primary_score is ``score`` (to 1/rows): the
    first ``round(score * rows)`` rows right, the others with a wrong answer."""
    right = round(score * len(trial.dataset.eval))
    for index, example in enumerate(trial.dataset.eval):
        answer = example.answer if index < right else f"not {example.answer}"
        yield {
            "index": index,
            "prompt": example.prompt,
            "expected_answer": example.answer,
            "output": format_target("", answer),
        }


def train(trial: Trial, step_seconds: float = 0.05) -> None:
    """Fails when the learning rate is above 0.1 (a 'diverging' trial)."""
    config = trial.config
    for step in range(config.log_every, config.max_steps + 1, config.log_every):
        time.sleep(step_seconds)
        if config.learning_rate > 0.1:
            raise FloatingPointError(f"loss diverged at step {step} (learning rate too high)")
        trial.report(step, loss=2.0 / step + config.learning_rate)
    trial.eval_rows(eval_rows(trial, _score(config)), step=trial.max_steps)


SURFACE_BEST_LR = 2e-3


def surface(learning_rate: float, warmup_steps: int, weight_decay: float) -> float:
    """A deterministic response surface over three parameters, in [0, 1]: sharp in the
    learning rate (best at 2e-3, log scale), gentler in warmup steps (best at 30) and
    weight decay (best at 0.1). The warm-start benchmark's workload (benchmarks/README.md)."""
    lr = math.exp(-(((math.log10(learning_rate) - math.log10(SURFACE_BEST_LR)) / 0.4) ** 2))
    warmup = 1.0 - 0.4 * min(1.0, ((warmup_steps - 30) / 30) ** 2)
    decay = 1.0 - 0.3 * min(1.0, abs(weight_decay - 0.1) / 0.2)
    return lr * warmup * decay


def train_surface(trial: Trial) -> None:
    """:func:`surface` of the trial's config as its primary_score (to 1/eval rows), after
    one report per logged step and no sleep: as cheap as a trial through Ray gets."""
    config = trial.config
    for step in range(config.log_every, config.max_steps + 1, config.log_every):
        trial.report(step, loss=1.0 / step)
    score = surface(config.learning_rate, config.warmup_steps, config.weight_decay)
    trial.eval_rows(eval_rows(trial, score), step=trial.max_steps)


def train_slow(trial: Trial) -> None:
    """About 0.5 s per logged step: slow enough to interrupt between trials."""
    train(trial, step_seconds=0.5)
