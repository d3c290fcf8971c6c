"""Scheduler ``pbt``: Ray Tune's PopulationBasedTraining, and each trial's schedule.

PBT exploits by restarting a weak trial from a strong trial's checkpoint (what
``tune.get_checkpoint()`` returns) with a mutated config. So under pbt every checkpoint
goes through Tune (also with a file:// store), and each one carries a small JSON file
(:data:`LINEAGE_FILE`) that says whose it is, at which step, and the schedule that led
there. A restarted trial reads it to know whether it resumed itself or exploited another
trial, and records the schedule it followed (``TrialResult.schedule``): the steps at
which its params changed and whose checkpoint it continued. The best trial's schedule is
what a Rehearsal replays (``TrainerConfig.schedule``).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
from collections.abc import Callable, Iterator
from typing import Any

from pydantic import Field, ValidationError
from ray.tune.schedulers import PopulationBasedTraining, TrialScheduler

from tunix_rt.api.base import ApiModel
from tunix_rt.api.schedule import MUTABLE_KEYS, ScheduleStep
from tunix_rt.api.search_space import Distribution
from tunix_rt.api.sweep import SweepSpec
from tunix_rt.api.sweep_goals import SchedulerType
from tunix_rt.tune.trial_checkpoints import CheckpointSender

LINEAGE_FILE = ".tunix-rt-lineage.json"
"""In a trial's checkpoint folder, beside orbax's step folders (a dot name: neither
orbax nor :meth:`CheckpointSender.newest` reads it)."""

KEEP_CHECKPOINTS = 4
"""Tune checkpoints kept per trial under pbt: a strong trial's reported checkpoint must
outlive its next report or two, until a weak trial restores it."""


class Lineage(ApiModel):
    """What a checkpoint folder holds: whose it is, its step, the schedule up to it."""

    trial_id: str
    step: int = Field(ge=0)
    schedule: list[ScheduleStep] = Field(default_factory=list)


def is_pbt(spec: SweepSpec) -> bool:
    return spec.scheduler.type is SchedulerType.PBT


def checkpoints_kept(spec: SweepSpec) -> int:
    """``CheckpointConfig.num_to_keep`` for the sweep."""
    return KEEP_CHECKPOINTS if is_pbt(spec) else 2


class ClipToSpace:
    """PBT's ``custom_explore_fn``: Ray scales ranged params by 0.8/1.2 without bounds,
    so a few perturbations would leave the searched range (or the trainer's: lr <= 1)."""

    def __init__(self, bounds: dict[str, tuple[float, float]]) -> None:
        self.bounds = bounds

    def __call__(self, config: dict[str, Any]) -> dict[str, Any]:
        for key, (low, high) in self.bounds.items():
            if key in config:
                config[key] = min(max(float(config[key]), low), high)
        return config


class FinalStepPBT(PopulationBasedTraining):
    """PopulationBasedTraining that leaves a trial's last report alone (at the final step,
    its eval, nothing is left to train, and an exploit there would only swap in another
    trial's finished weights under a schedule step no run could replay) and draws its
    choices from its own seeded generator: Ray's PBT uses the process-wide ``random``, so
    its state is swapped in around each decision and the driver's is left as it was."""

    def __init__(self, *, last_step: int, seed: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.last_step = last_step
        self._random_state = random.Random(seed).getstate()

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
        if result.get("step", 0) >= self.last_step:
            return str(TrialScheduler.CONTINUE)
        with self._own_random():
            return str(super().on_trial_result(tune_controller, trial, result))

    @contextlib.contextmanager
    def _own_random(self) -> Iterator[None]:
        outer = random.getstate()
        random.setstate(self._random_state)
        try:
            yield
        finally:
            self._random_state = random.getstate()
            random.setstate(outer)


def pbt_scheduler(spec: SweepSpec) -> FinalStepPBT:
    """``PopulationBasedTraining`` over ``step``: ranged params as domains (resampled or
    scaled, then clipped), choice params as lists (resampled or shifted)."""
    from ray import tune

    sched = spec.scheduler
    mutations: dict[str, Any] = {}
    bounds: dict[str, tuple[float, float]] = {}
    for key, param in spec.search_space.items():
        if param.type is Distribution.CHOICE:
            mutations[key] = list(param.values or [])
            continue
        assert param.low is not None and param.high is not None
        bounds[key] = (param.low, param.high)
        domain = tune.loguniform if param.type is Distribution.LOGUNIFORM else tune.uniform
        mutations[key] = domain(param.low, param.high)
    return FinalStepPBT(
        last_step=spec.budget.smoke_steps,
        seed=spec.seed,
        synch=bool(sched.synchronous),
        time_attr="step",
        metric=sched.metric,
        mode=sched.mode,
        perturbation_interval=float(sched.perturbation_interval or 1),
        hyperparam_mutations=mutations,
        quantile_fraction=sched.quantile_fraction or 0.25,
        resample_probability=(
            0.25 if sched.resample_probability is None else sched.resample_probability
        ),
        custom_explore_fn=ClipToSpace(bounds),
    )


def mutable_params(params: dict[str, Any]) -> dict[str, float]:
    """The params a schedule step records: those PBT may change."""
    return {k: float(v) for k, v in params.items() if k in MUTABLE_KEYS}


def read_lineage(directory: str) -> Lineage | None:
    """The lineage a restored checkpoint folder carries; None: a fresh start (or a
    checkpoint from before pbt, which then counts as the trial's own)."""
    try:
        with open(os.path.join(directory, LINEAGE_FILE), encoding="utf-8") as f:
            return Lineage.model_validate(json.load(f))
    except (OSError, ValueError, ValidationError):
        return None


def followed_schedule(
    lineage: Lineage | None, trial_id: str, params: dict[str, Any]
) -> list[ScheduleStep]:
    """The schedule of a trial (re)starting with ``params`` from the checkpoint whose
    lineage is given: its own (resumed), or another trial's up to the checkpoint's step
    followed by the exploit."""
    now = mutable_params(params)
    if lineage is None:
        return [ScheduleStep(step=0, params=now)]
    if lineage.trial_id == trial_id:
        schedule = list(lineage.schedule)
        if not schedule or schedule[-1].params != now:
            schedule = [s for s in schedule if s.step < lineage.step]
            schedule.append(ScheduleStep(step=lineage.step, params=now))
        return schedule
    inherited = [s for s in lineage.schedule if s.step < lineage.step]
    return [
        *inherited,
        ScheduleStep(step=lineage.step, params=now, exploited_from=lineage.trial_id),
    ]


class ScheduleSender(CheckpointSender):
    """A CheckpointSender that writes the trial's lineage into each checkpoint it sends."""

    def __init__(
        self, directory: str, report: Callable[..., None], trial_id: str, params: dict[str, Any]
    ) -> None:
        super().__init__(directory, report)
        self.trial_id = trial_id
        self.schedule = followed_schedule(read_lineage(directory), trial_id, params)

    def send(self, metrics: dict[str, Any]) -> None:
        newest = self.newest()
        name = None if newest is None else os.path.basename(newest)
        if name is not None and name.isdigit():
            step = int(name)
            lineage = Lineage(
                trial_id=self.trial_id,
                step=step,
                schedule=[s for s in self.schedule if s.step <= step],
            )
            path = os.path.join(self.directory, LINEAGE_FILE)
            with open(path, "w", encoding="utf-8") as f:
                json.dump(lineage.to_wire(), f)
        super().send(metrics)
