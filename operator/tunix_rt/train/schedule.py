"""Replaying a schedule (``TrainerConfig.schedule``): the hyperparameters of each step.

A PBT trial's params change at the steps its schedule lists; a Rehearsal of it must
train with the same values at the same steps to reach the same weights. The values
enter the train step as traced scalars (``train_step.Hyperparams``), so switching them
costs no recompilation, and a run without a schedule is untouched.
"""

from __future__ import annotations

from collections.abc import Callable

from tunix_rt.api.trainer import TrainerConfig
from tunix_rt.train.train_step import Hyperparams


def changes(
    config: TrainerConfig, place: Callable[[Hyperparams], Hyperparams]
) -> dict[int, Hyperparams]:
    """Step -> the hyperparameters from that step on (each entry applied over the
    previous ones), placed on the devices with ``place``; empty without a schedule."""
    out: dict[int, Hyperparams] = {}
    current = config.model_copy(update={"schedule": None})
    for entry in config.schedule or []:
        current = current.with_params(dict(entry.params))
        out[entry.step] = place(Hyperparams.from_config(current))
    return out


def at(step: int, base: Hyperparams, by_step: dict[int, Hyperparams]) -> Hyperparams:
    """The hyperparameters in force at ``step`` (a resumed run starts mid-schedule)."""
    current = base
    for start in sorted(by_step):
        if start <= step:
            current = by_step[start]
    return current
