"""How much memory one accelerator device offers a Tunix trial: per TPU chip and per GPU.

Each figure is the vendor's, with the page it comes from and how it was checked (as in
``gke_machines.yaml``): ``excerpt`` - read in an excerpt of that page during this work;
``recalled`` - the vendor's published figure as known to the author, not re-read here.
A vendor's "GB" is taken as 10^9 bytes (the smaller reading; Google writes GiB where it
means it), so a figure is never larger than the device.

JAX does not hand a program all of it: on a GPU it preallocates 75% of the memory and
allocates only from that pool, unless ``XLA_PYTHON_CLIENT_MEM_FRACTION`` says another share
or ``XLA_PYTHON_CLIENT_PREALLOCATE=false`` lets it allocate on demand
(https://docs.jax.dev/en/latest/gpu_memory_allocation.html); a TPU's HBM is the program's.
The trial images set neither, so a spec's ``cluster.env`` (which reaches every Ray worker
of the job) is what changes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from tunix_rt.api.errors import ManifestError
from tunix_rt.api.pool_machine import pool_machine
from tunix_rt.api.tpu import generation_for

if TYPE_CHECKING:
    from tunix_rt.api.cluster import NodePool

GB = 10**9
GIB = 2**30
HEADROOM = 0.9
"""Share of what JAX may use that a trial's estimate may fill: the rest is for what the
estimate leaves out (XLA's runtime, fragmentation, the estimate's own error)."""
JAX_GPU_FRACTION = 0.75
"""JAX's default GPU preallocation (``XLA_PYTHON_CLIENT_MEM_FRACTION``'s default)."""
MEM_FRACTION_ENV = "XLA_PYTHON_CLIENT_MEM_FRACTION"
PREALLOCATE_ENV = "XLA_PYTHON_CLIENT_PREALLOCATE"


@dataclass(frozen=True)
class DeviceMemory:
    """One TPU chip's or GPU's memory, as its vendor states it."""

    name: str
    bytes: int
    shown: str
    source: str
    checked: Literal["excerpt", "recalled"]
    gpu: bool = False


def _tpu(name: str, size: int, shown: str, page: str) -> DeviceMemory:
    return DeviceMemory(f"TPU {name} chip", size, shown, page, "excerpt")


TPU_MEMORY: dict[str, DeviceMemory] = {
    "v4": _tpu("v4", 32 * GIB, "32 GiB HBM2", "https://cloud.google.com/tpu/docs/v4"),
    "v5e": _tpu("v5e", 16 * GB, "16 GB HBM2", "https://cloud.google.com/tpu/docs/v5e"),
    "v5p": _tpu("v5p", 95 * GB, "95 GB HBM2e", "https://cloud.google.com/tpu/docs/v5p"),
    "v6e": _tpu("v6e", 32 * GB, "32 GB HBM", "https://cloud.google.com/tpu/docs/v6e"),
}
"""HBM per chip, by generation (``tpu.GENERATIONS`` names); read in the pages' spec tables
("HBM capacity per chip", "HBM2 capacity and bandwidth")."""


def _gpu(
    name: str, size_gb: int, page: str, checked: Literal["excerpt", "recalled"]
) -> DeviceMemory:
    return DeviceMemory(name, size_gb * GB, f"{size_gb} GB", page, checked, gpu=True)


_A100 = "https://www.nvidia.com/en-us/data-center/a100/"
_H100 = "https://www.nvidia.com/en-us/data-center/h100/"
GPU_MEMORY: dict[str, DeviceMemory] = {
    "nvidia-l4": _gpu("NVIDIA L4", 24, "https://www.nvidia.com/en-us/data-center/l4/", "excerpt"),
    "nvidia-tesla-a100": _gpu("NVIDIA A100 40GB", 40, _A100, "excerpt"),
    "nvidia-a100-80gb": _gpu("NVIDIA A100 80GB", 80, _A100, "excerpt"),
    "nvidia-h100-80gb": _gpu("NVIDIA H100 80GB", 80, _H100, "excerpt"),
    "nvidia-h100-mega-80gb": _gpu("NVIDIA H100 80GB (Mega)", 80, _H100, "excerpt"),
}
"""Memory per GPU, by GKE's ``cloud.google.com/gke-accelerator`` value (a pool's
``gpuType``; https://cloud.google.com/kubernetes-engine/docs/how-to/gpus). The L4's 24 GB
was read in excerpts quoting NVIDIA's datasheet. The A100's 40 GB HBM2 and 80 GB HBM2e and the
H100 SXM's 80 GB HBM3 were read in excerpts quoting NVIDIA's A100 datasheet and H100 product
pages (glennklockwood.com/garden/processors/A100 and /h100, which cite them); a CUDA device
query of an A100 40GB reports 42,405,855,232 bytes, so 40 x 10^9 is the smaller reading."""


def pool_device(pool: NodePool) -> DeviceMemory | None:
    """The device a pool's pods have (None: a CPU pool, or a GPU pool whose GPU type is
    not known: no gpuType, no machineType, or a type this table lacks)."""
    if pool.tpu_accelerator:
        try:
            return TPU_MEMORY.get(generation_for(pool.tpu_accelerator).name)
        except ManifestError:
            return None
    if not pool.gpus_per_pod:
        return None
    gpu_type = pool.gpu_type
    if gpu_type is None:
        machine, _ = pool_machine(pool)
        gpu_type = machine.gpu.type if machine is not None and machine.gpu else None
    return GPU_MEMORY.get(gpu_type or "")


def jax_share(device: DeviceMemory, env: Mapping[str, str] | None) -> tuple[float, str]:
    """The share of ``device`` JAX lets a trial allocate, and why (for messages)."""
    if not device.gpu:
        return 1.0, "all of it"
    env = env or {}
    fraction = env.get(MEM_FRACTION_ENV)
    if fraction is not None:
        try:
            value = float(fraction)
        except ValueError:
            value = -1.0
        if 0.0 < value <= 1.0:
            return value, f"{value:.0%} ({MEM_FRACTION_ENV} in cluster.env)"
    if env.get(PREALLOCATE_ENV, "").strip().lower() == "false":
        return 1.0, f"on demand ({PREALLOCATE_ENV}=false in cluster.env)"
    return JAX_GPU_FRACTION, f"{JAX_GPU_FRACTION:.0%} (JAX's GPU preallocation)"
