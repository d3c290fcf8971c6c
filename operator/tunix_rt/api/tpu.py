"""TPU slices as GKE and KubeRay see them: accelerator type + topology -> hosts x chips.

One table for admission (``NodePool``, ``check_placement``) and the RayJob builder.

GKE schedules a TPU slice as ``hosts`` nodes (one Ray worker pod each) that request
``chips_per_host`` ``google.com/tpu`` each, selected by the node labels
``cloud.google.com/gke-tpu-accelerator`` and ``cloud.google.com/gke-tpu-topology``.
KubeRay models a slice as one worker-group replica with ``numOfHosts`` pods.

* v5e and v6e (2D torus): 1x1, 2x2 and 2x4 fit one host (1, 4 or 8 chips); larger
  slices (4x4 ... 16x16) are multi-host with 4 chips per host, so 4x4 is 4 hosts of 4.
* v4 and v5p (3D torus): 4 chips per host; 2x2x1 is one host, 2x2x2 two hosts, and so on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tunix_rt.api.errors import ManifestError


@dataclass(frozen=True)
class TpuGeneration:
    """One TPU generation and its GKE node label value."""

    name: str
    gke_accelerator: str
    dims: int
    chips_per_host: int
    """Chips per host of multi-host slices."""
    single_host: dict[str, int]
    """Topologies served by one host -> chips on that host."""
    multi_host: tuple[str, ...] | None
    """Allowed multi-host topologies; None: any AxBxC whose chip count is a multiple of 4."""
    max_chips: int
    aliases: tuple[str, ...] = ()
    ray_type: str = ""
    """Ray's ``accelerator_type`` for it (``ray.util.tpu``, Ray Train's ScalingConfig)."""


RAY_TYPES = {"v4": "TPU-V4", "v5e": "TPU-V5LITEPOD", "v5p": "TPU-V5P", "v6e": "TPU-V6E"}


@dataclass(frozen=True)
class _Torus:
    """What a torus shape puts on one host, and which larger (multi-host) slices it has."""

    dims: int
    single_host: dict[str, int]
    multi_host: tuple[str, ...] | None


_TORUS_3D = _Torus(3, {"2x2x1": 4}, None)
"""v4, v5p: 2x2x1 is one host of 4 chips; any larger AxBxC is hosts of 4."""
_TORUS_2D = _Torus(2, {"1x1": 1, "2x2": 4, "2x4": 8}, ("4x4", "4x8", "8x8", "8x16", "16x16"))
"""v5e, v6e: up to 2x4 on one host (1, 4 or 8 chips); larger slices are hosts of 4."""


def _generation(
    name: str, gke_accelerator: str, torus: _Torus, max_chips: int, aliases: tuple[str, ...]
) -> TpuGeneration:
    return TpuGeneration(
        ray_type=RAY_TYPES[name],
        name=name,
        gke_accelerator=gke_accelerator,
        dims=torus.dims,
        chips_per_host=4,
        single_host=dict(torus.single_host),
        multi_host=torus.multi_host,
        max_chips=max_chips,
        aliases=aliases,
    )


GENERATIONS: tuple[TpuGeneration, ...] = (
    _generation("v4", "tpu-v4-podslice", _TORUS_3D, 4096, ("v4", "tpu-v4")),
    _generation(
        "v5e",
        "tpu-v5-lite-podslice",
        _TORUS_2D,
        256,
        ("v5e", "v5litepod", "tpu-v5e", "tpu-v5-lite", "tpu-v5e-slice"),
    ),
    _generation("v5p", "tpu-v5p-slice", _TORUS_3D, 8960, ("v5p", "tpu-v5p")),
    _generation("v6e", "tpu-v6e-slice", _TORUS_2D, 256, ("v6e", "tpu-v6e", "trillium")),
)


def accelerator_names() -> list[str]:
    """Every value ``tpuAccelerator`` may take: GKE label values and their short aliases."""
    return [name for gen in GENERATIONS for name in (gen.gke_accelerator, *gen.aliases)]


GKE_TPU_ACCELERATOR_LABEL = "cloud.google.com/gke-tpu-accelerator"
GKE_TPU_TOPOLOGY_LABEL = "cloud.google.com/gke-tpu-topology"
TPU_RESOURCE = "google.com/tpu"


@dataclass(frozen=True)
class TpuSlice:
    """One slice: what a KubeRay TPU worker-group replica is made of."""

    generation: str
    gke_accelerator: str
    topology: str
    chips: int
    hosts: int
    chips_per_host: int

    @property
    def multi_host(self) -> bool:
        return self.hosts > 1


def generation_for(accelerator: str, field: str = "tpuAccelerator") -> TpuGeneration:
    """The generation of a GKE accelerator label value (or a short alias such as ``v6e``)."""
    key = accelerator.strip().lower()
    for gen in GENERATIONS:
        if key == gen.gke_accelerator or key in gen.aliases:
            return gen
    known = ", ".join(g.gke_accelerator for g in GENERATIONS)
    raise ManifestError(field, f"unknown TPU accelerator {accelerator!r}; use one of {known}")


def _parse_topology(topology: str, dims: int, field: str, gen: TpuGeneration) -> list[int]:
    parts = topology.strip().lower().split("x")
    try:
        sizes = [int(p) for p in parts]
    except ValueError:
        sizes = []
    if len(sizes) != dims or any(s < 1 for s in sizes):
        example = "2x2x2" if dims == 3 else "4x4"
        raise ManifestError(
            field,
            f"topology {topology!r} is not valid for {gen.gke_accelerator}: "
            f"it takes {dims} dimensions, e.g. {example}",
        )
    return sizes


def tpu_slice(
    accelerator: str,
    topology: str,
    *,
    accelerator_field: str = "tpuAccelerator",
    topology_field: str = "tpuTopology",
) -> TpuSlice:
    """Hosts and chips per host of a slice, or a ManifestError naming the field at fault."""
    gen = generation_for(accelerator, accelerator_field)
    sizes = _parse_topology(topology, gen.dims, topology_field, gen)
    canonical = "x".join(str(s) for s in sizes)
    chips = math.prod(sizes)
    if canonical in gen.single_host:
        per_host = gen.single_host[canonical]
        return TpuSlice(gen.name, gen.gke_accelerator, canonical, chips, 1, per_host)
    if gen.multi_host is not None:
        if canonical not in gen.multi_host:
            valid = ", ".join([*gen.single_host, *gen.multi_host])
            raise ManifestError(
                topology_field,
                f"topology {topology!r} is not offered for {gen.gke_accelerator}; "
                f"use one of {valid}",
            )
    elif chips % gen.chips_per_host or chips < gen.chips_per_host:
        raise ManifestError(
            topology_field,
            f"topology {topology!r} has {chips} chips; {gen.gke_accelerator} slices need a "
            f"multiple of {gen.chips_per_host} chips (e.g. 2x2x1, 2x2x2, 2x2x4)",
        )
    if chips > gen.max_chips:
        raise ManifestError(
            topology_field,
            f"topology {topology!r} has {chips} chips, more than a {gen.name} pod "
            f"({gen.max_chips})",
        )
    hosts = chips // gen.chips_per_host
    return TpuSlice(gen.name, gen.gke_accelerator, canonical, chips, hosts, gen.chips_per_host)
