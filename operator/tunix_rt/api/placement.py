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

from tunix_rt.api.base import refuse
from tunix_rt.api.cluster import Accelerator, NodePool
from tunix_rt.api.feasibility import memory_problems
from tunix_rt.api.pool_machine import machine_fit_problems, pod_size
from tunix_rt.api.quantities import quantity_bytes
from tunix_rt.api.trial_shape import SweepResources

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
    """What one pod of a pool offers a trial, and how many such pods (Ray nodes) the pool
    can have (``nodes``: pods, times hosts per slice for TPU pools)."""

    pool: str
    accelerator: Accelerator
    cpu: float
    memory: int
    gpus: int
    tpu_chips: int
    tpu_shape: str = ""
    cpu_note: str = ""
    memory_note: str = ""
    nodes: int = 1

    def describe(self, what: str) -> str:
        if what == "cpu":
            return f"pool '{self.pool}', cpu {_num(self.cpu)}{_note(self.cpu_note)}"
        if what == "memory":
            return f"pool '{self.pool}', memory {_gib(self.memory)}{_note(self.memory_note)}"
        if what == "gpu":
            return f"pool '{self.pool}', gpusPerPod {self.gpus}"
        return f"pool '{self.pool}', {self.tpu_shape}"


def _num(value: float) -> str:
    return f"{value:g}"


def _gib(value: float) -> str:
    return f"{value / 2**30:g}Gi"


def _note(note: str) -> str:
    return f", {note}" if note else ""


def pod_of(pool: NodePool) -> Pod | None:
    """The pod a pool offers; None for a pool that can have no pods, or whose quantities or
    TPU shape are invalid (the pool's own validation reports those)."""
    if pool.pods() == 0:
        return None
    try:
        size = pod_size(pool)
    except ValueError:
        return None
    chips, shape, hosts = 0, "", 1
    if pool.accelerator is Accelerator.TPU:
        try:
            tpu = pool.tpu_shape()
        except ValueError:
            return None
        chips, hosts = tpu.chips_per_host, tpu.hosts
        of = f"{tpu.hosts} hosts" if tpu.hosts > 1 else "1 host"
        shape = f"{tpu.gke_accelerator} {tpu.topology}: {of} of {tpu.chips_per_host} chips"
    gpus = pool.gpus_per_pod if pool.accelerator is Accelerator.GPU else 0
    return Pod(
        pool.name, pool.accelerator, size.cpu, size.memory, gpus, chips, shape,
        size.cpu_note, size.memory_note, pool.pods() * hosts,
    )  # fmt: skip


def check_placement(spec: SweepSpec | RehearsalSpec, prefix: str = "spec") -> list[tuple[str, str]]:
    """``(field, message)`` for each way ``spec.resources`` fits no pod of ``spec.cluster.pools``,
    or a Tunix trial fits no device it may land on (:func:`memory_problems`); empty: a pod of
    some pool holds it. Fields are wire paths under ``prefix``."""
    return _pod_problems(spec, prefix) or memory_problems(spec, prefix)


def _pod_problems(spec: SweepSpec | RehearsalSpec, prefix: str) -> list[tuple[str, str]]:
    if machine := machine_fit_problems(spec.cluster.pools, prefix):
        return machine
    res = spec.resources
    at = f"{prefix}.resources" if prefix else "resources"
    who = "a trial" if hasattr(spec, "search_space") else "the run"
    if isinstance(res, SweepResources) and res.spans_hosts():
        return _spanning_problems(spec, res, at)
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
            "use a topology with more chips per host (a trial runs on one host), or take "
            "whole slices with resources.tpuSlice",
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
        return _concurrency_problems(spec, asks, kinds, prefix)
    out: list[tuple[str, str]] = []
    for ask in asks:
        best = max(kinds, key=ask.offer)
        if ask.offer(best) >= ask.amount:
            continue
        offered = ask.offered(best)
        fix = ask.fix
        if ask.what in ("cpu", "memory") and "the default" in (
            best.cpu_note if ask.what == "cpu" else best.memory_note
        ):
            fix = f"state the pool's {ask.what} (or its machineType)"
        where = ask.kind
        if where == "pod" and (res.gpu or res.tpu):
            where = "GPU pod" if res.gpu else "TPU host"
        out.append(
            (
                f"{at}.{ask.what}",
                f"{who} asks {ask.shown} but the largest {where} offers {offered} "
                f"({best.describe(ask.what)}); lower resources.{ask.what} or {fix}",
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


def _concurrency_problems(
    spec: SweepSpec | RehearsalSpec, asks: list[Ask], kinds: list[Pod], prefix: str
) -> list[tuple[str, str]]:
    """``maxConcurrentTrials`` trials at once need that many trial-sized slots in the pods
    the pools can have (a pod holds as many trials as each resource divides); more than
    that would wait for a slot, so admission refuses it with the number that runs at once."""
    concurrent = int(getattr(spec, "max_concurrent_trials", 1))
    per_pod = [(p, _slots(asks, p)) for p in kinds]
    room = sum(n * p.nodes for p, n in per_pod)
    if room >= concurrent:
        return []
    parts = "; ".join(
        f"pool '{p.pool}': {p.nodes} pod{'s' if p.nodes != 1 else ''} x {n} trial"
        f"{'s' if n != 1 else ''}"
        for p, n in per_pod
        if n
    )
    return [
        (
            f"{prefix}.maxConcurrentTrials" if prefix else "maxConcurrentTrials",
            f"maxConcurrentTrials ({concurrent}) trials at once, but the pools hold {room} "
            f"at once ({parts}); lower maxConcurrentTrials to {room}, or raise the pools' "
            "replicas (or maxReplicas)",
        )
    ]


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
    refuse(check_placement(spec, prefix=""), spec.resources.to_wire(), kind=PLACEMENT_ERROR)


# ------------------------------------------------------------------ trials over several hosts


@dataclass(frozen=True)
class SpanningFit:
    """The pool a multi-host trial's workers run on, sized for ``maxConcurrentTrials``
    trials at once: the RayJob builder gives that pool at least ``pods`` replicas (TPU
    pools: slices). When no pool alone may grow that far but the capped pools together
    hold the trials (Ray spreads workers over them), the first of them, at its replicas."""

    index: int
    pool: NodePool
    workers_per_pod: int
    pods: int


def spanning_fit(spec: SweepSpec) -> SpanningFit | None:
    """Where the workers of ``spec``'s trials go (None: the trial fits one pod, or no pool
    can hold it, which :func:`check_placement` says in words)."""
    res = spec.resources
    if not res.spans_hosts():
        return None
    fit, _ = _spanning(spec, res, "resources", "")
    return fit


def _spanning_problems(
    spec: SweepSpec | RehearsalSpec, res: SweepResources, at: str
) -> list[tuple[str, str]]:
    top = at.removesuffix("resources")
    return _spanning(spec, res, at, top)[1]


def _pool_shape(pool: NodePool) -> Pod | None:
    """What one pod (TPU: one host) of ``pool`` offers, whatever its replicas."""
    return pod_of(pool.model_copy(update={"replicas": max(pool.replicas, 1)}))


def _spanning(
    spec: SweepSpec | RehearsalSpec, res: SweepResources, at: str, top: str
) -> tuple[SpanningFit | None, list[tuple[str, str]]]:
    """The first pool that holds the trial's workers for every concurrent trial, or the
    reasons none does (``(field, message)``, numbers side by side)."""
    concurrent = int(getattr(spec, "max_concurrent_trials", 1))
    pools = [(i, p, _pool_shape(p)) for i, p in enumerate(spec.cluster.pools)]
    shaped = [(i, p, pod) for i, p, pod in pools if pod is not None]
    memory = quantity_bytes(res.memory) if res.memory else 0
    workers = res.worker_count()
    gpus = res.gpus_per_worker or 0
    if res.tpu_slice is not None:
        want = res.tpu_slice.shape()
        what = f"a whole {want.gke_accelerator} {want.topology} slice ({_hosts(want.hosts)} of "
        what += f"{want.chips_per_host} chips)"
        fix = f"tpuAccelerator: {want.gke_accelerator} and tpuTopology: {want.topology}"
        tpus = [(i, p, pod) for i, p, pod in shaped if pod.accelerator is Accelerator.TPU]
        if not tpus:
            return None, [
                (
                    f"{at}.tpuSlice",
                    f"a trial asks {what} but no pool has TPUs (pools: "
                    f"{_pools([pod for _, _, pod in shaped])}); add a pool with accelerator: "
                    f"tpu, {fix}",
                )
            ]
        same = [
            (i, p, pod)
            for i, p, pod in tpus
            if (s := p.tpu_shape()).gke_accelerator == want.gke_accelerator
            and s.topology == want.topology
            and s.hosts == want.hosts  # a 2x4 of two 4-chip VMs is not the 1-host 2x4
        ]
        if not same:
            offered = "; ".join(f"'{p.name}' ({pod.tpu_shape})" for _, p, pod in tpus)
            return None, [
                (
                    f"{at}.tpuSlice",
                    f"a trial asks {what} but no pool is such a slice (TPU pools: {offered}); "
                    f"give a pool {fix}, or ask for the slice a pool has",
                )
            ]
        candidates, unit, per_worker = same, "host", "a worker (one per host)"
    else:
        kind = Accelerator.GPU if gpus else Accelerator.CPU
        # GPU workers need GPU pods; Ray places CPU workers on any node with the CPUs
        # (CPU pools first: the builder sizes the first pool that holds them all)
        candidates = [(i, p, pod) for i, p, pod in shaped if not gpus or pod.gpus]
        candidates.sort(key=lambda c: c[2].accelerator is not kind)
        unit, per_worker = ("GPU pod" if gpus else "pod"), "a worker"
        if not candidates:
            field = f"{at}.gpusPerWorker" if gpus else f"{at}.workers"
            fix = (
                f"add a pool with accelerator: gpu and gpusPerPod >= {gpus}"
                if gpus
                else "add a pool with accelerator: cpu"
            )
            return None, [
                (
                    field,
                    f"a trial asks {workers} workers of {_worker(res)} but no pool has "
                    f"{kind.value.upper()} pods (pools: {_pools([pod for _, _, pod in shaped])})"
                    f"; {fix}",
                )
            ]
    asks = [
        Ask("gpu", gpus, _count(gpus, "GPU"), unit, "raise gpusPerPod"),
        Ask("cpu", res.cpu, _count(res.cpu, "CPU"), unit, "raise the pool's cpu"),
        Ask("memory", memory, f"memory {res.memory}", unit, "raise the pool's memory"),
    ]  # fmt: skip
    asks = [a for a in asks if a.amount]
    slots = [(i, p, _slots(asks, pod) if res.tpu_slice is None else _host_fits(asks, pod))
             for i, p, pod in candidates]  # fmt: skip
    if not any(n for _, _, n in slots):
        out = []
        for ask in asks:
            best = max((pod for _, _, pod in candidates), key=ask.offer)
            if ask.offer(best) < ask.amount:
                name = "gpusPerWorker" if ask.what == "gpu" else ask.what
                out.append(
                    (
                        f"{at}.{name}",
                        f"{per_worker} asks {ask.shown} but the largest {unit} offers "
                        f"{ask.offered(best)} ({best.describe(ask.what)}); lower "
                        f"resources.{name} or {ask.fix}",
                    )
                )
        return None, out
    problems: list[tuple[str, str]] = []
    room, wanted = 0, concurrent if res.tpu_slice is not None else workers * concurrent
    for i, pool, per_pod in slots:
        if not per_pod:
            continue
        need = concurrent if res.tpu_slice is not None else -(-workers * concurrent // per_pod)
        if pool.max_replicas is None or pool.max_replicas >= need:
            return SpanningFit(i, pool, per_pod, need), []
        # capped pools together: Ray spreads a trial's workers (slices) over all of them
        room += pool.max_replicas * (1 if res.tpu_slice is not None else per_pod)
        if room >= wanted:
            first = next((j, q, n) for j, q, n in slots if n)
            return SpanningFit(first[0], first[1], first[2], first[1].replicas), []
        if problems:
            continue
        if res.tpu_slice is not None:
            what_needs = (
                f"maxConcurrentTrials ({concurrent}) runs {concurrent} trials at once, each on "
                f"its own {res.tpu_slice.topology} slice, so pool '{pool.name}' needs "
                f"{need} slices"
            )
        else:
            what_needs = (
                f"maxConcurrentTrials ({concurrent}) trials of {workers} workers at once, "
                f"{per_pod} worker{'s' if per_pod > 1 else ''} a pod, need {need} pods of "
                f"pool '{pool.name}'"
            )
        problems.append(
            (
                f"{top}maxConcurrentTrials",
                f"{what_needs}, but it can have at most {pool.max_replicas} (maxReplicas "
                f"{pool.max_replicas}); raise cluster.pools[{i}].maxReplicas to {need} or "
                f"lower maxConcurrentTrials",
            )
        )
    return None, problems


def _slots(asks: list[Ask], pod: Pod) -> int:
    """Trials (or workers) one pod holds (each ask divides the pod's offer; a hair of
    slack so that 0.3 GPU x 3 fits 0.9)."""
    counts = [int(ask.offer(pod) / ask.amount + 1e-9) for ask in asks]
    return min(counts) if counts else 1


def _host_fits(asks: list[Ask], pod: Pod) -> int:
    """1 when a slice host holds one worker (its chips are the worker's), else 0."""
    return int(all(ask.offer(pod) >= ask.amount for ask in asks if ask.what != "gpu"))


def _hosts(n: int) -> str:
    return f"{n} host{'s' if n != 1 else ''}"


def _worker(res: SweepResources) -> str:
    parts = [_count(res.cpu, "CPU")]
    if res.gpus_per_worker:
        parts.append(_count(res.gpus_per_worker, "GPU"))
    if res.memory:
        parts.append(f"memory {res.memory}")
    return ", ".join(parts)
