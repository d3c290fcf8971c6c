"""The best trial's trainer config, rebuilt one way for everyone who promotes it.

The operator (a Rehearsal's ``fromSweep``), the rehearsal run (``spec.fromSweep`` read
from the sweep's summary), ``tunix-rt promote`` and the sweep's evidence
(``best_config.json``) all call :func:`best_trial_config`, so they cannot disagree.

The rule: the sweep's trial config before any params (``SweepSpec.trial_config({})``,
which the summary records as ``base_config``) with the best trial's params applied; its
``maxSteps`` stays the base's, the ``budget.smokeSteps`` cap every trial ran under, even
when the params name a ``maxSteps`` (a longer run is a rehearsal's ``overrides``). A pbt
trial's schedule becomes ``schedule``: its params change at the same steps.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tunix_rt.api.schedule import ScheduleStep
from tunix_rt.api.trainer import TrainerConfig


def best_trial_config(
    base: TrainerConfig | Mapping[str, Any],
    params: Mapping[str, Any],
    schedule: Sequence[ScheduleStep | Mapping[str, Any]] | None = None,
) -> TrainerConfig:
    """``base`` (a TrainerConfig, or its wire form such as ``SweepResult.base_config``)
    with ``params`` applied and its ``maxSteps`` kept.

    Raises pydantic's ValidationError (a value the config refuses) or ValueError (a param
    that is no trainer field), for the caller to report its own way.
    """
    config = base if isinstance(base, TrainerConfig) else TrainerConfig.model_validate(base)
    best = config.with_params(dict(params))
    if best.max_steps != config.max_steps:  # a searched maxSteps is capped as the trial was
        best = best.with_params({"max_steps": config.max_steps})
    if schedule:  # a pbt trial: its params changed at these steps (replayed as written)
        steps = [
            s if isinstance(s, ScheduleStep) else ScheduleStep.model_validate(s) for s in schedule
        ]
        best = TrainerConfig.model_validate(best.model_dump() | {"schedule": steps})
    return best
