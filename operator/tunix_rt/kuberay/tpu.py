"""TPU slices as GKE and KubeRay see them (the facts live in :mod:`tunix_rt.api.tpu`, where
admission checks pools with them; the RayJob builder uses the same table)."""

from __future__ import annotations

from tunix_rt.api.tpu import (
    GENERATIONS,
    GKE_TPU_ACCELERATOR_LABEL,
    GKE_TPU_TOPOLOGY_LABEL,
    TPU_RESOURCE,
    TpuGeneration,
    TpuSlice,
    generation_for,
    tpu_slice,
)

__all__ = [
    "GENERATIONS",
    "GKE_TPU_ACCELERATOR_LABEL",
    "GKE_TPU_TOPOLOGY_LABEL",
    "TPU_RESOURCE",
    "TpuGeneration",
    "TpuSlice",
    "generation_for",
    "tpu_slice",
]
