"""KubeRay: RayJob manifests for Sweeps and Rehearsals, TPU slice shapes, a thin API client.

The builders are pure functions, one per resource: ``rayjob`` (the RayJob), ``raycluster``
(its Ray cluster), ``pod`` (a group's pod template), with ``metadata`` (labels,
annotations, owner), ``options`` and the TPU table (``tpu``); the HTTP client
lives in ``tunix_rt.kuberay.client`` (imported on demand, it needs kopf and aiohttp).
"""

from tunix_rt.kuberay.errors import ManifestError
from tunix_rt.kuberay.metadata import Owner
from tunix_rt.kuberay.options import BuildOptions
from tunix_rt.kuberay.rayjob import (
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
