"""Trainer backends: one call signature for every way a trial can train.

The Tune trial, the rehearsal run, evidence and status call :func:`run_trial` and read a
:class:`~tunix_rt.train.result.TrainResult`; only this table knows which backend ran.
:func:`run_trial` is every backend's preamble and epilogue; a backend's ``train``
function (:data:`Train`) does the rest. Each backend module is imported when first used,
so the Tunix stack loads only for Tunix trials.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable

from tunix_rt.api.trainer import TrainerConfig
from tunix_rt.api.trainer_backends import DEFAULT_LORA_RANK, TUNIX_BACKENDS, tunix_model_name
from tunix_rt.contract.numerics import pin_numerics
from tunix_rt.train.result import Log, Outcome, Report, Run, TrainResult

Train = Callable[[Run], Outcome]
"""Train ``run.config`` for ``config.max_steps`` steps, ``run.tell`` step metrics (a dict
with ``step``) as it goes, evaluate, and return the outcome with its eval rows."""

BACKENDS: dict[str, str] = {
    "builtin": "tunix_rt.train.loop:train",
    "tunix-sft": "tunix_rt.train.backends.tunix_sft:train",
    "tunix-grpo": "tunix_rt.train.backends.tunix_grpo:train",
    "tunix-dpo": "tunix_rt.train.backends.tunix_dpo:train",
    "python": "tunix_rt.train.backends.python:train",
}
"""``trainer.backend`` -> ``module:function`` implementing :data:`Train`."""


def builtin_model_id(config: TrainerConfig) -> str:
    """``tunix-rt/char-transformer-L2-W128``: the built-in trainer's model."""
    return f"tunix-rt/char-transformer-L{config.model.layers}-W{config.model.width}"


def tunix_model_id(name: str, lora_rank: int, backend: str) -> str:
    """``tunix-rt/gemma3-1b-lora8`` (``-full`` at rank 0; ``-grpo`` or ``-dpo`` appended
    for the preference and RL backends)."""
    base = f"tunix-rt/{name}-" + (f"lora{lora_rank}" if lora_rank else "full")
    return base + {"tunix-grpo": "-grpo", "tunix-dpo": "-dpo"}.get(backend, "")


def model_id(config: TrainerConfig) -> str:
    """What the config trains, as evidence names it, without importing its backend: the
    sweep's manifest is written by a driver that never ran a trial itself."""
    if config.backend == "python":
        return f"python/{config.entrypoint}"
    if config.backend in TUNIX_BACKENDS and config.model.name is not None:
        rank = DEFAULT_LORA_RANK if config.lora_rank is None else config.lora_rank
        name = tunix_model_name(config.model.name) or config.model.name
        return tunix_model_id(name, rank, config.backend)
    return builtin_model_id(config)


def backend_for(name: str) -> Train:
    """The train function of backend ``name`` (imported now)."""
    module_name, _, attr = BACKENDS[name].partition(":")
    train: Train = getattr(importlib.import_module(module_name), attr)
    return train


def run_trial(
    config: TrainerConfig,
    *,
    report: Report | None = None,
    checkpoint_dir: str | None = None,
    log: Log | None = None,
    deadline: float | None = None,
) -> TrainResult:
    """Train ``config`` with the backend it names, reporting step metrics to ``report`` as
    it goes, evaluate, and return the result with its eval rows. With a
    ``checkpoint_dir`` the backends that checkpoint resume from it; ``deadline`` (a
    ``time.monotonic()`` instant) ends the run with ``TrainingTimeout`` once passed."""
    pin_numerics()  # before the backend imports JAX: same numbers on any CPU host
    train = backend_for(config.backend)
    started = time.perf_counter()
    run = Run(
        config=config,
        tell=report or (lambda metrics: None),
        say=log or print,
        checkpoint_dir=checkpoint_dir,
        deadline=deadline,
        started=started,
    )
    out = train(run)
    return TrainResult(
        **vars(out),
        wall_seconds=time.perf_counter() - started,
        config=config.to_wire(),
        backend=config.backend,
    )
