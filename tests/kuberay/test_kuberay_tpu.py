"""TPU slice shapes: accelerator type + topology -> hosts x chips per host (GKE's table)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tunix_rt.kuberay import GENERATIONS, ManifestError, tpu_slice

SHAPES: dict[str, dict[str, list[int]]] = yaml.safe_load(
    (Path(__file__).parent / "tpu_shapes.yaml").read_text()
)
"""accelerator -> topology -> [hosts, chips per host, chips] (``tpu_shapes.yaml``)."""


@pytest.mark.parametrize(
    ("accelerator", "topology", "hosts", "per_host", "chips"),
    [
        (acc, topology, *counts)
        for acc, shapes in SHAPES.items()
        for topology, counts in shapes.items()
    ],
)
def test_hosts_and_chips(
    accelerator: str, topology: str, hosts: int, per_host: int, chips: int
) -> None:
    shape = tpu_slice(accelerator, topology)
    assert (shape.hosts, shape.chips_per_host, shape.chips) == (hosts, per_host, chips)
    assert shape.gke_accelerator == accelerator
    assert shape.hosts * shape.chips_per_host == shape.chips
    assert shape.multi_host is (hosts > 1)


def test_aliases_normalise_to_the_gke_label() -> None:
    assert tpu_slice("v6e", "2x2").gke_accelerator == "tpu-v6e-slice"
    assert tpu_slice("v5e", "2x2").gke_accelerator == "tpu-v5-lite-podslice"
    assert tpu_slice("V5P", "2x2x1").gke_accelerator == "tpu-v5p-slice"


def test_table_covers_the_four_generations() -> None:
    assert {g.gke_accelerator for g in GENERATIONS} == {
        "tpu-v4-podslice",
        "tpu-v5-lite-podslice",
        "tpu-v5p-slice",
        "tpu-v6e-slice",
    }


@pytest.mark.parametrize(
    ("accelerator", "topology", "field", "words"),
    [
        (
            "tpu-v7-slice",
            "2x2",
            "pools[0].tpuAccelerator",
            ["unknown TPU accelerator", "tpu-v6e-slice"],
        ),
        ("tpu-v6e-slice", "3x3", "pools[0].tpuTopology", ["not offered", "4x4"]),
        ("tpu-v6e-slice", "2x2x2", "pools[0].tpuTopology", ["2 dimensions"]),
        ("tpu-v5p-slice", "4x4", "pools[0].tpuTopology", ["3 dimensions"]),
        ("tpu-v4-podslice", "1x1x3", "pools[0].tpuTopology", ["multiple of 4"]),
        ("tpu-v6e-slice", "axb", "pools[0].tpuTopology", ["not valid"]),
    ],
)
def test_bad_shapes_name_the_field(
    accelerator: str, topology: str, field: str, words: list[str]
) -> None:
    with pytest.raises(ManifestError) as info:
        tpu_slice(
            accelerator,
            topology,
            accelerator_field="pools[0].tpuAccelerator",
            topology_field="pools[0].tpuTopology",
        )
    assert info.value.field == field
    text = str(info.value)
    assert text.startswith(field + ":")
    for word in words:
        assert word in text
