"""Data parallelism: one 'data' mesh axis over every local device.

Batches are split along it, params and optimizer state are replicated, so the same code
runs on one CPU, the 8 GPUs of a node or the 4 chips of a TPU host.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

AXIS = "data"
_ROWS = PartitionSpec(AXIS)  # type: ignore[no-untyped-call]
_ALL = PartitionSpec()  # type: ignore[no-untyped-call]


def data_mesh(batch_size: int, devices: list[jax.Device] | None = None) -> Mesh:
    """A 1-D mesh over ``devices`` (default: all JAX sees); the batch must split evenly."""
    devices = devices or jax.devices()
    if batch_size % len(devices):
        raise ValueError(
            f"batchSize {batch_size} must be divisible by the {len(devices)} "
            f"{devices[0].platform} devices JAX sees, for data parallelism; "
            f"use a multiple of {len(devices)}"
        )
    return Mesh(np.array(devices), (AXIS,))


def rows(mesh: Mesh) -> NamedSharding:
    """Leading (batch) axis split over the devices."""
    return NamedSharding(mesh, _ROWS)


def replicated(mesh: Mesh) -> NamedSharding:
    """A full copy on every device."""
    return NamedSharding(mesh, _ALL)


def wait(tree: object) -> None:
    """Block until every array in ``tree`` is computed (JAX dispatches asynchronously)."""
    jax.block_until_ready(tree)  # type: ignore[no-untyped-call]
