"""Data parallelism: one 'data' mesh axis over every device of every process.

Batches are split along it, params and optimizer state are replicated, so the same code
runs on one CPU, the 8 GPUs of a node, the 4 chips of a TPU host, or every chip of a
multi-host slice (one process per host, ``jax.distributed`` joined first). Every process
holds the whole host batch and puts it with the global sharding: JAX keeps each process's
rows on its own devices, and the gradient mean becomes a cross-process all-reduce.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

AXIS = "data"
_ROWS = PartitionSpec(AXIS)  # type: ignore[no-untyped-call]
_ALL = PartitionSpec()  # type: ignore[no-untyped-call]


def data_mesh(batch_size: int, devices: list[jax.Device] | None = None) -> Mesh:
    """A 1-D mesh over ``devices`` (default: all JAX sees, across processes); the batch
    must split evenly."""
    devices = devices or jax.devices()
    if batch_size % len(devices):
        where = f" over {jax.process_count()} processes" if jax.process_count() > 1 else ""
        raise ValueError(
            f"batchSize {batch_size} must be divisible by the {len(devices)} "
            f"{devices[0].platform} devices JAX sees{where}, for data parallelism; "
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


def fetch(tree: Any) -> Any:
    """Host (numpy) copy of ``tree``; arrays split over processes are gathered first
    (every process must call it: the gather is a collective)."""
    if jax.process_count() == 1:
        return jax.device_get(tree)
    from jax.experimental import multihost_utils

    def host(leaf: Any) -> Any:
        if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
            if leaf.is_fully_replicated:
                return np.asarray(leaf.addressable_data(0))
            return np.asarray(multihost_utils.process_allgather(leaf, tiled=True))
        return jax.device_get(leaf)

    return jax.tree.map(host, tree)


def join_processes(coordinator: str, num_processes: int, process_id: int) -> None:
    """Join ``jax.distributed`` as process ``process_id`` of ``num_processes`` (before any
    other JAX call). On CPU, JAX's own cross-process collectives (gloo) carry the
    all-reduce; on TPU and GPU, Ray Train's JAX backend has already joined, so this is
    only called for CPU workers (and tests)."""
    jax.config.update("jax_cpu_collectives_implementation", "gloo")  # type: ignore[no-untyped-call]
    jax.distributed.initialize(coordinator, num_processes, process_id)


def is_primary() -> bool:
    """Whether this process reports and writes for the run (process 0)."""
    return jax.process_index() == 0
