"""The GKE machine data file: it loads, its figures agree with each other, and the nodes the
simulated cluster is built from carry GKE's labels, taints and allocatable."""

from __future__ import annotations

import pytest

from support.gke_nodes import pool_nodes, simulated_cluster
from tunix_rt.api.machines import GIB, MIB, catalog
from tunix_rt.api.tpu import tpu_slice


def test_gke_allocatable_follows_the_documented_tiers() -> None:
    cat = catalog()
    # n2-standard-8: 8 vCPU -> 6% + 1% + 2 x 0.5% + 4 x 0.25% = 0.09 CPU reserved;
    # 32 GiB -> 25% of 4 + 20% of 4 + 10% of 8 + 6% of 16 = 3.56 GiB, + 100 MiB eviction.
    cpu, memory = cat.allocatable(cat.machines["n2-standard-8"])
    assert cpu == pytest.approx(7.91)
    assert memory == 32 * GIB - int(3.56 * GIB) - 100 * MIB
    # ct6e-standard-4t: 180 vCPU, 720 GiB -> 179.48 CPUs, ~698.7 GiB.
    cpu, memory = cat.allocatable(cat.machines["ct6e-standard-4t"])
    assert cpu == pytest.approx(179.48)
    assert memory / GIB == pytest.approx(698.74, abs=0.01)


def test_tpu_machines_agree_with_the_slice_table() -> None:
    cat = catalog()
    for machine in cat.machines.values():
        if machine.tpu is None:
            continue
        for topology in machine.tpu.single_host:
            shape = tpu_slice(machine.tpu.accelerator, topology)
            assert shape.chips == machine.tpu.chips, (machine.name, topology)
    # a v6e 2x4 slice is one 8-chip VM or two 4-chip VMs: GKE builds it from either
    names = {m.name for m in cat.tpu_machines("tpu-v6e-slice", "2x4", 1)}
    names |= {m.name for m in cat.tpu_machines("tpu-v6e-slice", "2x4", 2)}
    assert names == {"ct6e-standard-8t", "ct6e-standard-4t"}


def test_simulated_nodes_carry_gke_labels_taints_and_allocatable() -> None:
    nodes = {n["metadata"]["name"]: n for n in simulated_cluster()}
    slice_hosts = [n for n in nodes.values() if n["metadata"]["labels"].get(
        "cloud.google.com/gke-nodepool") == "v6e-4x4"]  # fmt: skip
    assert len(slice_hosts) == 4
    host = slice_hosts[0]
    assert host["metadata"]["labels"]["cloud.google.com/gke-tpu-accelerator"] == "tpu-v6e-slice"
    assert host["metadata"]["labels"]["cloud.google.com/gke-tpu-topology"] == "4x4"
    assert host["spec"]["taints"] == [
        {"key": "google.com/tpu", "value": "present", "effect": "NoSchedule"}
    ]
    assert host["status"]["capacity"]["google.com/tpu"] == "4"
    assert host["status"]["capacity"]["cpu"] == "180"
    assert host["status"]["allocatable"]["cpu"] == "179480m"
    assert host["metadata"]["annotations"] == {"kwok.x-k8s.io/node": "fake"}
    l4 = next(
        n for n in nodes.values() if "cloud.google.com/gke-accelerator" in n["metadata"]["labels"]
    )
    assert l4["metadata"]["labels"]["cloud.google.com/gke-accelerator"] == "nvidia-l4"
    assert l4["spec"]["taints"][0]["key"] == "nvidia.com/gpu"
    assert l4["status"]["allocatable"]["nvidia.com/gpu"] == "1"
    ready = [c for c in host["status"]["conditions"] if c["type"] == "Ready"]
    assert ready and ready[0]["status"] == "True"


def test_a_slice_pool_must_hold_whole_slices() -> None:
    with pytest.raises(ValueError, match="no whole number"):
        pool_nodes("bad", "ct6e-standard-4t", 3, topology="4x4")
