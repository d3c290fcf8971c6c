"""How a trial's checkpoints travel through Ray Tune on object-store sweeps (and under
scheduler pbt on every store): the trainer saves to a local folder, the sender hands each
new checkpoint to Tune with the next report, Tune uploads it and gives it back to the
trial when it is retried, resumed or (pbt) exploited."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from typing import Any


class CheckpointSender:
    """Hands the trainer's newest checkpoint (a local folder) to Tune with the next
    report, once per checkpoint: Tune uploads it to the store and gives it back to the
    trial when the sweep resumes (:func:`restore_checkpoint`)."""

    def __init__(self, directory: str, report: Callable[..., None]) -> None:
        self.directory = directory
        self.report = report
        self.sent: str | None = None

    def newest(self) -> str | None:
        """The newest entry the trainer saved (orbax: one folder a step; tunix-grpo:
        ``actor/<step>``), None: none yet."""
        return newest_entry(self.directory)

    def has_new(self) -> bool:
        newest = self.newest()
        return newest is not None and newest != self.sent

    def send(self, metrics: dict[str, Any]) -> None:
        from ray.tune import Checkpoint

        self.sent = self.newest()
        self.report(metrics, checkpoint=Checkpoint.from_directory(self.directory))


def newest_entry(directory: str) -> str | None:
    """The newest step folder under ``directory`` (or under its ``actor`` folder, where
    Tunix's RL cluster saves the policy), else its greatest name; None: empty."""
    try:
        names = [n for n in os.listdir(directory) if not n.startswith(".")]
    except FileNotFoundError:
        return None
    steps = sorted((int(n), n) for n in names if n.isdigit())
    if steps:
        return steps[-1][1]
    if "actor" in names:
        inner = newest_entry(os.path.join(directory, "actor"))
        if inner is not None and inner.isdigit():
            return f"actor/{inner}"
    return max(names) if names else None


def local_checkpoint_dir(trial_id: str) -> str:
    """Where a trial of an object-store sweep keeps its checkpoints on its node."""
    return os.path.join(tempfile.gettempdir(), "tunix-rt-checkpoints", trial_id)


def restore_checkpoint(directory: str, get: Callable[[], Any]) -> bool:
    """Fill ``directory`` with the checkpoint Tune kept for this trial (``get``:
    ``tune.get_checkpoint``); False when it kept none (the trial starts from step 0)."""
    shutil.rmtree(directory, ignore_errors=True)
    checkpoint = get()
    if checkpoint is None:
        return False
    with checkpoint.as_directory() as path:
        shutil.copytree(path, directory)
    return True
