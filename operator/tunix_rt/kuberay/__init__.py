"""KubeRay: RayJob manifests for Sweeps and Rehearsals, TPU slice shapes, a thin API client.

The builder (``rayjob``) and the TPU table (``tpu``) are pure functions; the HTTP client
lives in ``tunix_rt.kuberay.client`` (imported on demand, it needs kopf and aiohttp).
"""

from tunix_rt.kuberay.errors import ManifestError
from tunix_rt.kuberay.rayjob import (
    BuildOptions,
    Owner,
    build_rehearsal_rayjob,
    build_sweep_rayjob,
    rehearsal_entrypoint,
    sweep_entrypoint,
)
from tunix_rt.kuberay.tpu import GENERATIONS, TpuSlice, tpu_slice

__all__ = [
    "GENERATIONS",
    "BuildOptions",
    "ManifestError",
    "Owner",
    "TpuSlice",
    "build_rehearsal_rayjob",
    "build_sweep_rayjob",
    "rehearsal_entrypoint",
    "sweep_entrypoint",
    "tpu_slice",
]
