"""Replaying a schedule (``TrainerConfig.schedule``) on a Tunix backend, and what a PBT
exploit does there.

Tunix bakes a learner's hyperparameters in when it builds it: the learning rate, weight
decay and clip into the optax chain, ``klBeta`` into the traced GRPO loss, the
temperature into the rollout. So a change of params is a new learner, and the semantics
is that of a PBT exploit: the run continues from the checkpoint at the change's step
(weights, Adam moments and the step count restored; the learning-rate schedule is the
new params' warmup/cosine curve at that step) under a learner built from the new params.

A replay does exactly that, segment by segment: train up to the next change (the last
checkpoint is saved there), then build the next segment's learner, which restores it.
An exploit-restart and a replay thus go through the same restore, with the same batches
(Tunix fast-forwards the data to the restored step) and the same sampling seeds (the
rollout seeds every step's sampling with ``seed``), and reach the same weights.
"""

from __future__ import annotations

import os
from typing import NamedTuple

from tunix_rt.api.trainer import TrainerConfig


class Segment(NamedTuple):
    """Train ``config`` until step ``end`` (the next change, or maxSteps)."""

    config: TrainerConfig
    end: int


def segments(config: TrainerConfig) -> list[Segment]:
    """The run's segments: one without a schedule, else one per change of params (each
    entry applied over the previous ones; an entry that changes nothing adds none)."""
    current = config.model_copy(update={"schedule": None})
    out: list[Segment] = []
    start = 0
    for entry in config.schedule or []:
        following = current.with_params(dict(entry.params))
        if following == current:
            continue
        if entry.step > start:
            out.append(Segment(current, entry.step))
            start = entry.step
        current = following
    out.append(Segment(current, config.max_steps))
    return out


def saved_step(checkpoint_dir: str | None) -> int:
    """The step of the newest policy checkpoint Tunix's RL cluster saved in
    ``checkpoint_dir`` (under ``actor/``), 0: none. A resumed replay skips the segments
    that end at or before it (their learner would have nothing left to train)."""
    if checkpoint_dir is None:
        return 0
    try:
        names = os.listdir(os.path.join(checkpoint_dir, "actor"))
    except FileNotFoundError:
        return 0
    return max((int(n) for n in names if n.isdigit()), default=0)
