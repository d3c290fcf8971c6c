"""A trial's shape in the spec: what admission accepts for trials over several hosts, what
it refuses (field named, numbers side by side, the fix said), and what the driver asks
Ray Train for, checked against Ray's own TPU arithmetic."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from support.manifests import write_sweep
from tunix_rt.api.placement import check_placement, spanning_fit
from tunix_rt.api.rehearsal import RehearsalSpec
from tunix_rt.api.sweep import SweepSpec
from tunix_rt.cli import app

SEARCH = {"learningRate": {"type": "loguniform", "low": 1.0e-4, "high": 1.0e-2}}
V6E_4X4 = {"accelerator": "tpu-v6e-slice", "topology": "4x4"}


def tpu_pool(topology: str = "4x4", accelerator: str = "tpu-v6e-slice", **kw: Any) -> dict:
    return {
        "name": "tpu",
        "accelerator": "tpu",
        "tpuAccelerator": accelerator,
        "tpuTopology": topology,
        "cpu": "24",
        "memory": "96Gi",
        **kw,
    }


def gpu_pool(gpus: int = 4, **kw: Any) -> dict:
    return {"name": "gpu", "accelerator": "gpu", "gpusPerPod": gpus, "cpu": "16",
            "memory": "64Gi", **kw}  # fmt: skip


def spec(resources: dict, pools: list[dict] | None = None, concurrent: int = 1) -> dict:
    out: dict[str, Any] = {
        "searchSpace": SEARCH,
        "maxTrials": max(2, concurrent),
        "maxConcurrentTrials": concurrent,
        "resources": resources,
    }
    if pools is not None:
        out["cluster"] = {"pools": pools}
    return out


def errors(data: dict) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as info:
        SweepSpec.model_validate(data)
    return [(".".join(map(str, e["loc"])), e["msg"]) for e in info.value.errors()]


# ----------------------------------------------------------------------------- accepted


@pytest.mark.parametrize("concurrent", [1, 2])
def test_a_v6e_4x4_trial_takes_a_slice_and_the_pool_grows_to_the_concurrent_trials(
    concurrent: int,
) -> None:
    sweep = SweepSpec.model_validate(
        spec({"tpuSlice": V6E_4X4, "cpu": 8}, [tpu_pool()], concurrent)
    )
    res = sweep.resources
    assert res.spans_hosts() and res.worker_count() == 4 and res.chips_per_worker() == 4
    fit = spanning_fit(sweep)
    assert fit is not None and fit.index == 0 and fit.workers_per_pod == 1
    assert fit.pods == concurrent  # one slice per concurrent trial
    assert check_placement(sweep) == []


def test_gpu_workers_fit_pods_and_pack_per_pod() -> None:
    two_pods = SweepSpec.model_validate(
        spec({"workers": 2, "gpusPerWorker": 4, "cpu": 8}, [gpu_pool(4, replicas=2)])
    )
    fit = spanning_fit(two_pods)
    assert fit is not None and (fit.workers_per_pod, fit.pods) == (1, 2)
    # Two 4-GPU workers share an 8-GPU pod: 2 trials of 2 workers need 2 pods.
    packed = SweepSpec.model_validate(
        spec({"workers": 2, "gpusPerWorker": 4, "cpu": 4}, [gpu_pool(8)], concurrent=2)
    )
    fit = spanning_fit(packed)
    assert fit is not None and (fit.workers_per_pod, fit.pods) == (2, 2)


def test_one_pod_trials_are_unchanged() -> None:
    sweep = SweepSpec.model_validate(spec({"tpu": 4}, [tpu_pool("2x2")]))
    assert not sweep.resources.spans_hosts() and spanning_fit(sweep) is None
    # Unset multi-host fields stay off the wire (the RayJobs of existing sweeps keep
    # their bytes).
    assert set(sweep.resources.to_wire()) == {"cpu", "gpu", "tpu"}


# ----------------------------------------------------------------------------- refused


def test_more_chips_than_a_host_is_refused_with_the_slice_as_the_fix() -> None:
    """The bug this issue starts from: tpu: 16 on a 4-host slice used to be accepted (16
    is now refused sooner: Ray hands a trial 1, 2, 4 or 8 chips; 8 still needs a slice)."""
    ((field, message),) = errors(spec({"tpu": 8}, [tpu_pool()]))
    assert field == "resources.tpu"
    assert "8 TPU chips" in message and "offers 4" in message
    assert "4 hosts of 4 chips" in message and "resources.tpuSlice" in message


@pytest.mark.parametrize(
    ("resources", "pools", "concurrent", "field", "words"),
    [
        (
            {"tpuSlice": V6E_4X4},
            [tpu_pool("2x2")],
            1,
            "resources.tpuSlice",
            ["tpu-v6e-slice 4x4 slice (4 hosts of 4 chips)", "'tpu' (tpu-v6e-slice 2x2",
             "tpuTopology: 4x4"],
        ),
        (
            {"tpuSlice": V6E_4X4},
            [gpu_pool()],
            1,
            "resources.tpuSlice",
            ["no pool has TPUs", "accelerator: tpu"],
        ),
        (
            {"tpuSlice": V6E_4X4, "cpu": 32},
            [tpu_pool()],
            1,
            "resources.cpu",
            ["asks 32 CPUs", "offers 24", "lower resources.cpu"],
        ),
        (
            {"tpuSlice": V6E_4X4},
            [tpu_pool(minReplicas=0, maxReplicas=1)],
            2,
            "maxConcurrentTrials",
            ["needs 2 slices", "at most 1 (maxReplicas 1)", "maxReplicas to 2"],
        ),
        (
            {"workers": 2, "gpusPerWorker": 8},
            [gpu_pool(4, replicas=2)],
            1,
            "resources.gpusPerWorker",
            ["asks 8 GPUs", "offers 4", "gpusPerPod 4"],
        ),
        (
            {"workers": 2, "gpusPerWorker": 4},
            [gpu_pool(4, replicas=2, maxReplicas=2)],
            2,
            "maxConcurrentTrials",
            ["need 4 pods of pool 'gpu'", "at most 2 (maxReplicas 2)", "maxReplicas to 4"],
        ),
        (
            {"workers": 2, "gpusPerWorker": 4},
            [tpu_pool()],
            1,
            "resources.gpusPerWorker",
            ["no pool has GPU pods", "gpusPerPod >= 4"],
        ),
    ],
)  # fmt: skip
def test_unplaceable_trials_are_refused(
    resources: dict, pools: list[dict], concurrent: int, field: str, words: list[str]
) -> None:
    ((where, message),) = errors(spec(resources, pools, concurrent))
    assert where == field
    for word in words:
        assert word in message, message


@pytest.mark.parametrize(
    ("resources", "field", "words"),
    [
        ({"tpuSlice": V6E_4X4, "workers": 2}, "resources.workers", ["4 hosts", "workers: 4"]),
        ({"workers": 2, "gpu": 1}, "resources.gpu", ["gpusPerWorker"]),
        ({"tpuSlice": V6E_4X4, "tpu": 4}, "resources.tpu", ["tpuSlice"]),
        ({"gpusPerWorker": 4}, "resources.gpusPerWorker", ["gpu: 4", "workers >= 2"]),
        ({"tpuSlice": {"accelerator": "v7", "topology": "4x4"}}, "resources.tpuSlice.accelerator",
         ["unknown TPU accelerator"]),
        ({"tpuSlice": {"accelerator": "v6e", "topology": "4x2"}}, "resources.tpuSlice.topology",
         ["not offered"]),
    ],
)  # fmt: skip
def test_inconsistent_shapes_are_refused(resources: dict, field: str, words: list[str]) -> None:
    found = errors(spec(resources))
    assert found[0][0] == field, found
    for word in words:
        assert word in found[0][1], found


def test_validate_refuses_an_unplaceable_sweep(tmp_path: Path) -> None:
    big = spec({"tpuSlice": V6E_4X4}, [tpu_pool(maxReplicas=1)], concurrent=2)
    path = write_sweep(tmp_path / "too-big.yaml", "too-big", big)
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    assert "spec.maxConcurrentTrials" in result.output
    assert "needs 2 slices" in result.output and "maxReplicas 1" in result.output


def test_a_rehearsal_stays_one_pod() -> None:
    """Multi-host runs are a Sweep feature; a Rehearsal's resources do not take them."""
    with pytest.raises(ValidationError, match="tpuSlice"):
        RehearsalSpec.model_validate({"trainer": {}, "resources": {"tpuSlice": V6E_4X4}})


# ----------------------------------------------------------------------------- Ray Train


@pytest.mark.parametrize(
    ("accelerator", "topology", "ray_type", "workers", "chips"),
    [
        ("tpu-v6e-slice", "4x4", "TPU-V6E", 4, 4),
        ("tpu-v6e-slice", "2x4", "TPU-V6E", 1, 8),  # a one-host slice: 1 worker, 8 chips
        ("tpu-v5p-slice", "2x2x2", "TPU-V5P", 2, 4),
        ("tpu-v5-lite-podslice", "4x8", "TPU-V5LITEPOD", 8, 4),
        ("tpu-v4-podslice", "2x2x4", "TPU-V4", 4, 4),
    ],
)
def test_scaling_config_agrees_with_rays_tpu_arithmetic(
    accelerator: str, topology: str, ray_type: str, workers: int, chips: int
) -> None:
    from ray.util.tpu import get_tpu_worker_resources

    from tunix_rt.tune import multihost

    sweep = SweepSpec.model_validate(
        spec({"tpuSlice": {"accelerator": accelerator, "topology": topology}, "cpu": 8})
    )
    config = multihost.scaling_config(sweep)
    assert config.use_tpu and config.topology == topology
    assert config.accelerator_type == ray_type
    assert config.num_workers == workers
    assert config.resources_per_worker == {"CPU": 8.0, "TPU": float(chips)}
    ray_workers, ray_resources = get_tpu_worker_resources(topology, ray_type)
    assert ray_workers == workers and ray_resources["TPU"] == chips


def test_scaling_config_of_gpu_and_cpu_workers() -> None:
    from tunix_rt.tune import multihost

    gpu = SweepSpec.model_validate(spec({"workers": 2, "gpusPerWorker": 4, "memory": "32Gi"}))
    config = multihost.scaling_config(gpu)
    assert config.use_gpu and not config.use_tpu and config.num_workers == 2
    assert config.resources_per_worker == {"CPU": 1.0, "GPU": 4.0, "memory": 32 * 2**30}
    assert multihost.total_resources(gpu) == {"cpu": 2.0, "gpu": 8.0}
    cpu = SweepSpec.model_validate(spec({"workers": 3, "cpu": 0.5}))
    config = multihost.scaling_config(cpu)
    assert not config.use_gpu and not config.use_tpu and config.num_workers == 3
    assert multihost.driver_resources() == {"cpu": 0, "tunix_rt_trial_driver": 1}


@pytest.mark.parametrize("backend", ["python", "tunix-sft"])
def test_a_trial_over_workers_needs_the_builtin_trainer(backend: str) -> None:
    """Only the built-in trainer splits its batch over processes: another backend on a
    4-host slice would repeat one trial's work on every host."""
    trainer: dict[str, Any] = {"backend": backend}
    if backend == "python":
        trainer |= {"entrypoint": "pkg.mod:train"}
    else:
        trainer |= {"model": {"name": "gemma3-tiny"}}
    data = spec({"tpuSlice": V6E_4X4, "cpu": 8}, [tpu_pool()]) | {"trainer": trainer}
    [(where, message)] = errors(data)
    assert where == "resources"
    assert "4 workers" in message and f"not backend {backend}" in message


def test_a_multi_host_trial_counts_every_chip_for_accelerator_hours() -> None:
    """A budget in accelerator-hours counts the whole slice (16 chips of a v6e 4x4) or
    every GPU of every worker, not one host's."""
    tpu = SweepSpec.model_validate(spec({"tpuSlice": V6E_4X4, "cpu": 8}, [tpu_pool()]))
    assert tpu.accelerators_per_trial() == 16.0
    gpus = SweepSpec.model_validate(
        spec({"workers": 2, "gpusPerWorker": 4, "cpu": 4}, [gpu_pool(gpus=4, maxReplicas=2)])
    )
    assert gpus.accelerators_per_trial() == 8.0
