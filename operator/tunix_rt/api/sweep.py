"""The Sweep resource: a Ray Tune search over trainer hyperparameters."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import (
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from tunix_rt.api.base import ApiModel, cel, cel_list, cel_rules, field_error, refuse
from tunix_rt.api.cluster import ClusterSpec, cluster_field
from tunix_rt.api.common import (
    SEED_MAX,
    Resource,
    check_storage,
    queue_field,
    storage_field,
)
from tunix_rt.api.placement import check_placement_here
from tunix_rt.api.search_space import (
    CONTINUOUS_ONLY,
    FRACTIONAL,
    MODEL_BASED,
    NO_GRID,
    RANGED,
    Algorithm,
    Distribution,
    SearchKey,
    SearchParam,
)
from tunix_rt.api.secrets import refuse_credentials
from tunix_rt.api.sweep_effect import SWEEP_RULES, sweep_problems
from tunix_rt.api.sweep_goals import Budget, Objective, Scheduler, SchedulerType
from tunix_rt.api.sweep_status import SweepStatus
from tunix_rt.api.trainer import (
    TrainerConfig,
    integer_params,
    searchable_params,
    unknown_param_message,
    wire_param_name,
)
from tunix_rt.api.trial_metrics import (
    EVAL_METRICS,
)
from tunix_rt.api.trial_shape import SweepResources
from tunix_rt.api.warm_start import WarmStartFrom, warm_start_field

MAX_TRIALS_LIMIT = 200
MAX_SEARCH_PARAMS = 32
DEFAULT_RETRIES = 2
"""Resumes after infrastructure failures when ``spec.retries`` is not set."""
MAX_RETRIES = 20


def _spellings_cel() -> str:
    pairs = [(alias, name) for name, alias in searchable_params().items() if alias != name]
    return " && ".join(
        f"!('{a}' in self.searchSpace && '{b}' in self.searchSpace)" for a, b in pairs
    )


_INTEGER_PARAMS = integer_params()
_INTEGER_WIRE = [p for p in _INTEGER_PARAMS if p in searchable_params().values()]
_TRAINER_PARAMS = sorted({k for name, alias in searchable_params().items() for k in (name, alias)})
_USER_PARAMS_CEL = "has(self.trainer) && has(self.trainer.parameters)"
_EVAL_EVERY_CEL = (
    "has(self.trainer) && has(self.trainer.eval) && has(self.trainer.eval.evalEvery) && "
    "self.trainer.eval.evalEvery > 0 && self.trainer.eval.evalEvery < "
    "(has(self.budget) && has(self.budget.smokeSteps) ? self.budget.smokeSteps : 300)"
)


class SweepSpec(ApiModel):
    """What to search, how, and with which budget. The operator never edits it."""

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            cel(
                "!has(self.maxConcurrentTrials) || self.maxConcurrentTrials <= "
                "(has(self.maxTrials) ? self.maxTrials : 5)",
                "maxConcurrentTrials must not exceed maxTrials",
                ".maxConcurrentTrials",
            ),
            cel(
                f"!has(self.algorithm) || !(self.algorithm in {cel_list(sorted(MODEL_BASED))}) "
                "|| self.searchSpace.all(k, self.searchSpace[k].type != 'grid')",
                NO_GRID,
                ".algorithm",
            ),
            cel(
                f"!has(self.algorithm) || !(self.algorithm in {cel_list(sorted(CONTINUOUS_ONLY))})"
                " || self.searchSpace.exists(k, self.searchSpace[k].type in "
                "['uniform', 'loguniform', 'randint'])",
                "cmaes and gp model uniform, loguniform and randint parameters (choice ones are "
                "sampled at random); add at least one, or use tpe, qmc or random",
                ".algorithm",
            ),
            cel(
                "!has(self.algorithm) || self.algorithm != 'grid' || "
                "self.searchSpace.all(k, self.searchSpace[k].type in ['grid', 'choice'])",
                "algorithm grid needs every searchSpace entry to be grid or choice",
                ".algorithm",
            ),
            cel(
                f"self.searchSpace.all(k, !(k in {cel_list(_INTEGER_PARAMS)}) || "
                "!(self.searchSpace[k].type in ['uniform', 'loguniform']))",
                "integer parameters (" + ", ".join(_INTEGER_WIRE) + ") take randint or "
                "choice, not uniform or loguniform",
                ".searchSpace",
            ),
            cel(
                f"self.searchSpace.all(k, k in {cel_list(_TRAINER_PARAMS)} || "
                f"({_USER_PARAMS_CEL} && k in self.trainer.parameters))",
                "searchSpace names a trainer parameter (e.g. learningRate) or one declared in "
                "trainer.parameters (backend python)",
                ".searchSpace",
            ),
            cel(
                f"!({_USER_PARAMS_CEL}) || self.searchSpace.all(k, !(k in "
                "self.trainer.parameters) || self.trainer.parameters[k] == 'float' || "
                "(self.trainer.parameters[k] == 'int' ? !(self.searchSpace[k].type in "
                "['uniform', 'loguniform']) : self.searchSpace[k].type in ['choice', 'grid']))",
                "declared int parameters take randint, choice or grid; str and bool ones take "
                "choice or grid",
                ".searchSpace",
            ),
            cel(
                "!('maxSteps' in self.searchSpace) && !('max_steps' in self.searchSpace)",
                "budget.smokeSteps sets every trial's maxSteps; search another parameter and "
                "set budget.smokeSteps",
                ".searchSpace",
            ),
            cel(
                _spellings_cel(),
                "a parameter is named twice (camelCase and snake_case); keep one",
                ".searchSpace",
            ),
            cel(
                "!has(self.scheduler) || !has(self.scheduler.type) || "
                "self.scheduler.type == 'fifo' || !has(self.scheduler.metric) || "
                f"!(self.scheduler.metric in {cel_list(EVAL_METRICS)}) || ({_EVAL_EVERY_CEL})",
                "this scheduler metric is reported only at evals: set trainer.eval.evalEvery "
                "between 1 and budget.smokeSteps, or use scheduler.metric loss",
                ".scheduler.metric",
            ),
            cel(
                "!has(self.resources) || !has(self.resources.gpu) || self.resources.gpu == 0.0 "
                "|| !has(self.cluster) || !has(self.cluster.pools) || self.cluster.pools.exists("
                "p, has(p.gpusPerPod) && double(p.gpusPerPod) >= self.resources.gpu)",
                "no pool offers the GPUs a trial asks (resources.gpu); add a gpu pool with "
                "gpusPerPod >= resources.gpu",
                ".resources.gpu",
            ),
            *SWEEP_RULES,
        )
    )

    trainer: TrainerConfig = Field(
        default_factory=TrainerConfig,
        description="Base trainer config (model size, dataset, eval set, guardrails); "
        "each trial overrides the searched params.",
    )
    search_space: dict[SearchKey, SearchParam] = Field(
        min_length=1,
        max_length=MAX_SEARCH_PARAMS,
        description="Trainer parameter name (e.g. learningRate), or one of "
        "trainer.parameters (backend python) -> distribution.",
    )
    objective: Objective = Field(
        default_factory=Objective,
        description="Metric and direction that pick the best trial.",
    )
    algorithm: Algorithm = Field(
        Algorithm.RANDOM,
        description="random, grid, tpe (Optuna's TPE), cmaes (Optuna's CMA-ES), qmc "
        "(scrambled Sobol sequence) or gp (Gaussian-process Bayesian optimisation). cmaes and "
        "gp model the uniform, loguniform and randint entries and sample choice entries at "
        "random; no Optuna-based algorithm takes grid entries.",
    )
    scheduler: Scheduler = Field(
        default_factory=Scheduler,
        description="Early stopping of trials (fifo: none).",
    )
    max_trials: int = Field(
        5,
        ge=1,
        le=MAX_TRIALS_LIMIT,
        description="Trials to run. With grid entries: a whole multiple of the grid's "
        "points (the grid is repeated maxTrials / gridPoints times).",
    )
    max_concurrent_trials: int = Field(1, ge=1, le=MAX_TRIALS_LIMIT, description="Trials at once.")
    max_failed_trials: int = Field(
        0,
        ge=0,
        le=MAX_TRIALS_LIMIT,
        description="Failed trials tolerated; one more stops the sweep and fails it.",
    )
    budget: Budget = Field(
        default_factory=Budget,
        description="Per-trial step cap and time budgets.",
    )
    resources: SweepResources = Field(
        default_factory=SweepResources,
        description="What one trial reserves: cpu, memory, gpu, tpu on one pod; or workers "
        "across hosts (tpuSlice: a whole TPU slice; workers + gpusPerWorker: GPU pods).",
    )
    cluster: ClusterSpec = cluster_field()
    storage: str = storage_field("trial results")
    queue_name: str | None = queue_field()
    seed: int = Field(
        0, ge=0, le=SEED_MAX, description="Seed of the search algorithm (and of pbt's mutations)."
    )
    retries: int | None = Field(
        None,
        ge=0,
        le=MAX_RETRIES,
        description="New RayJobs the operator starts, each resuming the sweep from the store, "
        "after an infrastructure failure (head pod lost, node preempted, cluster deleted, "
        f"driver killed); default {DEFAULT_RETRIES}. A failure of the sweep itself (too many "
        "failed trials, a bad spec) is never retried.",
    )
    warm_start_from: WarmStartFrom | None = warm_start_field()

    @model_validator(mode="before")
    @classmethod
    def _no_credentials(cls, data: Any) -> Any:
        """Credentials anywhere in the spec are refused first (issue 23)."""
        return refuse_credentials(data)

    @field_validator("search_space", mode="before")
    @classmethod
    def _one_spelling(cls, value: Any) -> Any:
        """``learningRate`` and ``learning_rate`` in one searchSpace: YAML keeps both, and
        the last would silently win."""
        if isinstance(value, dict):
            seen: dict[str, str] = {}
            for key in value:
                try:
                    wire = wire_param_name(key) if isinstance(key, str) else None
                except ValueError:
                    continue  # an unknown name: the key validator says so
                if wire is None:
                    continue
                if wire in seen:
                    raise field_error(
                        key,
                        f"{seen[wire]} and {key} name the same parameter ({wire}); keep one",
                        key,
                    )
                seen[wire] = key
        return value

    @field_validator("search_space", mode="after")
    @classmethod
    def _known_names(cls, value: dict[str, SearchParam], info: ValidationInfo) -> Any:
        """Every name a trainer parameter or one of the user's ``trainer.parameters``;
        checked here (not in the key's own validator, which cannot see the trainer) so
        that an unknown name is reported with the spec's other errors."""
        trainer = info.data.get("trainer")
        if not isinstance(trainer, TrainerConfig):
            return value  # the trainer's own errors come first
        declared = trainer.parameters or {}
        unknown = [key for key in value if key not in _TRAINER_PARAMS and key not in declared]
        if unknown:
            raise ValidationError.from_exception_data(
                "ValueError",
                [
                    InitErrorDetails(
                        type=PydanticCustomError(
                            "value_error",
                            "{message}",
                            {"message": unknown_param_message(key, declared)},
                        ),
                        loc=(key, "[key]"),
                        input=key,
                    )
                    for key in unknown
                ],
            )
        return value

    @model_validator(mode="after")
    def _cross_field(self, info: ValidationInfo) -> SweepSpec:
        check_storage("storage", self.storage)
        self._check_search_space()
        self._check_scheduler()
        self._check_backend_spans()
        if self.max_concurrent_trials > self.max_trials:
            raise field_error(
                "maxConcurrentTrials",
                f"maxConcurrentTrials ({self.max_concurrent_trials}) exceeds maxTrials "
                f"({self.max_trials})",
                self.max_concurrent_trials,
            )
        types = {key: p.type for key, p in self.search_space.items()}
        if self.algorithm in MODEL_BASED:
            for key, kind in types.items():
                if kind is Distribution.GRID:
                    raise field_error(
                        "algorithm",
                        f"searchSpace.{key} is a grid; {NO_GRID}",
                        self.algorithm.value,
                    )
        if self.algorithm in CONTINUOUS_ONLY and not any(k in RANGED for k in types.values()):
            raise field_error(
                "algorithm",
                f"{self.algorithm.value} models uniform, loguniform and randint parameters and "
                "samples choice ones at random, and searchSpace has only choice entries; add a "
                "ranged parameter or use tpe, qmc or random",
                self.algorithm.value,
            )
        if self.algorithm is Algorithm.GRID:
            for key, kind in types.items():
                if kind not in {Distribution.GRID, Distribution.CHOICE}:
                    raise field_error(
                        "algorithm",
                        f"algorithm grid needs every searchSpace entry to be grid or choice; "
                        f"searchSpace.{key} is {kind.value}",
                        self.algorithm.value,
                    )
        points = self.grid_points()
        if points > self.max_trials:
            raise field_error(
                "maxTrials",
                f"the grid has {points} points, more than maxTrials ({self.max_trials}); "
                f"raise maxTrials to at least {points}",
                self.max_trials,
            )
        for key, param in self.search_space.items():
            for value in param.candidates():
                try:
                    self.trainer.with_params({key: value})
                except ValidationError as exc:
                    msg = exc.errors()[0]["msg"]
                    where = "values" if param.values is not None else "low/high"
                    raise field_error(
                        f"searchSpace.{key}",
                        f"{where} include {value!r}, which the trainer rejects: {msg}",
                        value,
                    ) from None
        refuse(sweep_problems(self))
        check_placement_here(self, info)
        return self

    def _check_backend_spans(self) -> None:
        """Only the built-in trainer splits its batch across processes: a trial of another
        backend over several workers would run the same work on each and be no faster."""
        workers = self.resources.worker_count()
        if workers > 1 and self.trainer.backend != "builtin":
            raise field_error(
                "resources",
                f"a trial over {workers} workers (resources.tpuSlice or resources.workers) "
                f"runs data-parallel with the built-in trainer only, not backend "
                f"{self.trainer.backend}; use a one-host slice or one worker per trial",
                self.trainer.backend,
            )

    def _check_search_space(self) -> None:
        """What the trials could not run, or would run other than written."""
        declared = self.trainer.parameters or {}
        for key, param in self.search_space.items():
            if key not in _TRAINER_PARAMS:
                self._check_user_param(key, param, declared)
                continue
            if key == "maxSteps":
                raise field_error(
                    "searchSpace.maxSteps",
                    "budget.smokeSteps sets every trial's maxSteps (it overrides "
                    "trainer.maxSteps), so searching maxSteps has no effect; remove it and "
                    "set budget.smokeSteps",
                    key,
                )
            if key in _INTEGER_PARAMS and param.type in FRACTIONAL:
                raise field_error(
                    f"searchSpace.{key}.type",
                    f"{key} takes integers, and {param.type.value} samples fractions (e.g. "
                    "23.7) that every trial would refuse; use randint (integers in [low, high)) "
                    "or choice with integer values",
                    param.type.value,
                )

    @staticmethod
    def _check_user_param(key: str, param: SearchParam, declared: Mapping[str, str]) -> None:
        """A name that is no trainer parameter: one of ``trainer.parameters``, searched
        with a distribution that samples its type."""
        kind = declared.get(key)  # a name neither declared nor a trainer's: _known_names
        if kind == "int" and param.type in FRACTIONAL:
            raise field_error(
                f"searchSpace.{key}.type",
                f"{key} is declared int in trainer.parameters, and {param.type.value} samples "
                "fractions (e.g. 23.7) that every trial would refuse; use randint (integers in "
                "[low, high)) or choice with integer values",
                param.type.value,
            )
        if kind in ("str", "bool") and param.type in RANGED:
            raise field_error(
                f"searchSpace.{key}.type",
                f"{key} is declared {kind} in trainer.parameters; {param.type.value} samples "
                f"numbers: use choice or grid with {kind} values",
                param.type.value,
            )

    def _check_scheduler(self) -> None:
        """An early-stopping scheduler on an eval metric needs evals while trials train."""
        sched = self.scheduler
        if sched.type is SchedulerType.FIFO or sched.metric not in EVAL_METRICS:
            return
        every, steps = self.trainer.eval.eval_every, self.budget.smoke_steps
        if 0 < every < steps:
            return
        when = "0 (end only)" if every == 0 else f"{every}, not below budget.smokeSteps ({steps})"
        raise field_error(
            "scheduler.metric",
            f"{sched.type.value} compares {sched.metric} while trials train, but "
            f"trainer.eval.evalEvery is {when}, so {sched.metric} exists only at the end and "
            "no trial is ever stopped; set trainer.eval.evalEvery between 1 and "
            f"{steps - 1} (e.g. {max(1, steps // 4)}) or use scheduler.metric loss",
            sched.metric,
        )

    def grid_keys(self) -> list[str]:
        """Params enumerated exhaustively: grid entries, and choice entries of a grid search."""
        enumerated = {Distribution.GRID}
        if self.algorithm is Algorithm.GRID:
            enumerated.add(Distribution.CHOICE)
        return [k for k, p in self.search_space.items() if p.type in enumerated]

    def grid_points(self) -> int:
        """Size of the grid (1 when nothing is enumerated)."""
        return math.prod(len(self.search_space[k].values or []) for k in self.grid_keys())

    def samples(self) -> int:
        """Ray Tune ``num_samples``: trials, or repeats of the grid when there is one."""
        if not self.grid_keys():
            return self.max_trials
        return max(1, self.max_trials // self.grid_points())

    def planned_trials(self) -> int:
        """How many trials the sweep runs in all (status: trialsTotal)."""
        return self.samples() * self.grid_points()

    def max_retries(self) -> int:
        """``retries``, or its default when unset (unset keeps the wire form unchanged)."""
        return DEFAULT_RETRIES if self.retries is None else self.retries

    def accelerators_per_trial(self) -> float:
        """Devices one trial holds, for accelerator-hours: its GPUs, else its TPU chips,
        else 1 (a CPU-only trial counts as one device, so a budget means the same on a
        laptop as in the cluster: trial-hours)."""
        res = self.resources
        if res.spans_hosts():  # every worker's chips or GPUs, on every host of the trial
            return float(res.worker_count() * (res.chips_per_worker() or res.gpus_per_worker or 1))
        return float(res.gpu or res.tpu or 1)

    def trial_config(self, params: dict[str, Any]) -> TrainerConfig:
        """The trainer config of one trial: base config, searched params, smoke cap."""
        config = self.trainer.with_params(params)
        return config.model_copy(update={"max_steps": self.budget.smoke_steps})


class Sweep(Resource[SweepSpec, SweepStatus]):
    """A full Sweep manifest as applied with kubectl."""

    kind: Literal["Sweep"] = "Sweep"
