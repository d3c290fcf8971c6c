"""Feasibility before quota (issue 26, item 3): a Tunix trial that cannot fit its pool's
accelerator memory is refused at admission, with the estimate and the device side by side
and the fixes named; CPU-only and unsized trials never are."""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from support.manifests import rehearsal_manifest, sweep_manifest
from tunix_rt.api.device_memory import GPU_MEMORY, HEADROOM, TPU_MEMORY, jax_share
from tunix_rt.api.feasibility import Target, largest_batch, memory_problems, trial_config
from tunix_rt.api.manifests import check_document
from tunix_rt.api.memory_estimate import (
    GEMMA3,
    TINY,
    WEIGHT_COPIES,
    estimate,
    shape_of,
    workload,
)
from tunix_rt.api.placement import check_placement
from tunix_rt.api.sweep import SweepSpec
from tunix_rt.api.takes_effect import TUNIX_MODEL_WIDTH
from tunix_rt.api.trainer import TrainerConfig
from tunix_rt.api.trainer_backends import TUNIX_BACKENDS, TUNIX_MODELS

GIB = 2**30
L4_POOL = {"name": "l4", "accelerator": "gpu", "gpusPerPod": 1, "gpuType": "nvidia-l4",
           "machineType": "g2-standard-8"}  # fmt: skip
V5P_POOL = {"name": "v5p", "accelerator": "tpu", "tpuAccelerator": "tpu-v5p-slice",
            "tpuTopology": "2x2x1", "cpu": "40", "memory": "160Gi"}  # fmt: skip
SFT_12B = {"backend": "tunix-sft", "model": {"name": "gemma3-12b"}, "batchSize": 32}


def sweep(
    trainer: dict[str, Any],
    resources: dict[str, Any],
    *pools: dict[str, Any],
    search: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A Sweep document; ``pools`` declared when given (else the operator's apply)."""
    spec: dict[str, Any] = {
        "trainer": trainer,
        "searchSpace": search
        or {"learningRate": {"type": "loguniform", "low": 1e-5, "high": 1e-3}},
        "resources": resources,
    }
    if pools:
        spec["cluster"] = {"pools": list(pools)}
    return sweep_manifest("s", spec)


def refusals(doc: dict[str, Any]) -> list[tuple[str, str]]:
    return check_document(doc).errors


# ----------------------------------------------------------------------------- the model sizes


def test_parameter_counts() -> None:
    """gemma3-tiny as built (``tunix_model``: 148,576 parameters, LoRA rank 8 adds 21,504);
    gemma3-270m as built here (268,098,176, logged by a random-init build); gemma3-1b is
    Tunix's "1B"."""
    assert GEMMA3[TINY].params() == 148_576
    assert GEMMA3[TINY].lora_params(8) == 21_504
    assert GEMMA3["gemma3-270m"].params() == 268_098_176
    assert GEMMA3["gemma3-1b"].params() == pytest.approx(1.0e9, rel=0.01)
    assert GEMMA3["gemma3-27b"].params() == pytest.approx(27.0e9, rel=0.01)


def test_every_tunix_model_has_a_shape_and_its_width() -> None:
    for name in TUNIX_MODELS:
        assert shape_of(name).embed == TUNIX_MODEL_WIDTH[name], name


def test_shapes_match_tunix() -> None:
    """The copied sizes are Tunix's own ``ModelConfig`` fields."""
    gemma = pytest.importorskip("tunix.models.gemma3.model")
    for name, shape in GEMMA3.items():
        if name == TINY:
            continue
        factory = name.replace("-", "_")
        if not hasattr(gemma.ModelConfig, factory):
            factory += "_pt"
        config = getattr(gemma.ModelConfig, factory)()
        assert shape.tunix_dims() == {k: getattr(config, k) for k in shape.tunix_dims()}, name
        assert shape.vocab == config.num_embed, name


@pytest.mark.slow
def test_tiny_counts_match_a_built_model() -> None:
    """The count and the LoRA count against the real gemma3-tiny and its qwix adapters."""
    pytest.importorskip("tunix")
    import jax
    from flax import nnx

    from tunix_rt.train.backends import tunix_model

    base = tunix_model._init_model(tunix_model.gemma_config(TINY, 264), 0)
    assert tunix_model.param_count(base) == GEMMA3[TINY].params()
    lora = tunix_model.apply_lora(base, 8, 16.0, 0)
    adapters = sum(x.size for x in jax.tree.leaves(nnx.state(lora, nnx.LoRAParam)))
    assert adapters == GEMMA3[TINY].lora_params(8)


def test_device_table_covers_the_project_names() -> None:
    """Every TPU generation of ``tpu.py`` and every GPU type of the machine table."""
    from tunix_rt.api.machines import catalog
    from tunix_rt.api.tpu import GENERATIONS

    assert {g.name for g in GENERATIONS} <= set(TPU_MEMORY)
    gpu_types = {m.gpu.type for m in catalog().machines.values() if m.gpu}
    assert gpu_types <= set(GPU_MEMORY)
    assert TPU_MEMORY["v5e"].bytes == 16 * 10**9 and GPU_MEMORY["nvidia-l4"].bytes == 24 * 10**9


def test_jax_share_reads_cluster_env() -> None:
    l4 = GPU_MEMORY["nvidia-l4"]
    assert jax_share(l4, None)[0] == 0.75
    assert jax_share(l4, {"XLA_PYTHON_CLIENT_MEM_FRACTION": "0.9"})[0] == 0.9
    assert jax_share(l4, {"XLA_PYTHON_CLIENT_PREALLOCATE": "false"})[0] == 1.0
    assert jax_share(TPU_MEMORY["v6e"], None)[0] == 1.0


# ----------------------------------------------------------------------------- the estimate


def tunix(backend: str, rank: int = 8, **fields: Any) -> TrainerConfig:
    data: dict[str, Any] = {"backend": backend, "model": {"name": "gemma3-1b"}, "loraRank": rank}
    return TrainerConfig.model_validate(data | fields)


@pytest.mark.parametrize("backend", TUNIX_BACKENDS)
def test_full_fine_tuning_needs_more_than_lora(backend: str) -> None:
    full = estimate(workload(tunix(backend, 0, batchSize=4)))
    lora = estimate(workload(tunix(backend, 8, batchSize=4)))
    assert full.bytes > lora.bytes
    assert (backend, True) in WEIGHT_COPIES and (backend, False) in WEIGHT_COPIES


def test_the_estimate_grows_with_what_it_reads() -> None:
    base = workload(tunix("tunix-grpo", batchSize=8, numGenerations=4, maxGenerationLength=64))
    for bigger in (
        base.with_batch(16),
        type(base)(**{**vars(base), "generations": 8}),
        type(base)(**{**vars(base), "seq": base.seq * 2}),
    ):
        assert estimate(bigger).bytes > estimate(base).bytes


def test_more_devices_divide_only_the_sharded_parts() -> None:
    """The model as built stays whole on the first device: four devices help, not 4x."""
    work = workload(tunix("tunix-sft", 0, batchSize=32))
    one, four = estimate(work, 1), estimate(work, 4)
    weights = GEMMA3["gemma3-1b"].params() * 2
    assert four.bytes < one.bytes
    assert four.phase("train").bytes >= weights  # type: ignore[union-attr]
    assert four.phase("build").bytes == weights  # type: ignore[union-attr]


def test_searchspace_corner_takes_the_hungriest_values() -> None:
    search = {
        "batchSize": {"type": "choice", "values": [4, 16, 8]},
        "loraRank": {"type": "randint", "low": 0, "high": 17},
        "numGenerations": {"type": "choice", "values": [2, 8]},
        "learningRate": {"type": "uniform", "low": 1e-5, "high": 1e-4},
    }
    trainer = {"backend": "tunix-grpo", "model": {"name": "gemma3-1b"}, "batchSize": 4}
    spec = SweepSpec.model_validate(sweep(trainer, {"tpu": 4}, V5P_POOL, search=search)["spec"])
    config, note = trial_config(spec)
    assert config is not None
    assert (config.batch_size, config.lora_rank, config.num_generations) == (16, 0, 8)
    assert "batchSize 16" in note and "loraRank 0" in note


# ----------------------------------------------------------------------------- admission


def test_full_fine_tuning_of_12b_on_one_l4_is_refused_with_the_numbers_and_fixes() -> None:
    found = refusals(sweep({**SFT_12B, "loraRank": 0}, {"cpu": 4, "gpu": 1}, L4_POOL))
    assert [f for f, _ in found] == ["spec.trainer", "spec.trainer"], found
    message = found[0][1]
    need = estimate(workload(TrainerConfig.model_validate({**SFT_12B, "loraRank": 0})))
    budget = int(GPU_MEMORY["nvidia-l4"].bytes * 0.75 * HEADROOM)
    for fragment in (
        f"needs about {need.bytes / GIB:.1f} GiB",
        f"which may fill {budget / GIB:.1f} GiB",
        "NVIDIA L4",
        "of its 24 GB",
        "75% (JAX's GPU preallocation)",
        "optimizer",
        "logits",
    ):
        assert fragment in message, (fragment, message)
    for fragment in ("LoRA (loraRank 8", "batchSize", "resources.gpu"):
        assert fragment in found[1][1], (fragment, found[1][1])


def test_lora_on_a_big_enough_slice_is_accepted() -> None:
    assert (
        refusals(sweep({**SFT_12B, "loraRank": 8, "batchSize": 8}, {"cpu": 8, "tpu": 4}, V5P_POOL))
        == []
    )


def test_the_searchspace_corner_is_what_gets_refused() -> None:
    """batchSize 8 fits a v5p chip; the searchSpace may draw 4096, which does not."""
    trainer = {"backend": "tunix-sft", "model": {"name": "gemma3-1b"}, "batchSize": 8,
               "dataset": {"trainSize": 20000}}  # fmt: skip
    assert refusals(sweep(trainer, {"tpu": 1}, V5P_POOL)) == []
    search = {"batchSize": {"type": "choice", "values": [8, 4096]}}
    found = refusals(sweep(trainer, {"tpu": 1}, V5P_POOL, search=search))
    assert found and "hungriest corner: batchSize 4096" in found[0][1], found
    assert "a smaller batch (batchSize" in found[1][1]


def test_cpu_only_and_unsized_trials_are_never_refused() -> None:
    trainer = {**SFT_12B, "model": {"name": "gemma3-27b"}, "loraRank": 0}
    cpu_pool = {"name": "cpu", "cpu": "8", "memory": "32Gi"}
    unsized_gpu = {
        "name": "gpu",
        "accelerator": "gpu",
        "gpusPerPod": 1,
        "cpu": "8",
        "memory": "32Gi",
    }
    assert refusals(sweep(trainer, {"cpu": 4}, cpu_pool)) == []
    assert refusals(sweep(trainer, {"cpu": 4}, L4_POOL)) == []  # the trial asks no GPU
    assert refusals(sweep(trainer, {"cpu": 4, "gpu": 1}, unsized_gpu)) == []
    assert refusals(sweep(trainer, {"cpu": 4, "gpu": 1})) == []  # the operator's pools decide


def test_the_operator_checks_its_default_pools_too() -> None:
    """No declared pools: the model skips placement, the operator's check_placement (with
    the pools it fills in) refuses."""
    doc = sweep({**SFT_12B, "loraRank": 0}, {"cpu": 4, "gpu": 1})
    spec = SweepSpec.model_validate(doc["spec"])
    assert memory_problems(spec) == []
    filled = copy.deepcopy(doc["spec"]) | {"cluster": {"pools": [L4_POOL]}}
    problems = check_placement(SweepSpec.model_validate(filled, context={"placement": False}))
    assert [f for f, _ in problems] == ["spec.trainer", "spec.trainer"]


def test_a_gpu_memory_fraction_in_cluster_env_counts() -> None:
    """A batch over JAX's default 75% of an L4 but under 95% fits once cluster.env says
    XLA_PYTHON_CLIENT_MEM_FRACTION 0.95 (the fix the refusal names)."""
    l4 = GPU_MEMORY["nvidia-l4"]
    low, high = (Target("l4", l4, 1, share, "").budget for share in (0.75, 0.95))
    batch = next(
        b
        for b in range(8, 512, 8)
        if low < estimate(workload(tunix("tunix-sft", 0, batchSize=b))).bytes <= high
    )
    trainer = {"backend": "tunix-sft", "model": {"name": "gemma3-1b"}, "loraRank": 0}
    trainer["batchSize"] = batch
    refused = refusals(sweep(trainer, {"gpu": 1}, L4_POOL))
    assert refused and "cluster.env XLA_PYTHON_CLIENT_MEM_FRACTION" in refused[1][1], refused
    doc = sweep(trainer, {"gpu": 1}, L4_POOL)
    doc["spec"]["cluster"]["env"] = {"XLA_PYTHON_CLIENT_MEM_FRACTION": "0.95"}
    assert refusals(doc) == []


def test_an_inline_rehearsal_is_refused_and_a_from_sweep_one_waits() -> None:
    rehearsal = rehearsal_manifest(
        "r",
        {
            "trainer": {**SFT_12B, "loraRank": 0},
            "resources": {"gpu": 1},
            "cluster": {"pools": [L4_POOL]},
        },
    )
    found = refusals(rehearsal)
    assert found and found[0][0] == "spec.trainer" and found[0][1].startswith("the run of")
    rehearsal["spec"] = {"fromSweep": "s", "resources": {"gpu": 1}, "cluster": {"pools": [L4_POOL]}}
    assert refusals(rehearsal) == []


def test_ray_may_pick_any_gpu_pool_so_the_smallest_decides() -> None:
    """An L4 pool beside an H100 pool: the trial may land on the L4."""
    h100 = {"name": "h100", "accelerator": "gpu", "gpusPerPod": 1, "gpuType": "nvidia-h100-80gb",
            "cpu": "8", "memory": "64Gi"}  # fmt: skip
    trainer = {
        "backend": "tunix-sft",
        "model": {"name": "gemma3-4b"},
        "loraRank": 8,
        "batchSize": 8,
    }
    assert refusals(sweep(trainer, {"gpu": 1}, h100)) == []
    found = refusals(sweep(trainer, {"gpu": 1}, h100, L4_POOL))
    assert found and "pool 'l4'" in found[0][1], found


# ----------------------------------------------------------------------------- the batch fix

DEVICES = sorted(TPU_MEMORY.values(), key=lambda d: d.bytes) + list(GPU_MEMORY.values())


@settings(max_examples=60, deadline=None)
@given(
    model=st.sampled_from(sorted(GEMMA3)),
    backend=st.sampled_from(TUNIX_BACKENDS),
    rank=st.sampled_from([0, 8, 64]),
    batch=st.integers(1, 512),
    devices=st.sampled_from([1, 2, 4, 8]),
    device=st.sampled_from(DEVICES),
)
def test_the_largest_batch_that_fits_fits(
    model: str, backend: str, rank: int, batch: int, devices: int, device: Any
) -> None:
    """It fits, splits over the devices, and the next such batch would not fit."""
    work = workload(tunix(backend, rank, model={"name": model}, batchSize=batch))
    target = Target("p", device, devices, 0.75 if device.gpu else 1.0, "")
    best = largest_batch(work, target)
    step = devices
    if backend == "tunix-grpo":
        step = devices // math.gcd(devices, work.generations)
    if best is None:
        assert batch < step or estimate(work.with_batch(step), devices).bytes > target.budget
        return
    assert best <= batch and best % step == 0
    assert estimate(work.with_batch(best), devices).bytes <= target.budget
    if best + step <= batch:
        assert estimate(work.with_batch(best + step), devices).bytes > target.budget
