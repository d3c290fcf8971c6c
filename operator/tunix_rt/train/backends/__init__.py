"""Trainer backends: one call signature for every way a trial can train.

The Tune trial, the rehearsal run, evidence and status call :func:`run_trial` and read a
:class:`~tunix_rt.train.loop.TrainResult`; only this table knows which backend ran. Each
backend module is imported when first used, so the Tunix stack loads only for Tunix
trials.
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol

from tunix_rt.api.trainer import TrainerConfig
from tunix_rt.api.trainer_backends import DEFAULT_LORA_RANK, TUNIX_BACKENDS, tunix_model_name
from tunix_rt.train import loop
from tunix_rt.train.loop import Log, Report, TrainResult


class TrainFn(Protocol):
    """Train ``config`` for ``config.max_steps`` steps, ``report`` step metrics (a dict
    with ``step``) as it goes, evaluate, and return the result with its eval rows.
    ``deadline`` (a ``time.monotonic()`` instant) is passed only when the run has one."""

    def __call__(
        self,
        config: TrainerConfig,
        *,
        report: Report | None = None,
        checkpoint_dir: str | None = None,
        log: Log | None = None,
        deadline: float | None = None,
    ) -> TrainResult: ...


BACKENDS: dict[str, str] = {
    "builtin": "tunix_rt.train.loop:run_trial",
    "tunix-sft": "tunix_rt.train.backends.tunix_sft:run_trial",
    "tunix-grpo": "tunix_rt.train.backends.tunix_grpo:run_trial",
    "python": "tunix_rt.train.backends.python:run_trial",
}
"""``trainer.backend`` -> ``module:function`` implementing :class:`TrainFn`."""


def tunix_model_id(name: str, lora_rank: int, backend: str) -> str:
    """``tunix-rt/gemma3-1b-lora8`` (``-full`` at rank 0; ``-grpo`` appended for GRPO)."""
    base = f"tunix-rt/{name}-" + (f"lora{lora_rank}" if lora_rank else "full")
    return base + ("-grpo" if backend == "tunix-grpo" else "")


def model_id(config: TrainerConfig) -> str:
    """What the config trains, as evidence names it, without importing its backend: the
    sweep's manifest is written by a driver that never ran a trial itself."""
    if config.backend == "python":
        return f"python/{config.entrypoint}"
    if config.backend in TUNIX_BACKENDS and config.model.name is not None:
        rank = DEFAULT_LORA_RANK if config.lora_rank is None else config.lora_rank
        name = tunix_model_name(config.model.name) or config.model.name
        return tunix_model_id(name, rank, config.backend)
    return loop.model_id(config)


def backend_for(name: str) -> TrainFn:
    """The train function of backend ``name`` (imported now)."""
    module_name, _, attr = BACKENDS[name].partition(":")
    train: TrainFn = getattr(importlib.import_module(module_name), attr)
    return train


def run_trial(config: TrainerConfig, **kwargs: Any) -> TrainResult:
    """Train ``config`` with the backend it names (see :class:`TrainFn`)."""
    return backend_for(config.backend)(config, **kwargs)
