"""Admission against GKE machine shapes (issue 22, item 2): pools without stated sizes take
their machine's share, GKE's own rules (all chips of a TPU host, the two kinds of v5e/v6e
2x4 slice, a machine's limits) are checked, and maxConcurrentTrials is held against what
the pools can run at once. Each case goes through ``check_document`` (``tunix-rt validate``)
and, where it is accepted, through the RayJob builder: admission and the built pods agree."""

from __future__ import annotations

from typing import Any

import pytest
from test_admission import errors, sweep_doc, sweep_spec
from test_api_crd import cel_violations, spec_schema

from tunix_rt.api.sweep import SweepSpec
from tunix_rt.kuberay import Owner, build_sweep_rayjob

L4 = {"name": "l4", "accelerator": "gpu", "gpusPerPod": 1, "gpuType": "nvidia-l4", "replicas": 4}
V6E_2X2 = {
    "name": "v6e",
    "accelerator": "tpu",
    "tpuAccelerator": "tpu-v6e-slice",
    "tpuTopology": "2x2",
}
V6E_2X4 = {**V6E_2X2, "name": "v6e-8", "tpuTopology": "2x4"}


def workers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The worker groups of the RayJob built for an accepted Sweep spec."""
    sweep = SweepSpec.model_validate(spec)
    job = build_sweep_rayjob(
        name="s", namespace="ns", spec=sweep, owner=Owner("tunixrt.io/v1alpha1", "Sweep", "s", "u")
    )
    groups: list[dict[str, Any]] = job["spec"]["rayClusterSpec"]["workerGroupSpecs"]
    return groups


def accepted_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """The (first) worker group of a Sweep of ``spec``, which admission accepts."""
    assert errors(sweep_doc(**spec)) == []
    return workers(sweep_spec(**spec))[0]


def container(group: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = group["template"]["spec"]["containers"][0]
    return found


def four_at_once(resources: dict[str, Any], pool: dict[str, Any]) -> dict[str, Any]:
    """A Sweep spec of 8 trials of ``resources``, 4 at once, on the one ``pool``."""
    return {
        "resources": resources,
        "maxConcurrentTrials": 4,
        "maxTrials": 8,
        "cluster": {"pools": [pool]},
    }


def test_gpu_sweep_of_4_cpus_per_trial_on_an_l4_pool_without_sizes_is_accepted() -> None:
    group = accepted_worker(four_at_once({"cpu": 4, "gpu": 1, "memory": "16Gi"}, L4))
    # g2-standard-8 (the assumed L4 machine): 7.91 allocatable CPUs less 0.5 headroom
    requests = container(group)["resources"]["requests"]
    assert requests == {"cpu": "7", "memory": "27Gi", "nvidia.com/gpu": "1"}
    assert group["template"]["spec"]["nodeSelector"] == {
        "cloud.google.com/gke-accelerator": "nvidia-l4"
    }


def test_v6e_2x2_sweep_of_8_cpus_per_trial_is_accepted_and_pods_take_the_host() -> None:
    group = accepted_worker(four_at_once({"cpu": 8, "tpu": 1}, V6E_2X2))
    requests = container(group)["resources"]["requests"]
    assert requests == {"cpu": "178", "memory": "697Gi", "google.com/tpu": "4"}


def test_four_80_cpu_trials_on_one_v6e_host_are_refused_saying_2_run_at_once() -> None:
    spec = four_at_once({"cpu": 80, "tpu": 1}, V6E_2X2)
    [(field, message)] = errors(sweep_doc(**spec))
    assert field == "spec.maxConcurrentTrials"
    assert "the pools hold 2 at once" in message
    assert "lower maxConcurrentTrials to 2" in message
    # two hosts hold four
    assert errors(sweep_doc(**{**spec, "cluster": {"pools": [{**V6E_2X2, "replicas": 2}]}})) == []
    # so does an autoscaling pool that may grow to two
    grown = {**V6E_2X2, "replicas": 1, "maxReplicas": 2}
    assert errors(sweep_doc(**{**spec, "cluster": {"pools": [grown]}})) == []


def test_concurrency_counts_every_slot_of_every_pod() -> None:
    """3 concurrent half-GPU trials need 2 L4 pods (2 trials each); one pod holds 2."""
    spec = {
        "resources": {"cpu": 1, "gpu": 0.5},
        "maxConcurrentTrials": 3,
        "maxTrials": 8,
        "cluster": {"pools": [{**L4, "replicas": 1}]},
    }
    [(field, message)] = errors(sweep_doc(**spec))
    assert field == "spec.maxConcurrentTrials" and "hold 2 at once" in message
    assert errors(sweep_doc(**{**spec, "cluster": {"pools": [{**L4, "replicas": 2}]}})) == []


@pytest.mark.parametrize(
    ("pool", "field", "fragments"),
    [
        (
            {**V6E_2X2, "cpu": "200"},
            "spec.cluster.pools[0].cpu",
            ("ct6e-standard-4t", "leaves 179.48 CPUs", "pods then ask 178"),
        ),
        (
            {**L4, "memory": "64Gi", "machineType": "g2-standard-8"},
            "spec.cluster.pools[0].memory",
            ("g2-standard-8", "leaves 28.3Gi to pods"),
        ),
        (
            {**L4, "machineType": "n2-standard-8"},
            "spec.cluster.pools[0].machineType",
            ("n2-standard-8 is a CPU machine",),
        ),
        (
            {**L4, "gpusPerPod": 2, "machineType": "g2-standard-8"},
            "spec.cluster.pools[0].gpusPerPod",
            ("exceeds the 1 GPU of a g2-standard-8",),
        ),
        (
            {**L4, "machineType": "a2-highgpu-1g"},
            "spec.cluster.pools[0].gpuType",
            ("a2-highgpu-1g has nvidia-tesla-a100",),
        ),
        (
            V6E_2X4,
            "spec.cluster.pools[0].machineType",
            ("2 x ct6e-standard-4t", "1 x ct6e-standard-8t", "set machineType"),
        ),
        (
            {**V6E_2X2, "machineType": "ct6e-standard-8t"},
            "spec.cluster.pools[0].machineType",
            ("from ct6e-standard-4t, not from ct6e-standard-8t",),
        ),
        (
            {**V6E_2X2, "machineType": "ct5lp-hightpu-4t"},
            "spec.cluster.pools[0].machineType",
            ("carries tpu-v5-lite-podslice chips",),
        ),
        (
            {**V6E_2X2, "machineType": "ct9-made-up"},
            "spec.cluster.pools[0].machineType",
            ("unknown machine type", "ct6e-standard-4t"),
        ),
    ],
    ids=[
        "cpu-over-v6e",
        "memory-over-g2",
        "cpu-machine-gpu-pool",
        "gpus-over-machine",
        "gpu-type-mismatch",
        "2x4-ambiguous",
        "2x2-on-8t",
        "v5e-machine-v6e-pool",
        "unknown-machine",
    ],
)
def test_pools_that_contradict_their_machine_are_refused(
    pool: dict[str, Any], field: str, fragments: tuple[str, ...]
) -> None:
    found = errors(sweep_doc(resources={"cpu": 1}, cluster={"pools": [pool]}))
    assert any(f == field and all(x in m for x in fragments) for f, m in found), found


def test_a_2x4_pool_names_its_machine_and_the_rayjob_follows() -> None:
    two_vms = {**V6E_2X4, "machineType": "ct6e-standard-4t"}
    one_vm = {**V6E_2X4, "machineType": "ct6e-standard-8t"}
    for pool, hosts, chips in ((two_vms, 2, "4"), (one_vm, 1, "8")):
        spec = {"resources": {"cpu": 8, "tpu": 4}, "cluster": {"pools": [pool]}}
        group = accepted_worker(spec)
        assert group["numOfHosts"] == hosts
        assert container(group)["resources"]["limits"]["google.com/tpu"] == chips
        selector = group["template"]["spec"]["nodeSelector"]
        assert selector["node.kubernetes.io/instance-type"] == pool["machineType"]
        assert selector["cloud.google.com/gke-tpu-topology"] == "2x4"
    # 8 chips for one trial fit the 8-chip VM only
    spec = {"resources": {"cpu": 8, "tpu": 8}, "cluster": {"pools": [two_vms]}}
    assert any("offers 4" in m for _, m in errors(sweep_doc(**spec)))
    # a whole-slice trial of 2x4 means the one-host slice; two 4-chip VMs are another shape
    spec = {
        "resources": {"tpuSlice": {"accelerator": "v6e", "topology": "2x4"}},
        "cluster": {"pools": [two_vms]},
    }
    assert any("2 hosts of 4 chips" in m for _, m in errors(sweep_doc(**spec)))


def test_pool_without_sizes_or_machine_says_so() -> None:
    pool = {"name": "gpu", "accelerator": "gpu", "gpusPerPod": 1, "replicas": 4}
    found = errors(sweep_doc(resources={"cpu": 4, "gpu": 1}, cluster={"pools": [pool]}))
    assert any(
        "cpu 2, not stated: the default" in m and "state the pool's cpu (or its machineType)" in m
        for _, m in found
    ), found


CEL_CASES = [
    ("unknown machine type", {**V6E_2X2, "machineType": "ct9-made-up"}),
    ("a GPU machine type needs accelerator: gpu", {"name": "w", "machineType": "g2-standard-8"}),
    ("a TPU machine type needs accelerator: tpu", {**L4, "machineType": "ct6e-standard-4t"}),
    ("a CPU machine type is for accelerator: cpu", {**L4, "machineType": "n2-standard-8"}),
    ("gpusPerPod exceeds", {**L4, "gpusPerPod": 2, "machineType": "g2-standard-8"}),
    ("gpuType differs", {**L4, "machineType": "a2-highgpu-1g"}),
    ("set machineType", V6E_2X4),
]


@pytest.mark.parametrize(("message", "pool"), CEL_CASES, ids=[m for m, _ in CEL_CASES])
def test_cel_refuses_the_machine_rules_the_models_refuse(
    message: str, pool: dict[str, Any]
) -> None:
    spec = sweep_spec(cluster={"pools": [pool]})
    assert any(message in v for v in cel_violations(spec, spec_schema("Sweep")))
    assert errors(sweep_doc(cluster={"pools": [pool]})) != []


def test_cel_and_models_accept_named_machines_and_tpu_chip_counts() -> None:
    for patch in [
        {"cluster": {"pools": [{**V6E_2X4, "machineType": "ct6e-standard-4t"}]}},
        {"cluster": {"pools": [{**L4, "machineType": "g2-standard-48", "gpusPerPod": 4}]}},
        {"cluster": {"pools": [{"name": "c", "machineType": "n2-standard-16", "cpu": "15"}]}},
        {"resources": {"tpu": 2}, "cluster": {"pools": [V6E_2X2]}},
    ]:
        assert cel_violations(sweep_spec(**patch), spec_schema("Sweep")) == [], patch
        assert errors(sweep_doc(**patch)) == [], patch
    assert any(
        "1, 2, 4 or 8" in v
        for v in cel_violations(sweep_spec(resources={"tpu": 3}), spec_schema("Sweep"))
    )


def test_gpu_pool_sizes_are_checked_against_its_gpu_type_only_when_no_machine_is_named() -> None:
    """Without machineType the cluster may have any machine with that GPU: cpu 8 is fine
    (g2-standard-12 and up hold it); cpu 100 fits no L4 machine (g2-standard-96 leaves 95.7)."""
    fine = {**L4, "cpu": "8", "memory": "32Gi"}
    assert errors(sweep_doc(resources={"cpu": 4, "gpu": 1}, cluster={"pools": [fine]})) == []
    found = errors(
        sweep_doc(resources={"cpu": 4, "gpu": 1}, cluster={"pools": [{**L4, "cpu": "100"}]})
    )
    assert any(
        f == "spec.cluster.pools[0].cpu"
        and "no GKE machine with that GPU" in m
        and "g2-standard-96" in m
        for f, m in found
    ), found


def test_multi_worker_trials_spread_over_capped_pools_as_ray_does() -> None:
    """Found by tests/control_plane/test_admission_vs_scheduler.py: Ray places a trial's
    CPU workers on any node with the CPUs, and a trial's slices in any pool of that shape,
    so capped pools together may hold what none holds alone."""
    capped = {"name": "a", "machineType": "n2-standard-8", "maxReplicas": 1}
    spread = {
        "resources": {"cpu": 2, "workers": 2},
        "maxConcurrentTrials": 2,
        "cluster": {"pools": [capped, {**L4, "name": "b"}]},
    }
    assert errors(sweep_doc(**spread)) == []
    alone = {**spread, "cluster": {"pools": [capped]}}
    [(field, message)] = errors(sweep_doc(**alone))
    assert field == "spec.maxConcurrentTrials" and "at most 1 (maxReplicas 1)" in message
    slices = {
        "resources": {"tpuSlice": {"accelerator": "v6e", "topology": "2x2"}},
        "maxConcurrentTrials": 2,
        "cluster": {
            "pools": [{**V6E_2X2, "maxReplicas": 1}, {**V6E_2X2, "name": "b", "maxReplicas": 1}]
        },
    }
    assert errors(sweep_doc(**slices)) == []
    assert workers(sweep_spec(**slices))[0]["replicas"] == 1  # nothing to resize
