"""Placement: a trial (or a rehearsal run) must fit in one pod of a declared pool.

Ray schedules a trial's resources (``spec.resources``: cpu, memory, gpu, tpu) on one Ray
node, and every Ray worker node is one pod of a pool (``spec.cluster.pools``): its ``cpu``
and ``memory``, ``gpusPerPod`` GPUs, or the TPU chips of one host of its slice. A trial
no pod can hold waits forever, so admission refuses it, with the numbers side by side.

:func:`check_placement` is the one check. The models call it when the spec declares its
own pools; the operator calls it again after filling in its default pools (and fails the
resource with reason :data:`UNSCHEDULABLE`); local runs have no pools and skip it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import ValidationInfo

from tunix_rt.api.base import field_errors
from tunix_rt.api.common import Accelerator, NodePool, quantity_bytes, quantity_value

if TYPE_CHECKING:
    from tunix_rt.api.rehearsal import RehearsalSpec
    from tunix_rt.api.sweep import SweepSpec

UNSCHEDULABLE = "Unschedulable"
"""Reason of the Failed condition of a resource whose trial no pool can hold."""
PLACEMENT_ERROR = "unschedulable"
"""pydantic error type of placement errors raised by the models."""
SKIP_PLACEMENT = {"placement": False}
"""Validation context for callers that check placement themselves (the operator)."""


@dataclass(frozen=True)
class Pod:
    """What one pod of a pool offers a trial."""

    pool: str
    accelerator: Accelerator
    cpu: float
    memory: int
    gpus: int
    tpu_chips: int
    tpu_shape: str = ""

    def describe(self, what: str) -> str:
        if what == "cpu":
            return f"pool '{self.pool}', cpu {_num(self.cpu)}"
        if what == "memory":
            return f"pool '{self.pool}', memory {_gib(self.memory)}"
        if what == "gpu":
            return f"pool '{self.pool}', gpusPerPod {self.gpus}"
        return f"pool '{self.pool}', {self.tpu_shape}"


def _num(value: float) -> str:
    return f"{value:g}"


def _gib(value: float) -> str:
    return f"{value / 2**30:g}Gi"


def pod_of(pool: NodePool) -> Pod | None:
    """The pod a pool offers; None for a pool that can have no pods, or whose quantities or
    TPU shape are invalid (the pool's own validation reports those)."""
    if pool.pods() == 0:
        return None
    try:
        cpu = quantity_value(pool.cpu)
        memory = int(quantity_value(pool.memory))
    except ValueError:
        return None
    chips, shape = 0, ""
    if pool.accelerator is Accelerator.TPU:
        try:
            tpu = pool.tpu_shape()
        except ValueError:
            return None
        chips = tpu.chips_per_host
        hosts = f"{tpu.hosts} hosts" if tpu.hosts > 1 else "1 host"
        shape = f"{tpu.gke_accelerator} {tpu.topology}: {hosts} of {tpu.chips_per_host} chips"
    gpus = pool.gpus_per_pod if pool.accelerator is Accelerator.GPU else 0
    return Pod(pool.name, pool.accelerator, cpu, memory, gpus, chips, shape)


def check_placement(spec: SweepSpec | RehearsalSpec, prefix: str = "spec") -> list[tuple[str, str]]:
    """``(field, message)`` for each way ``spec.resources`` fits no pod of ``spec.cluster.pools``
    (empty: a pod of some pool holds it). Fields are wire paths under ``prefix``."""
    res = spec.resources
    at = f"{prefix}.resources" if prefix else "resources"
    who = "a trial" if hasattr(spec, "search_space") else "the run"
    pods = [p for p in (pod_of(pool) for pool in spec.cluster.pools) if p is not None]
    if not pods:
        names = ", ".join(f"'{p.name}'" for p in spec.cluster.pools)
        return [
            (
                f"{prefix}.cluster.pools" if prefix else "cluster.pools",
                f"no pool can hold a pod (pools {names} have 0 replicas and no maxReplicas); "
                "give a pool replicas >= 1",
            )
        ]
    memory = quantity_bytes(res.memory) if res.memory else 0
    asks = [
        Ask("gpu", res.gpu, _count(res.gpu, "GPU"), "GPU pod", "raise gpusPerPod"),
        Ask(
            "tpu", res.tpu, _count(res.tpu, "TPU chip"), "TPU host",
            "use a topology with more chips per host (a trial runs on one host)",
        ),
        Ask("cpu", res.cpu, _count(res.cpu, "CPU"), "pod", "raise the pool's cpu"),
        Ask("memory", memory, f"memory {res.memory}", "pod", "raise the pool's memory"),
    ]  # fmt: skip
    asks = [a for a in asks if a.amount]
    for what, accelerator in (("gpu", Accelerator.GPU), ("tpu", Accelerator.TPU)):
        ask = next((a for a in asks if a.what == what), None)
        if ask and not any(p.accelerator is accelerator for p in pods):
            return [
                (
                    f"{at}.{what}",
                    f"{who} asks {ask.shown} but no pool has {what.upper()}s (pools: "
                    f"{_pools(pods)}); add a pool with accelerator: {what}, or set "
                    f"resources.{what} to 0",
                )
            ]
    if res.gpu and res.tpu:
        return [(f"{at}.tpu", f"{who} asks both GPUs and TPU chips; no pod has both")]
    # Pods of the right kind: GPU trials on GPU pools, TPU trials on TPU pools.
    kinds = [p for p in pods if (not res.gpu or p.gpus) and (not res.tpu or p.tpu_chips)]
    if any(all(a.offer(p) >= a.amount for a in asks) for p in kinds):
        return []
    out: list[tuple[str, str]] = []
    for ask in asks:
        best = max(kinds, key=ask.offer)
        if ask.offer(best) >= ask.amount:
            continue
        offered = ask.offered(best)
        where = ask.kind
        if where == "pod" and (res.gpu or res.tpu):
            where = "GPU pod" if res.gpu else "TPU host"
        out.append(
            (
                f"{at}.{ask.what}",
                f"{who} asks {ask.shown} but the largest {where} offers {offered} "
                f"({best.describe(ask.what)}); lower resources.{ask.what} or {ask.fix}",
            )
        )
    if not out:
        wanted = ", ".join(a.shown for a in asks)
        out.append(
            (
                at,
                f"no single pod holds what {who} asks ({wanted}) together (pools: "
                f"{_pools(kinds)}); lower resources or enlarge one pool",
            )
        )
    return out


@dataclass(frozen=True)
class Ask:
    """One resource a trial asks for, and how a pod offers it."""

    what: str
    amount: float
    shown: str
    kind: str
    fix: str

    def offer(self, pod: Pod) -> float:
        return float(
            {"gpu": pod.gpus, "tpu": pod.tpu_chips, "cpu": pod.cpu, "memory": pod.memory}[self.what]
        )

    def offered(self, pod: Pod) -> str:
        if self.what == "memory":
            return _gib(pod.memory)
        return _num(self.offer(pod))


def _count(amount: float, unit: str) -> str:
    return f"{_num(amount)} {unit}{'' if amount == 1 else 's'}"


def _pools(pods: list[Pod]) -> str:
    parts = []
    for p in pods:
        extra = f", {_count(p.gpus, 'GPU')}" if p.gpus else ""
        extra += f", {_count(p.tpu_chips, 'TPU chip')}" if p.tpu_chips else ""
        parts.append(f"'{p.pool}' ({_count(p.cpu, 'CPU')}, {_gib(p.memory)}{extra})")
    return "; ".join(parts)


def check_placement_here(spec: SweepSpec | RehearsalSpec, info: ValidationInfo) -> None:
    """From a model validator: refuse (errors of type :data:`PLACEMENT_ERROR`) when the spec
    declares its pools and the trial fits none; skipped with :data:`SKIP_PLACEMENT`."""
    context = info.context if isinstance(info.context, dict) else {}
    if context.get("placement") is False or not spec.cluster.declares_pools():
        return
    problems = check_placement(spec, prefix="")
    if problems:
        raise field_errors(problems, spec.resources.to_wire(), kind=PLACEMENT_ERROR)
