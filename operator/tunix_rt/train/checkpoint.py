"""Save and restore the train state with orbax, so a stopped run resumes where it was.

A checkpoint is the full ``TrainState`` (step, params, Adam moments) plus a small JSON
record (the config it was written with and the learning curve so far). Batches are a
pure function of (seed, step), so restoring the state is enough to continue bit for bit.
"""

from __future__ import annotations

import os
from typing import Any

import jax

from tunix_rt.train.train_step import TrainState

KEEP = 2
"""Checkpoints kept: the newest plus one in case the newest was cut short."""


class Checkpointer:
    """An orbax CheckpointManager for one run directory (orbax writes to a temporary
    folder and renames it, so a crash mid-save never leaves a half checkpoint)."""

    def __init__(self, directory: str) -> None:
        import orbax.checkpoint as ocp  # type: ignore[import-untyped]  # lazy: slow import

        self._ocp = ocp
        self.directory = os.path.abspath(directory)
        # Synchronous: a save is complete when save() returns, so a trial stopped right
        # after a report never races a background writer (and 2 cores have no spare).
        options = ocp.CheckpointManagerOptions(
            max_to_keep=KEEP, create=True, enable_async_checkpointing=False
        )
        self._manager = ocp.CheckpointManager(self.directory, options=options)

    def latest_step(self) -> int | None:
        step = self._manager.latest_step()
        return None if step is None else int(step)

    def meta(self) -> dict[str, Any] | None:
        """The JSON record of the newest checkpoint (read before the arrays, so a
        checkpoint of another config is refused by name, not by a shape error)."""
        step = self.latest_step()
        if step is None:
            return None
        ocp = self._ocp
        restored = self._manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
        return dict(restored.meta)

    def restore(self, like: TrainState) -> TrainState:
        """The newest checkpoint's state, shaped and sharded like ``like``."""
        step = self.latest_step()
        if step is None:
            raise FileNotFoundError(f"no checkpoint in {self.directory}")
        ocp = self._ocp
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
        restored = self._manager.restore(
            step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract))
        )
        leaves = jax.tree.leaves(restored.state)
        return jax.tree.unflatten(jax.tree.structure(like), leaves)  # type: ignore[no-any-return]

    def save(self, state: TrainState, meta: dict[str, Any]) -> None:
        """Save ``state`` at its step (a host copy, so donated buffers are never read late)."""
        ocp = self._ocp
        state = jax.device_get(state)
        step = int(state.step)
        if self.latest_step() == step:
            return
        self._manager.save(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)
            ),
            force=True,
        )

    def close(self) -> None:
        self._manager.wait_until_finished()
        self._manager.close()
