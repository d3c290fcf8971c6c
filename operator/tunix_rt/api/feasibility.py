"""Feasibility before quota: a Tunix trial that cannot fit its accelerator's memory is
refused at admission, with the estimate and the device side by side and the fixes named.

A trial that asks GPUs or TPU chips runs on a pod of a pool that has them, and Ray may put
it on any such pool, so it must fit the smallest device among them: its estimate
(:mod:`tunix_rt.api.memory_estimate`, on the first of the devices the trial gets) must stay
under :data:`~tunix_rt.api.device_memory.HEADROOM` of what JAX lets it allocate there
(:mod:`tunix_rt.api.device_memory`). A Sweep is checked at the corner of its searchSpace
that needs the most (largest batchSize, numGenerations and maxGenerationLength; loraRank 0
when it can be drawn, else the largest); a Rehearsal with its overrides applied (one
``fromSweep`` is known only once that Sweep has finished: not checked). CPU-only trials, and
pools whose device is not known (a GPU pool without gpuType or machineType), are never
refused here: admission must agree with what really schedules.

CEL cannot compute the estimate: this is a Python check, run with the placement check
(:func:`tunix_rt.api.placement.check_placement`) by ``tunix-rt validate`` and the operator.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from tunix_rt.api.cluster import Accelerator
from tunix_rt.api.device_memory import (
    GPU_MEMORY,
    HEADROOM,
    JAX_GPU_FRACTION,
    MEM_FRACTION_ENV,
    TPU_MEMORY,
    DeviceMemory,
    jax_share,
    pool_device,
)
from tunix_rt.api.errors import ManifestError
from tunix_rt.api.memory_estimate import Estimate, Workload, estimate, workload
from tunix_rt.api.trainer import TrainerConfig, searchable_name
from tunix_rt.api.trainer_backends import DEFAULT_LORA_RANK, TUNIX_BACKENDS
from tunix_rt.api.trial_shape import TPU_CHIP_OPTIONS, SweepResources

if TYPE_CHECKING:
    from tunix_rt.api.rehearsal import RehearsalSpec
    from tunix_rt.api.sweep import SweepSpec

GIB = 2**30
LARGEST = ("batch_size", "num_generations", "max_generation_length")
"""Searchable fields whose largest value needs the most memory (loraRank: see module doc)."""
GPU_COUNTS = (1, 2, 4, 8, 16)


@dataclass(frozen=True)
class Target:
    """Where a trial may run: a pool, its device, how many the trial gets, and the share of
    each that JAX lets it allocate."""

    pool: str
    device: DeviceMemory
    devices: int
    share: float
    share_note: str

    @property
    def budget(self) -> int:
        return int(self.device.bytes * self.share * HEADROOM)

    def with_devices(self, devices: int) -> Target:
        return Target(self.pool, self.device, devices, self.share, self.share_note)

    def with_device(self, device: DeviceMemory) -> Target:
        return Target(self.pool, device, self.devices, self.share, self.share_note)


def targets(spec: SweepSpec | RehearsalSpec) -> list[Target]:
    """The pools a trial asking ``spec.resources`` may land on whose device is known."""
    res = spec.resources
    if isinstance(res, SweepResources) and res.spans_hosts():
        return []  # only the built-in trainer spans hosts (the Sweep refuses the rest)
    env = spec.cluster.env
    out = []
    for pool in spec.cluster.pools:
        device = pool_device(pool)
        if device is None or pool.pods() == 0:
            continue
        if res.gpu and pool.accelerator is Accelerator.GPU and pool.gpus_per_pod >= res.gpu:
            share, note = jax_share(device, env)
            if res.gpu < 1:  # a fraction of one GPU, shared with other trials
                share, note = share * res.gpu, f"{note}, x resources.gpu {res.gpu:g}"
            out.append(Target(pool.name, device, max(1, math.floor(res.gpu)), share, note))
        elif res.tpu and pool.accelerator is Accelerator.TPU:
            try:
                chips = pool.tpu_shape().chips_per_host
            except ValidationError:
                continue
            if chips >= res.tpu:
                out.append(Target(pool.name, device, res.tpu, *jax_share(device, env)))
    return out


def memory_problems(spec: SweepSpec | RehearsalSpec, prefix: str = "spec") -> list[tuple[str, str]]:
    """``(field, message)`` pairs when a Tunix trial of ``spec`` cannot fit the smallest
    device it may land on: the estimate against the device, then the fixes (empty: it
    fits, or nothing is known enough to say)."""
    config, corner = trial_config(spec)
    if config is None or config.backend not in TUNIX_BACKENDS:
        return []
    work = workload(config)
    for target in sorted(targets(spec), key=lambda t: t.budget):
        need = estimate(work, target.devices)
        if need.bytes > target.budget:
            field = f"{prefix}.trainer" if prefix else "trainer"
            who = "a trial" if hasattr(spec, "search_space") else "the run"
            fixed = f"fixes for {work.model} on pool '{target.pool}': " + "; ".join(
                fixes(need, target)
            )
            return [(field, refusal(need, target, who, corner)), (field, fixed)]
    return []


def trial_config(spec: SweepSpec | RehearsalSpec) -> tuple[TrainerConfig | None, str]:
    """The trainer config to check (a Sweep's hungriest corner), and how it was chosen."""
    trainer = spec.trainer
    search = getattr(spec, "search_space", None)
    if trainer is None:
        return None, ""  # a Rehearsal fromSweep
    if search is None:
        try:
            return trainer.with_overrides(getattr(spec, "overrides", None), "overrides"), ""
        except (ManifestError, ValidationError):
            return None, ""  # the Rehearsal's own validation says what is wrong
    corner: dict[str, Any] = {}
    for key, param in search.items():
        try:
            name = searchable_name(key)
        except ValueError:
            continue  # a user's own parameter
        values = [v for v in param.candidates() if isinstance(v, int | float)]
        if name in LARGEST and values:
            corner[name] = max(values)
        elif name == "lora_rank" and values:
            corner[name] = 0 if 0 in values else max(values)
    return _with_corner(trainer, corner), _corner_note(corner)


def _with_corner(trainer: TrainerConfig, corner: dict[str, Any]) -> TrainerConfig:
    try:
        return trainer.with_params(corner)
    except ValidationError:
        for name, value in corner.items():  # a pair the trainer refuses: each alone
            try:
                trainer = trainer.with_params({name: value})
            except ValidationError:
                continue
        return trainer


def _corner_note(corner: dict[str, Any]) -> str:
    if not corner:
        return ""
    names = {"batch_size": "batchSize", "num_generations": "numGenerations",
             "max_generation_length": "maxGenerationLength", "lora_rank": "loraRank"}  # fmt: skip
    shown = ", ".join(f"{names[k]} {v:g}" for k, v in corner.items())
    return f"searchSpace's hungriest corner: {shown}"


# ------------------------------------------------------------------ the message


def gib(value: float) -> str:
    return f"{value / GIB:.1f} GiB"


def describe(work: Workload) -> str:
    how = f"LoRA rank {work.lora_rank}" if work.lora_rank else "full fine-tuning"
    grpo = f", {work.generations} generations of {work.generation}" if work.generation else ""
    return (
        f"{work.model} ({work.backend}, {how}, batchSize {work.batch}{grpo}, {work.seq}-token rows)"
    )


def refusal(need: Estimate, target: Target, who: str, corner: str) -> str:
    """The estimate and the device side by side, and the estimate's parts."""
    device = target.device
    parts = ", ".join(
        f"{p.name} {p.bytes / GIB:.1f}" for p in need.peak.parts if p.bytes >= GIB // 20
    )
    at = f" ({corner})" if corner else ""
    return (
        f"{who} of {describe(need.work)}{at} needs about {gib(need.bytes)} on the first of its "
        f"{target.devices} {device.name}{'s' if target.devices > 1 else ''} "
        f"(pool '{target.pool}'), "
        f"which may fill {gib(target.budget)} "
        f"of its {device.shown}: {target.share_note}, {HEADROOM:.0%} of that. {need.peak.name} "
        f"phase, GiB: {parts}"
    )


def fixes(need: Estimate, target: Target) -> list[str]:
    """Each way out, with what it would need."""
    work = need.work
    over = {p.name for p in need.phases if p.bytes > target.budget}
    out = []
    if not work.lora_rank:
        lora = estimate(work.with_lora(DEFAULT_LORA_RANK), target.devices)
        out.append(f"LoRA (loraRank {DEFAULT_LORA_RANK}: {gib(lora.bytes)}{_fits(lora, target)})")
    if over & {"train", "rollout"}:
        out.append(_batch_fix(work.training_only(), target))
    if "eval" in over:
        out.append(_eval_fix(work, target))
    out.append(_devices_fix(work, target))
    bigger = _bigger_device(work, target)
    if bigger:
        out.append(bigger)
    more = Target(target.pool, target.device, target.devices, 0.95, "")
    if target.device.gpu and target.share == JAX_GPU_FRACTION and need.bytes <= more.budget:
        out.append(f"cluster.env {MEM_FRACTION_ENV}: '0.95' (JAX takes more of each GPU)")
    return out


def _fits(need: Estimate, target: Target) -> str:
    return ", fits" if need.bytes <= target.budget else ", still too much"


def largest(fits: Callable[[int], bool], most: int, step: int = 1) -> int | None:
    """The largest multiple of ``step`` up to ``most`` for which ``fits`` holds, assuming
    it holds below any value it holds for (None: not even ``step``)."""
    low, high = 1, most // step
    if high < 1 or not fits(step):
        return None
    while low < high:
        middle = (low + high + 1) // 2
        if fits(middle * step):
            low = middle
        else:
            high = middle - 1
    return low * step


def largest_batch(work: Workload, target: Target) -> int | None:
    """The largest batchSize up to ``work.batch`` whose trial fits ``target`` and splits
    evenly over its devices (GRPO: batch x numGenerations completions split)."""
    step = target.devices
    if work.backend == "tunix-grpo":
        step = target.devices // math.gcd(target.devices, work.generations)

    def fits(batch: int) -> bool:
        return estimate(work.with_batch(batch), target.devices).bytes <= target.budget

    return largest(fits, work.batch, step)


def _batch_fix(work: Workload, target: Target) -> str:
    best = largest_batch(work, target)
    if best is not None:
        need = estimate(work.with_batch(best), target.devices)
        return f"a smaller batch (batchSize {best}: training needs {gib(need.bytes)})"
    smallest = estimate(work.with_batch(1), target.devices)
    return f"no batchSize fits (batchSize 1: {gib(smallest.bytes)})"


def _eval_fix(work: Workload, target: Target) -> str:
    def fits(rows: int) -> bool:
        phase = estimate(work.with_eval_batch(rows), target.devices).phase("eval")
        return phase is None or phase.bytes <= target.budget

    best = largest(fits, work.eval_batch)
    if best is None:
        return "no eval.batchSize fits"
    return f"eval.batchSize {best} (the evals' batch)"


def _devices_fix(work: Workload, target: Target) -> str:
    counts = GPU_COUNTS if target.device.gpu else TPU_CHIP_OPTIONS
    field = "resources.gpu" if target.device.gpu else "resources.tpu"
    for count in (c for c in counts if c > target.devices):
        need = estimate(work, count)
        if need.bytes <= target.with_devices(count).budget:
            return f"more devices ({field}: {count} on a pool that has them: {gib(need.bytes)})"
    most = estimate(work, counts[-1]).bytes
    return (
        f"not more devices ({field}: {counts[-1]} still {gib(most)}: the model as built "
        "stays whole on the first)"
    )


def _bigger_device(work: Workload, target: Target) -> str | None:
    table = GPU_MEMORY if target.device.gpu else TPU_MEMORY
    need = estimate(work, target.devices).bytes
    for name, device in sorted(table.items(), key=lambda kv: kv[1].bytes):
        if device.bytes > target.device.bytes and need <= target.with_device(device).budget:
            kind = "gpuType" if device.gpu else "TPU"
            return f"larger devices ({kind} {name}, {device.shown})"
    return None
