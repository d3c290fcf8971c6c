"""Population-based training: what may change mid-run, the schedule a trial followed,
and the checks on a ``pbt`` Sweep and on a Rehearsal that replays a schedule.

PBT restarts a weak trial from a strong trial's checkpoint with mutated params, so only
params a backend reads afresh on restore may be searched (:data:`MUTABLE_BY_BACKEND`).
The built-in trainer's learning rate, weight decay and gradient clip enter the train step
as traced scalars and the optimizer state (Adam moments) does not depend on them.
``tunix-grpo`` builds a new learner (optimizer, GRPO loss, sampler) from the new params
around the restored weights and Adam moments, which is also how it replays a schedule
(``train/backends/tunix_schedule.py``). Everything else (model shape, batch size, seed,
steps, data) would make one trial's checkpoint unusable by another.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from tunix_rt.api.base import ApiModel, cel, cel_list

if TYPE_CHECKING:
    from tunix_rt.api.sweep import SweepSpec
    from tunix_rt.api.trainer import TrainerConfig

Problems = list[tuple[str, str]]

MUTABLE = {"learningRate": "learning_rate", "weightDecay": "weight_decay", "gradClip": "grad_clip"}
"""Wire name -> field name of the params PBT may change mid-run (built-in backend)."""
MUTABLE_BY_BACKEND: dict[str, dict[str, str]] = {
    "builtin": MUTABLE,
    "tunix-grpo": MUTABLE | {"klBeta": "kl_beta", "temperature": "temperature"},
}
"""Per backend that supports scheduler pbt and a replayed schedule: what may change."""
MUTABLE_KEYS = frozenset(
    key for names in MUTABLE_BY_BACKEND.values() for pair in names.items() for key in pair
)


def mutable_keys(backend: str) -> frozenset[str]:
    """Wire and field names ``backend`` may change mid-run (empty: no pbt, no schedule)."""
    names = MUTABLE_BY_BACKEND.get(backend, {})
    return frozenset(names) | frozenset(names.values())


def _listed(backend: str) -> str:
    return ", ".join(MUTABLE_BY_BACKEND[backend])


PBT_BACKENDS = tuple(MUTABLE_BY_BACKEND)
MAX_SCHEDULE_STEPS = 512
"""Entries a replayed schedule may hold: a PBT trial adds one per exploit or perturbation,
and the bound keeps the schedule's CEL rules inside the API server's cost budget."""

PBT_TYPES = ("uniform", "loguniform", "choice")
"""Distributions PBT can mutate: ranged ones are scaled by 0.8/1.2 (clipped to the
range), choice ones shift to a neighbouring value; randint and grid are refused."""


class ScheduleStep(ApiModel):
    """From ``step`` on, the run trains with ``params`` (applied over the previous ones)."""

    step: int = Field(ge=0, description="First train step the params apply to.")
    params: dict[str, float] = Field(
        max_length=len(MUTABLE_KEYS),
        description="learningRate, weightDecay, gradClip (and on tunix-grpo klBeta, "
        "temperature) from this step on.",
    )
    exploited_from: str | None = Field(
        None,
        description="The trial whose checkpoint this step started from (PBT exploit); "
        "absent for a trial's own start.",
    )


def pbt_sweep_problems(spec: SweepSpec) -> Problems:
    """What a ``pbt`` Sweep cannot run, each with its fix (empty for other schedulers)."""
    out: Problems = []
    if spec.trainer.schedule:
        out.append(
            (
                "trainer.schedule",
                "trainer.schedule replays one run's schedule and belongs in a Rehearsal; "
                "remove it from the Sweep (scheduler pbt records each trial's own)",
            )
        )
    sched = spec.scheduler
    if sched.type.value != "pbt":
        return out
    backend = spec.trainer.backend
    if backend not in MUTABLE_BY_BACKEND:
        out.append(
            (
                "scheduler.type",
                f"scheduler pbt restarts trials from other trials' checkpoints with new "
                f"hyperparameters, and backend {backend} does not support it yet (a restore "
                "under new hyperparameters is unchecked there, and it cannot replay a "
                f"schedule); use trainer.backend {' or '.join(PBT_BACKENDS)}, or scheduler asha",
            )
        )
        backend = "builtin"  # judge the search space as the built-in trainer would
    if spec.algorithm.value != "random":
        out.append(
            (
                "algorithm",
                f"scheduler pbt samples its first population at random and then mutates "
                f"it; algorithm {spec.algorithm.value} would fight it: use algorithm random",
            )
        )
    if spec.resources.spans_hosts():
        out.append(
            ("resources", "scheduler pbt runs one-host trials only; remove workers/tpuSlice")
        )
    if spec.warm_start_from is not None:
        out.append(
            (
                "warmStartFrom",
                "scheduler pbt grows its trials from each other's checkpoints, and an earlier "
                "sweep's trials bring a score but no checkpoint in this population; remove "
                "warmStartFrom or use scheduler fifo or asha",
            )
        )
    if not spec.search_space:
        out.append(("searchSpace", "scheduler pbt mutates searched params; search learningRate"))
    for key, param in spec.search_space.items():
        if key not in mutable_keys(backend):
            out.append(
                (
                    f"searchSpace.{key}",
                    f"scheduler pbt changes params mid-run, and {key} cannot change once "
                    f"a run of backend {backend} started (checkpoints of other trials would "
                    f"not fit); search only {_listed(backend)} or use scheduler asha",
                )
            )
        elif param.type.value not in PBT_TYPES:
            out.append(
                (
                    f"searchSpace.{key}.type",
                    f"scheduler pbt mutates uniform, loguniform and choice params, not "
                    f"{param.type.value}; use one of those",
                )
            )
    out += _interval_problems(spec)
    return out


def _interval_problems(spec: SweepSpec) -> Problems:
    """Every perturbation must find a fresh checkpoint reported to Tune."""
    interval, steps = spec.scheduler.perturbation_interval, spec.budget.smoke_steps
    every, log_every = spec.trainer.checkpoint_every, spec.trainer.log_every
    if interval is None:
        return []  # the scheduler's own check names it
    out: Problems = []
    if interval >= steps:
        out.append(
            (
                "scheduler.perturbationInterval",
                f"perturbationInterval={interval} is not below budget.smokeSteps ({steps}): "
                f"no trial would ever be perturbed; set it to e.g. {max(1, steps // 4)}",
            )
        )
    if every <= 0 or interval % every:
        out.append(
            (
                "trainer.checkpointEvery",
                f"scheduler pbt copies the checkpoint a trial reported at each perturbation "
                f"(every {interval} steps), so trainer.checkpointEvery (now {every}) must "
                f"divide perturbationInterval; set checkpointEvery to {interval}",
            )
        )
    elif every % log_every:
        out.append(
            (
                "trainer.logEvery",
                f"a checkpoint reaches Tune with a report, and trainer.logEvery ({log_every}) "
                f"does not divide checkpointEvery ({every}); set logEvery to a divisor of it",
            )
        )
    return out


_PBT_ON = "has(self.scheduler) && has(self.scheduler.type) && self.scheduler.type == 'pbt'"
_STEPS = "(has(self.budget) && has(self.budget.smokeSteps) ? self.budget.smokeSteps : 300)"
_CKPT = (
    "(has(self.trainer) && has(self.trainer.checkpointEvery) ? self.trainer.checkpointEvery : 0)"
)
_LOG = "(has(self.trainer) && has(self.trainer.logEvery) ? self.trainer.logEvery : 25)"
_INTERVAL = "self.scheduler.perturbationInterval"


def _cel_mutable(trainer: str) -> str:
    """A CEL list of the keys the backend of ``trainer`` (a CEL path) may change mid-run:
    tunix-grpo's set, else the built-in trainer's (other backends are refused apart)."""
    grpo = cel_list(sorted(mutable_keys("tunix-grpo")))
    builtin = cel_list(sorted(mutable_keys("builtin")))
    # has() takes a field selection: `has(self)` compiles in celpy but not in Kubernetes.
    known = (
        f"has({trainer}.backend)"
        if trainer == "self"
        else (f"has({trainer}) && has({trainer}.backend)")
    )
    return f"(({known} && {trainer}.backend == 'tunix-grpo') ? {grpo} : {builtin})"


PBT_SWEEP_RULES = [
    cel(
        "!has(self.trainer) || !has(self.trainer.schedule) || size(self.trainer.schedule) == 0",
        "trainer.schedule replays one run's schedule and belongs in a Rehearsal",
        ".trainer.schedule",
    ),
    cel(
        f"!({_PBT_ON}) || !has(self.trainer) || !has(self.trainer.backend) || "
        f"self.trainer.backend in {cel_list(PBT_BACKENDS)}",
        f"scheduler pbt needs trainer.backend {' or '.join(PBT_BACKENDS)} (other backends "
        "cannot take new hyperparameters on restore)",
        ".scheduler.type",
    ),
    cel(
        f"!({_PBT_ON}) || !has(self.warmStartFrom)",
        "scheduler pbt grows its trials from each other's checkpoints; an earlier sweep's "
        "trials have none in this population: remove warmStartFrom",
        ".warmStartFrom",
    ),
    cel(
        f"!({_PBT_ON}) || (has(self.algorithm) && self.algorithm == 'random')",
        "scheduler pbt needs algorithm random",
        ".algorithm",
    ),
    cel(
        f"!({_PBT_ON}) || (has(self.searchSpace) && size(self.searchSpace) > 0 && "
        f"self.searchSpace.all(k, k in {_cel_mutable('self.trainer')} && "
        f"self.searchSpace[k].type in {cel_list(PBT_TYPES)}))",
        f"scheduler pbt changes params mid-run: search only {_listed('builtin')} (tunix-grpo "
        "also klBeta, temperature), with uniform, loguniform or choice",
        ".searchSpace",
    ),
    cel(
        f"!({_PBT_ON}) || !has({_INTERVAL}) || ({_INTERVAL} < {_STEPS} && {_CKPT} > 0 && "
        f"{_INTERVAL} % {_CKPT} == 0 && {_CKPT} % {_LOG} == 0)",
        "scheduler pbt: perturbationInterval below budget.smokeSteps, trainer.checkpointEvery "
        "dividing it and trainer.logEvery dividing checkpointEvery",
        ".scheduler.perturbationInterval",
    ),
]


def schedule_problems(config: TrainerConfig) -> Problems:
    """A schedule the trainer would not follow as written."""
    if not config.schedule:
        return []
    out: Problems = []
    backend = config.backend
    if backend not in MUTABLE_BY_BACKEND:
        out.append(
            (
                "schedule",
                f"schedule is replayed by backend {' or '.join(PBT_BACKENDS)} only (now "
                f"{backend}); remove it or set one of those backends",
            )
        )
        backend = "builtin"
    last = -1
    for i, entry in enumerate(config.schedule):
        if entry.step <= last or entry.step >= config.max_steps:
            out.append(
                (
                    f"schedule[{i}].step",
                    f"step {entry.step} must be above the previous entry's ({last}) and "
                    f"below maxSteps ({config.max_steps}); order the entries by step",
                )
            )
        last = entry.step
        for key in entry.params:
            if key not in mutable_keys(backend):
                out.append(
                    (
                        f"schedule[{i}].params",
                        f"{key} cannot change mid-run on backend {backend}; a schedule "
                        f"sets only {_listed(backend)}",
                    )
                )
    return out


SCHEDULE_RULES = [
    cel(
        "!has(self.schedule) || size(self.schedule) == 0 || !has(self.backend) || "
        f"self.backend in {cel_list(PBT_BACKENDS)}",
        f"schedule is replayed by backend {' or '.join(PBT_BACKENDS)} only",
        ".schedule",
    ),
    cel(
        "!has(self.schedule) || self.schedule.all(e, e.params.all(k, k in "
        f"{_cel_mutable('self')}))",
        f"a schedule sets only {_listed('builtin')} (tunix-grpo also klBeta, temperature)",
        ".schedule",
    ),
]
