"""The Tune driver: a Sweep spec mapped onto ``ray.tune.Tuner``, run, and summarised.

The mapping, in one place:

=====================  ===============================================================
spec                   Ray Tune
=====================  ===============================================================
searchSpace            ``param_space``: uniform/loguniform/randint/choice -> ``tune.*``;
                       grid -> ``tune.grid_search`` (so are choice entries of a grid)
algorithm random       ``BasicVariantGenerator(random_state=seed, max_concurrent=…)``
algorithm grid         the same generator; ``num_samples`` = repeats of the grid
algorithm tpe          ``ConcurrencyLimiter(OptunaSearch(TPESampler(seed=seed)))``
algorithm cmaes/qmc/gp the same with ``CmaEsSampler``, ``QMCSampler`` (scrambled Sobol) or
                       ``tune.gp_sampler.GPSampler`` (scikit-learn GP, expected improvement)
scheduler fifo         ``FIFOScheduler``
scheduler asha         ``ASHAScheduler(time_attr="step", max_t=smokeSteps, …)``
scheduler median       ``MedianStoppingRule(time_attr="step", …)``
maxTrials              ``num_samples`` (grid: maxTrials // gridPoints repeats)
maxConcurrentTrials    the search algorithm's concurrency limit
maxFailedTrials        a stopper that ends the sweep when one more trial fails
resources              ``tune.with_resources`` (cpu, gpu, memory, TPU)
budget                 smokeSteps -> trainer maxSteps; trial/sweep timeouts -> stoppers
                       and ``time_budget_s``
=====================  ===============================================================

Local runs (no ``--address``) start a Ray on this machine; with ``--address auto`` the
same code joins the Ray cluster it runs in (the operator's RayJob). Ray's own
experiment (its state, the searcher's, each trial's ``progress.csv`` / ``result.json`` /
TensorBoard events and, on object stores, its checkpoints) lives at
``<store>/<ns>/<sweep>/ray`` on every store (object stores through the store's own
filesystem, :mod:`tunix_rt.tune.durable`), so any later run, a new RayJob included,
resumes it (``Tuner.restore``); ``--ray-storage`` puts it elsewhere.

Sweep budgets (``budget.acceleratorHours``, ``budget.wallClockSeconds``, across
sessions) and ``objective.goal`` are enforced here (:mod:`tunix_rt.tune.budget`): a gate
on the search algorithm starts no trial that would pass a cap, the stopper stops
running trials at a cap or once a trial reaches the goal.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import ray
from ray import tune
from ray.tune.schedulers import (
    ASHAScheduler,
    FIFOScheduler,
    MedianStoppingRule,
    TrialScheduler,
)
from ray.tune.search import (
    BasicVariantGenerator,
    ConcurrencyLimiter,
    SearchAlgorithm,
    Searcher,
    SearchGenerator,
)
from ray.tune.search.optuna import OptunaSearch

from tunix_rt.api.common import Phase
from tunix_rt.api.errors import ManifestError
from tunix_rt.api.manifests import SweepDocument, load_sweep
from tunix_rt.api.quantities import quantity_bytes
from tunix_rt.api.search_space import MODEL_BASED, Algorithm, Distribution, SearchParam
from tunix_rt.api.sweep import SweepSpec
from tunix_rt.api.sweep_goals import SchedulerType
from tunix_rt.api.trial import SweepResult, TrialResult, TrialState
from tunix_rt.api.trial_shape import TRIAL_DRIVER_RESOURCE, TRIAL_DRIVER_SLOTS
from tunix_rt.contract.best_trial import best_trial, ranked
from tunix_rt.contract.codec import decode_sweep
from tunix_rt.contract.exits import ExitCode, exit_code_for
from tunix_rt.contract.file_names import ARCHIVE_DIR, CHECKPOINTS_DIR, EXPERIMENT_DIR, LOGS_DIR
from tunix_rt.contract.layout import LOCAL_NAMESPACE, SweepFiles, SweepTarget
from tunix_rt.contract.phases import SweepEnd, Verdict, goal_trial, sweep_verdict
from tunix_rt.evidence import SweepRunFacts, commit_info, publish_folder, write_sweep_evidence
from tunix_rt.evidence.manifest import iso
from tunix_rt.scoring import PRIMARY_SCORE
from tunix_rt.storage import Store, StoreError, scrub
from tunix_rt.tune import multihost
from tunix_rt.tune.budget import SweepLimits
from tunix_rt.tune.durable import (
    SessionLedger,
    drop_experiment,
    experiment_filesystem,
    state_problem,
)
from tunix_rt.tune.records import failed_record, finished, plain, stopped_record, utcnow
from tunix_rt.tune.trainable import TrialContext, train_trial

KEEP_FOLDERS = (EXPERIMENT_DIR, CHECKPOINTS_DIR, ARCHIVE_DIR, LOGS_DIR)
"""Folders of ``<ns>/<sweep>/`` that a fresh start leaves in place (the rest is archived)."""

log = logging.getLogger("tunix_rt.tune")


# ----------------------------------------------------------------------------- mapping


def param_domain(param: SearchParam, *, enumerate_choice: bool = False) -> Any:
    """One searchSpace entry as a Ray Tune domain (or grid_search marker)."""
    kind = param.type
    if kind is Distribution.UNIFORM:
        assert param.low is not None and param.high is not None
        return tune.uniform(param.low, param.high)
    if kind is Distribution.LOGUNIFORM:
        assert param.low is not None and param.high is not None
        return tune.loguniform(param.low, param.high)
    if kind is Distribution.RANDINT:
        assert param.low is not None and param.high is not None
        return tune.randint(int(param.low), int(param.high))
    values = list(param.values or [])
    if kind is Distribution.GRID or enumerate_choice:
        return tune.grid_search(values)
    return tune.choice(values)


def search_space(spec: SweepSpec) -> dict[str, Any]:
    """``param_space``: wire param name -> domain (trials receive exactly these keys)."""
    enumerate_choice = spec.algorithm is Algorithm.GRID
    return {
        name: param_domain(param, enumerate_choice=enumerate_choice)
        for name, param in spec.search_space.items()
    }


class _OptunaSearch(OptunaSearch):
    """OptunaSearch that skips intermediate reports without the objective metric.

    Trials report ``loss`` every few steps and ``primary_score`` only at eval points;
    stock OptunaSearch would fail on the first loss-only report.
    """

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        if isinstance(self.metric, str) and self.metric in result:
            super().on_trial_result(trial_id, result)


def optuna_sampler(spec: SweepSpec) -> Any:
    """The Optuna sampler of a model-based algorithm (tpe, cmaes, qmc, gp), seeded.

    The model-based ones start with random trials (half the sweep, 2 to 10) before they
    model anything; qmc is a scrambled Sobol sequence (unscrambled, every seed would try
    the same points).
    """
    from optuna import samplers

    startup = max(2, min(10, spec.max_trials // 2))
    seed = spec.seed
    if spec.algorithm is Algorithm.CMAES:
        return samplers.CmaEsSampler(
            seed=seed, n_startup_trials=startup, warn_independent_sampling=False
        )
    if spec.algorithm is Algorithm.QMC:
        return samplers.QMCSampler(
            qmc_type="sobol", scramble=True, seed=seed, warn_independent_sampling=False
        )
    if spec.algorithm is Algorithm.GP:
        from tunix_rt.tune.gp_sampler import GPSampler

        return GPSampler(seed=seed, n_startup_trials=startup)
    return samplers.TPESampler(seed=seed, n_startup_trials=startup)


def search_algorithm(spec: SweepSpec) -> SearchAlgorithm | ConcurrencyLimiter:
    """The search algorithm, with the sweep's concurrency limit built in."""
    if spec.algorithm in MODEL_BASED:
        searcher = _OptunaSearch(
            metric=spec.objective.metric, mode=spec.objective.mode, sampler=optuna_sampler(spec)
        )
        return ConcurrencyLimiter(searcher, max_concurrent=spec.max_concurrent_trials)
    return BasicVariantGenerator(
        max_concurrent=spec.max_concurrent_trials,
        random_state=spec.seed,
        constant_grid_search=True,
    )


def scheduler(spec: SweepSpec) -> TrialScheduler:
    """The early-stopping scheduler; it compares ``scheduler.metric`` over ``step``."""
    sched = spec.scheduler
    if sched.type is SchedulerType.ASHA:
        # Rungs strictly below smokeSteps: a trial that reaches the end still has its
        # final eval to run, and is never cut there.
        max_t = max(1, spec.budget.smoke_steps - 1)
        return ASHAScheduler(
            time_attr="step",
            metric=sched.metric,
            mode=sched.mode,
            max_t=max_t,
            grace_period=min(sched.grace_period, max_t),
            reduction_factor=sched.reduction_factor,
            stop_last_trials=False,
        )
    if sched.type is SchedulerType.MEDIAN:
        return MedianStoppingRule(
            time_attr="step",
            metric=sched.metric,
            mode=sched.mode,
            grace_period=sched.grace_period,
            min_samples_required=3,
        )
    return FIFOScheduler()  # type: ignore[no-untyped-call]


def trial_resources(spec: SweepSpec) -> dict[str, float]:
    """Per-trial resources for ``tune.with_resources`` (a multi-host trial: all its
    workers together, for the local fit check; Tune reserves them through its JaxTrainer)."""
    res = spec.resources
    if res.spans_hosts():
        return multihost.total_resources(spec)
    out: dict[str, float] = {"cpu": res.cpu}
    if res.gpu:
        out["gpu"] = res.gpu
    if res.memory:
        out["memory"] = float(quantity_bytes(res.memory))
    if res.tpu:
        out["TPU"] = float(res.tpu)
    return out


def tune_config(spec: SweepSpec) -> tune.TuneConfig:
    """Metric/mode live on the searcher and scheduler (they differ: primary_score vs loss)."""
    return tune.TuneConfig(
        search_alg=BudgetGate(search_algorithm(spec)),
        scheduler=scheduler(spec),
        num_samples=spec.samples(),
        time_budget_s=spec.budget.sweep_timeout_seconds,
        trial_name_creator=trial_name,
        trial_dirname_creator=trial_name,
        reuse_actors=reuse_workers(spec),
    )


def reuse_workers(spec: SweepSpec) -> bool:
    """Run a trial in the worker process the last one ended in (Ray Tune's
    ``reuse_actors``) when trials are the built-in trainer on one host: JAX stays
    imported, and the dataset and the compiled train step stay cached in the process
    (``train/data.py``, ``train/train_step.py``), so a short trial no longer pays for a
    process start (benchmarks/README.md, ``tune_overhead_fraction``). Not for Tunix
    (a model's state per trial), a user's trainer (its own module state) or multi-host
    trials (a Ray Train run each). A trial that a scheduler or stopper ends is ended right
    after a report, while its thread waits there (function trainables report
    synchronously), so its thread exits at once and the process is free for the next
    (``tests/tune/test_tune_runs.py`` checks one worker across ASHA-stopped trials)."""
    return spec.trainer.backend == "builtin" and not spec.resources.spans_hosts()


class BudgetGate(SearchAlgorithm):
    """The sweep's search algorithm, behind the budget: no new trial once the next would
    pass ``budget.acceleratorHours`` / ``budget.wallClockSeconds`` or a trial reached
    ``objective.goal`` (:class:`~tunix_rt.tune.budget.SweepLimits` of this session);
    everything else is the wrapped algorithm's. It holds no limits itself: Tune restores
    it from the experiment's first session, the limits are this session's."""

    def __init__(self, inner: SearchAlgorithm | Searcher) -> None:
        self.searcher = inner if isinstance(inner, SearchAlgorithm) else SearchGenerator(inner)

    def _closed(self) -> bool:
        limits = _ACTIVE_LIMITS
        if limits is None:
            return False
        now = time.monotonic()
        return limits.goal_trial is not None or limits.close_if_needed(now) is not None

    def next_trial(self) -> Any:
        if not self.searcher.is_finished() and self._closed():
            return None
        return self.searcher.next_trial()

    def is_finished(self) -> bool:
        return bool(self.searcher.is_finished()) or self._closed()

    @property
    def metric(self) -> Any:
        return self.searcher.metric

    @property
    def total_samples(self) -> int:
        return int(self.searcher.total_samples)

    def set_search_properties(self, metric: Any, mode: Any, config: Any, **spec: Any) -> bool:
        return bool(self.searcher.set_search_properties(metric, mode, config, **spec))

    def add_configurations(self, experiments: Any) -> None:
        self.searcher.add_configurations(experiments)

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        self.searcher.on_trial_result(trial_id, result)

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        self.searcher.on_trial_complete(trial_id, result=result, error=error)

    def set_finished(self) -> None:
        self.searcher.set_finished()  # type: ignore[no-untyped-call]

    def has_checkpoint(self, dirpath: str) -> bool:
        return bool(self.searcher.has_checkpoint(dirpath))

    def save_to_dir(self, dirpath: str, **kwargs: Any) -> None:
        self.searcher.save_to_dir(dirpath, **kwargs)

    def restore_from_dir(self, dirpath: str) -> None:
        self.searcher.restore_from_dir(dirpath)


def trial_name(trial: Any) -> str:
    """Trial name and folder = its id, the name of its result file."""
    return str(trial.trial_id)


# ----------------------------------------------------------------------------- log


class SweepLog:
    """The driver's own lines (trials started, scored, failed; the verdict), timestamped.

    Echoed to stdout and kept in the store at ``<ns>/<sweep>/sweep_log.txt`` after every
    finished trial, so an interrupted sweep's log survives and a resumed one appends to
    it; the finished sweep's evidence bundle carries it.
    """

    def __init__(self, files: SweepFiles, echo: bool = True) -> None:
        self.files = files
        self.echo = echo
        self.lines: list[str] = []
        self._lock = threading.Lock()

    def resume(self) -> None:
        """Continue the log an interrupted run of this sweep left."""
        try:
            earlier = self.files.log()
        except StoreError:  # a log that cannot be read is not continued; the sweep is
            return
        if earlier is None:
            return
        with self._lock:
            self.lines = earlier.splitlines() + self.lines

    def __call__(self, line: str) -> None:
        if self.echo:
            print(f"[tunix-rt] {line}", flush=True)
        stamp = iso(utcnow())
        with self._lock:
            self.lines.extend(f"{stamp} {part}" for part in scrub(line).splitlines() or [""])

    @property
    def text(self) -> str:
        with self._lock:
            return "".join(f"{line}\n" for line in self.lines)

    def save(self) -> None:
        try:
            self.files.write_log(self.text)
        except StoreError as exc:  # the log must never end the sweep
            log.warning("could not save the sweep log: %s", exc)


_ACTIVE_LOG: SweepLog | None = None
"""The running sweep's log: Tune restores the monitor from its pickle on resume, so the
monitor finds the log here rather than holding it."""
_ACTIVE_LIMITS: SweepLimits | None = None
"""This session's budgets and goal (:mod:`tunix_rt.tune.budget`), found here by the
monitor and the gate for the same reason."""
_ACTIVE_LEDGER: SessionLedger | None = None
"""This session's entry in ``sessions.json``; the monitor refreshes its sign of life."""


# ----------------------------------------------------------------------------- monitor


class SweepMonitor(tune.Callback, tune.Stopper):
    """Driver-side bookkeeping: final records Tune's trials could not write themselves
    (stopped by the scheduler, crashed), the failure budget and the trial timeout.

    It holds only plain data: Tune pickles it with the experiment and restores it.
    """

    def __init__(
        self,
        target: SweepTarget,
        max_failed_trials: int,
        trial_timeout_s: float | None = None,
        echo: bool = True,
    ) -> None:
        self.target = target
        self.max_failed_trials = max_failed_trials
        self.trial_timeout_s = trial_timeout_s
        self.echo = echo
        self.failed: set[str] = set()
        self._files: SweepFiles | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_files"] = None
        return state

    @property
    def files(self) -> SweepFiles:
        if self._files is None:
            self._files = self.target.files()
        return self._files

    def _recorded(self, trial_id: str) -> TrialResult | None:
        """The trial's own record; None when absent or unreadable (then the monitor writes
        one itself). A store that cannot be reached raises StoreError: the callers report
        it and leave the record as the trial wrote it, never a blank one over it."""
        return self.files.trial(trial_id)

    def _blank(self, trial: Any) -> TrialResult:
        """A record for a trial that wrote none itself."""
        return TrialResult(
            trial_id=trial.trial_id,
            sweep=self.target.sweep,
            namespace=self.target.namespace,
            params=dict(trial.config),
        )

    def _say(self, line: str) -> None:
        if _ACTIVE_LOG is not None:
            _ACTIVE_LOG(line)
            _ACTIVE_LOG.save()
        elif self.echo:
            print(f"[tunix-rt] {line}", flush=True)

    # Stopper ------------------------------------------------------------------
    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        limits = _ACTIVE_LIMITS
        if limits is not None:
            limits.trial_reported(trial_id, result, time.monotonic())
            if self._limits_stop(limits):
                return True
        if self.trial_timeout_s is None:
            return False
        return float(result.get("time_total_s", 0.0)) >= self.trial_timeout_s

    def stop_all(self) -> bool:
        limits = _ACTIVE_LIMITS
        if limits is not None and self._limits_stop(limits):
            return True
        return len(self.failed) > self.max_failed_trials

    def _limits_stop(self, limits: SweepLimits) -> bool:
        """A cap reached or the goal met: said once, then every trial stops."""
        why = limits.stop_everything(time.monotonic())
        if why is not None and not getattr(self, "_stopping", False):
            self._stopping = True
            self._say(f"{why}: stopping the sweep")
        return why is not None

    # Callback -----------------------------------------------------------------
    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        if _ACTIVE_LIMITS is not None:
            _ACTIVE_LIMITS.trial_started(trial.trial_id, time.monotonic())
        params = json.dumps({k: plain(v) for k, v in dict(trial.config).items()}, sort_keys=True)
        self._say(f"trial {trial.trial_id} started: {params}")

    def on_step_begin(self, iteration: int, trials: list[Any], **info: Any) -> None:
        # Trials restored in the ERROR state count against the budget too.
        for trial in trials:
            if trial.status == "ERROR":
                self.failed.add(trial.trial_id)
        if _ACTIVE_LEDGER is not None:
            _ACTIVE_LEDGER.alive(time.monotonic())

    def _ended(self, trial: Any, full: bool) -> None:
        if _ACTIVE_LIMITS is not None:
            _ACTIVE_LIMITS.trial_ended(trial.trial_id, time.monotonic(), full=full)

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        try:
            record = self._recorded(trial.trial_id)
            if finished(record):
                assert record is not None
                self._ended(trial, full=record.state is TrialState.SUCCEEDED)
                self._say(f"trial {trial.trial_id} {record.state.value.lower()}{_score(record)}")
                return
            self._ended(trial, full=False)
            last = dict(trial.last_result or {})
            if record is None:
                if not last:
                    return  # never started (a pending trial of a stopped sweep)
                record = self._blank(trial)
            record = stopped_record(record, last)
            if _ACTIVE_LIMITS is not None:
                hours = _ACTIVE_LIMITS.trial_hours(trial.trial_id, time.monotonic())
                record = record.model_copy(update={"accelerator_hours": hours})
            self.files.write_trial(record)
            self._say(f"trial {trial.trial_id} stopped early{_score(record)}")
        except StoreError as exc:
            self._say(f"could not record trial {trial.trial_id}: {exc}")

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self.failed.add(trial.trial_id)
        self._ended(trial, full=False)
        try:
            record = self._recorded(trial.trial_id)
            if record is not None and record.state is TrialState.FAILED:
                error = record.error or "failed"
            else:
                error = _trial_error(trial)
                self.files.write_trial(failed_record(record or self._blank(trial), error))
            self._say(f"trial {trial.trial_id} failed: {error.splitlines()[-1][:300]}")
        except StoreError as exc:
            self._say(f"could not record trial {trial.trial_id}: {exc}")
        if self.stop_all():
            self._say(
                f"{len(self.failed)} trial(s) failed, more than maxFailedTrials "
                f"({self.max_failed_trials}): stopping the sweep"
            )


def _score(record: TrialResult) -> str:
    if record.primary_score is None:
        return ""
    return f", {PRIMARY_SCORE}={record.primary_score:.4f}"


def _trial_error(trial: Any) -> str:
    try:
        error = trial.get_error()
    except Exception:  # pragma: no cover - depends on what Ray kept
        error = None
    if error is not None:
        return str(error).strip() or type(error).__name__
    return "the trial failed (no error message was kept)"


# ----------------------------------------------------------------------------- running


@dataclass
class SweepRun:
    """One invocation of the driver."""

    spec: SweepSpec
    name: str
    namespace: str = LOCAL_NAMESPACE
    storage: str | None = None
    address: str | None = None
    ray_storage: str | None = None
    fresh: bool = False
    num_cpus: int | None = None
    echo: bool = True
    env: dict[str, str] = field(default_factory=dict)
    spec_path: str | None = None
    """Where the spec came from (the manifest's config_path); None: passed inline."""
    command: list[str] | None = None

    @property
    def storage_uri(self) -> str:
        return self.storage or self.spec.storage


@dataclass
class SweepOutcome:
    exit_code: ExitCode
    message: str
    summary: SweepResult | None = None
    results_uri: str | None = None
    evidence_uri: str | None = None
    bundle_uri: str | None = None


def experiment_root(run: SweepRun, store: Store, target: SweepTarget) -> str:
    """Folder (``storage_path``) under which Ray keeps the experiment ``ray/``: the
    sweep's prefix in the store (a path in the store's filesystem), unless
    ``--ray-storage`` names another."""
    if run.ray_storage:
        return run.ray_storage
    return f"{store.root}/{target.layout.prefix}"


def experiment_fs(run: SweepRun, store: Store) -> Any:
    """The pyarrow filesystem of :func:`experiment_root`: the store's own for object
    stores (None: a local folder, Ray's default)."""
    if run.ray_storage or store.scheme == "file":
        return None
    return experiment_filesystem(store)


def archive_previous(files: SweepFiles, say: Callable[[str], None]) -> None:
    """Move an earlier, non-resumable run's records aside (``<sweep>/archive/<time>/``).

    A fresh start must not mix old trials into the new summary, and must not lose them.
    """
    store, layout = files.store, files.layout
    skip = tuple(f"{layout.key(folder)}/" for folder in KEEP_FOLDERS)
    keys = [k for k in store.list(layout.prefix + "/") if not k.startswith(skip)]
    if not keys:
        return
    dest = layout.key(ARCHIVE_DIR, utcnow().strftime("%Y%m%dT%H%M%SZ"))
    for key in keys:
        rel = key[len(layout.prefix) + 1 :]
        store.write_bytes(f"{dest}/{rel}", store.read_bytes(key))
        store.delete(key)
    say(f"moved {len(keys)} file(s) of an earlier run to {store.uri_for(dest)}")


def _spec_fingerprint(spec: SweepSpec) -> str:
    wire = spec.to_wire()
    wire.pop("storage", None)
    wire.pop("cluster", None)
    return json.dumps(wire, sort_keys=True)


def _init_ray(run: SweepRun) -> None:
    if ray.is_initialized():
        return
    if os.environ.get("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0") in ("0", "false", "False"):
        # Same as __main__ does through the environment, for in-process callers that
        # imported Ray already (the constant is read at import).
        with contextlib.suppress(Exception):
            from ray._private import ray_constants

            ray_constants.RAY_ENABLE_UV_RUN_RUNTIME_ENV = False
    if run.address:
        ray.init(address=run.address, log_to_driver=True, logging_level=logging.WARNING)
        return
    os.environ.setdefault("RAY_CHDIR_TO_TRIAL_DIR", "0")
    ray.init(
        num_cpus=run.num_cpus or os.cpu_count() or 1,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.WARNING,
        object_store_memory=300 * 1024 * 1024,
        resources={TRIAL_DRIVER_RESOURCE: TRIAL_DRIVER_SLOTS},  # multi-host trial drivers
    )


def _check_local_resources(spec: SweepSpec) -> str | None:
    """Locally nothing autoscales: a trial that cannot fit would wait forever."""
    have = ray.cluster_resources()  # type: ignore[no-untyped-call]
    need = trial_resources(spec)
    names = {"cpu": "CPU", "gpu": "GPU", "TPU": "TPU"}
    for key, ray_name in names.items():
        if need.get(key, 0) > have.get(ray_name, 0):
            return (
                f"spec.resources asks {need[key]:g} {ray_name} per trial; this machine offers "
                f"{have.get(ray_name, 0):g}"
            )
    return None


def _sweep_env() -> None:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault(multihost.TRAIN_V2_ENV, "1")  # multi-host trials: Ray Train v2
    # Save Tune's experiment state at most ~1 s behind, so an interrupted sweep resumes
    # with (almost) every finished trial known; the trainable covers the rest.
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "1")
    # Searchers read primary_score only at eval points; the loss-only reports between
    # them are expected (see _OptunaSearch).
    os.environ.setdefault("TUNE_DISABLE_STRICT_METRIC_CHECKING", "1")


def _graceful_sigterm() -> None:
    """SIGTERM (kubectl delete, kill) ends the sweep like Ctrl-C: state saved, resumable."""
    if not hasattr(signal, "SIGUSR1"):
        return

    def forward(signum: int, frame: Any) -> None:
        os.kill(os.getpid(), signal.SIGUSR1)

    with contextlib.suppress(ValueError):  # not the main thread
        signal.signal(signal.SIGTERM, forward)


def dataset_problem(spec: SweepSpec) -> str | None:
    """What is wrong with the user dataset every trial would train on (None: nothing, or
    the generated set): found here in seconds, not by every trial after it compiled."""
    from tunix_rt.train.data import check_dataset

    try:
        check_dataset(spec.trial_config({}))
    except (ValueError, OSError) as exc:
        return str(exc)
    return None


def run_sweep(run: SweepRun) -> SweepOutcome:
    """Run (or resume) a sweep to the end; write every trial record and the summary."""
    global _ACTIVE_LOG, _ACTIVE_LIMITS, _ACTIVE_LEDGER
    store = Store(run.storage_uri)
    target = SweepTarget(store.uri, run.namespace, run.name)
    files = target.files(store)
    try:  # preflight: a store that cannot be written fails the sweep before Ray starts
        store.probe(target.layout.prefix)
    except StoreError as exc:
        return SweepOutcome(ExitCode.FAILED, f"preflight failed, nothing ran: {exc}")
    problem = dataset_problem(run.spec)
    if problem:
        return SweepOutcome(ExitCode.INVALID, f"bad dataset, nothing ran: {problem}")
    say = SweepLog(files, echo=run.echo)
    _ACTIVE_LOG = say
    root, fs = experiment_root(run, store, target), experiment_fs(run, store)
    session = Session(run, target, files, say, root, utcnow(), fs)
    try:
        return _run_sweep(session)
    finally:
        say.save()
        _ACTIVE_LOG = _ACTIVE_LIMITS = _ACTIVE_LEDGER = None


def _open_session(session: Session) -> SweepLimits:
    """This session in ``sessions.json``, and its limits seeded from earlier sessions
    (their wall seconds, the trial records' hours)."""
    global _ACTIVE_LIMITS, _ACTIVE_LEDGER
    local = session.files.store.scheme == "file"
    ledger = SessionLedger(session.files, every_s=5.0 if local else 30.0)
    earlier = ledger.open()
    limits = SweepLimits.seeded(session.run.spec, time.monotonic(), session.files.trials(), earlier)
    _ACTIVE_LEDGER, _ACTIVE_LIMITS = ledger, limits
    return limits


@dataclass(frozen=True)
class Session:
    """One run of the driver: what its steps share."""

    run: SweepRun
    target: SweepTarget
    files: SweepFiles
    say: SweepLog
    root: str
    """Ray's ``storage_path`` (:func:`experiment_root`)."""
    started: datetime
    fs: Any = None
    """Ray's ``storage_filesystem`` (:func:`experiment_fs`); None: a local folder."""

    @property
    def experiment(self) -> str:
        """Ray Tune's experiment folder: what a later session restores."""
        return f"{self.root}/{EXPERIMENT_DIR}"

    @property
    def in_store(self) -> bool:
        """Ray's experiment lives under the sweep's prefix in the store."""
        return not self.run.ray_storage


def _run_sweep(session: Session) -> SweepOutcome:
    """The steps of one driver session, each a function of its own."""
    run, files = session.run, session.files
    _sweep_env()
    restoring, early = restore_or_archive(session)
    if early is not None:
        return early
    files.write_spec(run.spec)
    limits = _open_session(session)
    ledger = _ACTIVE_LEDGER
    assert ledger is not None
    try:
        outcome = _tune(session, restoring, limits)
    except BaseException as exc:  # recorded, then raised as before
        # Ctrl-C is an interruption (resumable); anything else ends the sweep as failed,
        # so that the operator does not start the same crash again.
        code = ExitCode.INTERRUPTED if isinstance(exc, KeyboardInterrupt) else ExitCode.FAILED
        ledger.close(code, f"{type(exc).__name__}: {exc}"[:500])
        raise
    ledger.close(outcome.exit_code, outcome.message)
    return outcome


def _tune(session: Session, restoring: bool, limits: SweepLimits) -> SweepOutcome:
    """Ray, the Tuner, its run, the verdict, the summary."""
    run, files, say = session.run, session.files, session.say
    _init_ray(run)
    if not run.address:
        problem = _check_local_resources(run.spec)
        if problem:
            return SweepOutcome(ExitCode.INVALID, problem, results_uri=files.uri)

    trainable = make_trainable(session)
    started = time.monotonic()
    # Trials created ahead of a free slot: as many as run at once (Ray's default for a
    # wrapped search algorithm is 1, which would ask the autoscaler for one trial at a
    # time); few enough that the budget gate decides on each before it is created.
    os.environ.setdefault("TUNE_MAX_PENDING_TRIALS_PG", str(run.spec.max_concurrent_trials))
    try:
        tuner = make_tuner(session, trainable, restoring)
    except Exception as exc:  # Tune's own state, unreadable: say which and what to do
        if not restoring:
            raise
        return SweepOutcome(ExitCode.FAILED, restore_failed(session, exc), results_uri=files.uri)
    _graceful_sigterm()
    grid = tuner.fit()
    end = sweep_end(grid, files.trials(), run.spec, time.monotonic() - started, limits)

    verdict = sweep_verdict(end, run.spec)
    if not verdict.finished:
        return SweepOutcome(exit_code_for(verdict.phase), verdict.message, results_uri=files.uri)
    summary = summarise(run, end.trials, verdict, limits)
    say(f"{verdict.phase.value}: {verdict.message}")
    return publish(session, summary, end.trials)


def restore_failed(session: Session, exc: BaseException) -> str:
    """The message of a resume that Ray Tune refused: what, where, and the way out."""
    detail = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
    return (
        f"cannot resume sweep {session.run.name!r} from Ray Tune's state at "
        f"{session.files.store.uri_for(session.files.layout.experiment_prefix)} ({detail}); "
        "its trial records are intact. Run it again with --fresh to start over (earlier "
        "results move to archive/)"
    )


# ----------------------------------------------------------------------------- steps


def restore_or_archive(session: Session) -> tuple[bool, SweepOutcome | None]:
    """Whether Tune restores the experiment, and the outcome when this session ends here.

    ``--fresh`` drops Ray's state and archives earlier results; a run that cannot be
    restored archives them too. A restorable one continues its log and is checked
    (:func:`check_resume`): a changed spec is refused, a finished sweep reported.
    """
    run, files, say, experiment = session.run, session.files, session.say, session.experiment
    if run.fresh:
        drop_state(session)
        archive_previous(files, say)
    if not tune.Tuner.can_restore(experiment, storage_filesystem=session.fs):
        archive_previous(files, say)
        return False, None
    say.resume()
    early = check_resume(run, files, say)
    if early is not None or not session.in_store:
        return True, early
    problem = state_problem(files, say)
    if problem is None:
        return True, None
    if not files.trials():  # cut before any trial ran: nothing to resume, nothing to lose
        drop_state(session)
        archive_previous(files, say)
        return False, None
    return True, SweepOutcome(ExitCode.FAILED, problem, results_uri=files.uri)


def drop_state(session: Session) -> None:
    """Delete Ray Tune's experiment (a fresh start)."""
    if not session.in_store:
        if os.path.isdir(session.experiment):
            shutil.rmtree(session.experiment)
        return
    store = session.files.store
    if store.scheme == "file":
        path = store.local_path(session.files.layout.experiment_prefix)
        if path is not None and path.is_dir():
            shutil.rmtree(path)
        return
    drop_experiment(store, session.files.layout.experiment_prefix)


def check_resume(
    run: SweepRun, files: SweepFiles, say: Callable[[str], None]
) -> SweepOutcome | None:
    """Before resuming: refuse a changed spec; report a sweep that finished already.

    None: go on and resume. No Ray here.
    """
    stored = _stored_spec(files)
    if stored is not None and _spec_fingerprint(stored) != _spec_fingerprint(run.spec):
        return SweepOutcome(
            ExitCode.INVALID,
            f"the spec of sweep {run.name!r} changed since its earlier run at {files.uri}; "
            "run it with --fresh to start over (earlier results are kept in archive/), "
            "or give it another name",
            results_uri=files.uri,
        )
    try:
        done = files.summary()
    except StoreError:  # as an absent one: the sweep is resumed
        done = None
    if done is None:
        return None
    # Done already: report it as it is. Re-summarising would stamp today's commit on
    # evidence of trials an earlier commit ran.
    say(
        f"sweep {run.name!r} already finished at {done.finished_at}: "
        f"{done.message}; run it with --fresh to start over"
    )
    bundle = files.bundle_uri()
    return SweepOutcome(
        ExitCode.OK if done.phase is Phase.SUCCEEDED else ExitCode.FAILED,
        done.message or done.phase.value,
        done,
        files.uri,
        files.store.uri_for(files.layout.evidence_prefix) if bundle else None,
        bundle,
    )


def _stored_spec(files: SweepFiles) -> SweepSpec | None:
    """The spec an earlier run left; None when it left none. One that cannot be read
    ends this session with the store's error: there is nothing to compare a resume with."""
    seen = len(files.problems)
    stored = files.spec()
    if stored is None and len(files.problems) > seen:
        raise StoreError(files.problems[-1])
    return stored


def trial_context(session: Session) -> TrialContext:
    """What every trial gets besides its params: the validated spec, where to write."""
    spec = session.run.spec
    local = session.files.store.scheme == "file"
    return TrialContext(
        target=session.target,
        spec=spec,
        cpus=spec.resources.cpu,
        write_every_s=5.0 if local else 30.0,
        checkpoint_root=f"{session.root}/{CHECKPOINTS_DIR}" if local else None,
        env=dict(session.run.env),
    )


def make_trainable(session: Session) -> Any:
    """``train_trial`` with the trial context bound and the spec's resources per trial."""
    if session.run.spec.resources.spans_hosts():
        return multihost.make_trainable(trial_context(session))
    return tune.with_resources(
        tune.with_parameters(train_trial, context=trial_context(session)),
        trial_resources(session.run.spec),
    )


def make_tuner(session: Session, trainable: Any, restoring: bool) -> tune.Tuner:
    """The Tuner of this session: restored from its experiment, or new from the spec."""
    run, target, say, root = session.run, session.target, session.say, session.root
    spec = run.spec
    say(f"code: commit {commit_info().short}")  # per session: a resumed sweep may differ
    if restoring:
        say(f"resuming sweep {run.name!r} from {session.experiment}")
        return tune.Tuner.restore(
            session.experiment,
            trainable,
            resume_unfinished=True,
            resume_errored=False,
            storage_filesystem=session.fs,
        )
    monitor = SweepMonitor(
        target,
        spec.max_failed_trials,
        float(spec.budget.trial_timeout_seconds) if spec.budget.trial_timeout_seconds else None,
        echo=run.echo,
    )
    say(
        f"sweep {run.name!r}: {spec.planned_trials()} trials, {spec.algorithm.value} search, "
        f"{spec.scheduler.type.value} scheduler, {spec.max_concurrent_trials} at a time"
    )
    return tune.Tuner(
        trainable,
        param_space=search_space(spec),
        tune_config=tune_config(spec),
        run_config=tune.RunConfig(
            name=EXPERIMENT_DIR,
            storage_path=root,
            storage_filesystem=session.fs,
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
            stop=monitor,
            callbacks=[monitor],
            failure_config=tune.FailureConfig(max_failures=0),
            log_to_file=True,
            verbose=1,
        ),
    )


def grid_trial_ids(grid: Any) -> list[str]:
    """The id of every trial in Tune's ResultGrid (restored ones included)."""
    ids = []
    for index in range(len(grid)):
        result = grid[index]
        trial_id = (result.metrics or {}).get("trial_id") or Path(str(result.path)).name
        ids.append(str(trial_id))
    return ids


def sweep_end(
    grid: Any,
    records: list[TrialResult],
    spec: SweepSpec,
    elapsed: float,
    limits: SweepLimits | None = None,
) -> SweepEnd:
    """How Tune's run ended: this run's trial records (``records`` may hold earlier
    ones), how many trials it launched, whether some did not finish, whether time ran
    out, whether a sweep budget or the goal ended it."""
    ids = grid_trial_ids(grid)
    by_id = {r.trial_id: r for r in records}
    timeout = spec.budget.sweep_timeout_seconds
    trials = [by_id[i] for i in sorted(set(ids)) if i in by_id]
    goal = goal_trial(trials, spec)
    return SweepEnd(
        trials=trials,
        launched=len(ids),
        incomplete=grid.num_terminated + grid.num_errors < len(grid),
        timed_out=bool(timeout and elapsed >= timeout - 1),
        budget=limits.closed if limits is not None else None,
        goal_trial=goal.trial_id if goal is not None else None,
    )


def summarise(
    run: SweepRun,
    trials: Sequence[TrialResult],
    verdict: Verdict,
    limits: SweepLimits | None = None,
) -> SweepResult:
    """``summary.json`` of a finished sweep: its verdict and its trials, best first."""
    spec = run.spec
    best = best_trial(trials, spec.objective)
    starts = [t.started_at for t in trials if t.started_at is not None]
    seconds = limits.used_seconds(time.monotonic()) if limits is not None else None
    return SweepResult(
        sweep=run.name,
        namespace=run.namespace,
        phase=verdict.phase,
        message=verdict.message,
        reason=verdict.reason,
        accelerator_hours_used=sum(t.accelerator_hours for t in trials),
        wall_seconds_used=seconds,
        trials_planned=spec.planned_trials(),
        objective_metric=spec.objective.metric,
        objective_mode=spec.objective.mode,
        trials=ranked(trials, spec.objective),
        best_trial_id=best.trial_id if best else None,
        best_params=dict(best.params) if best else None,
        primary_score=best.primary_score if best else None,
        base_config=spec.trial_config({}).to_wire(),
        started_at=min(starts) if starts else None,
        finished_at=utcnow(),
    )


def publish(session: Session, summary: SweepResult, trials: Sequence[TrialResult]) -> SweepOutcome:
    """The evidence bundle, then ``summary.json``; the outcome of the finished sweep."""
    files = session.files
    evidence_uri, bundle_uri = publish_evidence(session, summary, trials)
    # Last: summary.json tells the operator and the CLI the sweep is over, so everything
    # it points to (trial records, the evidence bundle) is already in the store.
    summary_uri = files.write_summary(summary)
    session.say(f"results: {summary_uri}")
    return SweepOutcome(
        exit_code_for(summary.phase),
        summary.message or "",
        summary,
        files.uri,
        evidence_uri,
        bundle_uri,
    )


def _devices() -> list[str]:
    """What the trials could run on: the Ray cluster's resources."""
    have = ray.cluster_resources()  # type: ignore[no-untyped-call]
    parts = [f"{have[k]:g} {k}" for k in ("CPU", "GPU", "TPU") if have.get(k)]
    return [f"ray cluster: {', '.join(parts) or 'no resources'}"]


def publish_evidence(
    session: Session, summary: SweepResult, trials: Sequence[TrialResult]
) -> tuple[str | None, str | None]:
    """Write the finished sweep's evidence folder and zip, upload them; (folder, zip) URIs.

    A bundle that cannot be built is reported in the log, never the end of the sweep:
    the trial records and the summary are the results; the bundle is their evidence.
    """
    from tunix_rt.api.trainer import TrainerConfig
    from tunix_rt.train.backends import model_id
    from tunix_rt.train.data import dataset_info

    run, say = session.run, session.say
    store, layout = session.files.store, session.files.layout
    prefix = layout.evidence_prefix
    try:
        base = TrainerConfig.model_validate(summary.base_config)
        trial_files = {t.trial_id: store.read_bytes(layout.trial_key(t.trial_id)) for t in trials}
        started = min([session.started, *(t.started_at for t in trials if t.started_at)])
        ended = summary.finished_at or utcnow()
        facts = SweepRunFacts(
            spec=run.spec.to_wire(),
            config_path=run.spec_path or "inline",
            command=run.command or _default_command(),
            commit=commit_info(),
            model_id=model_id(base),
            dataset=dataset_info(base.dataset).model_dump(mode="json"),
            seed=base.seed,
            devices=_devices(),
            start_time=started,
            end_time=ended,
            wall_seconds=max((ended - started).total_seconds(), 0.0),
            storage_uri=store.uri,
            storage_prefix=prefix,
        )
        with tempfile.TemporaryDirectory(prefix="tunix-rt-sweep-") as tmp:
            folder = Path(tmp) / "evidence"
            say(f"evidence: commit {facts.commit.short}, {len(trial_files)} trial records")
            say.save()
            write_sweep_evidence(
                folder, summary=summary, trial_files=trial_files, log_text=say.text, facts=facts
            )
            published = publish_folder(store, folder, prefix, say=say)
    except Exception as exc:  # any failure here must not lose the results
        say(f"WARNING: the sweep's evidence bundle was not written: {type(exc).__name__}: {exc}")
        return None, None
    say(f"evidence bundle: {published.bundle_uri}")
    return store.uri_for(prefix), published.bundle_uri


def _default_command() -> list[str]:
    """This process's command line; the --spec-b64 blob is elided (the manifest's config
    holds the spec)."""
    argv = list(sys.argv) or ["tunix-rt"]
    head = Path(argv[0]).name
    command = ["python", "-m", "tunix_rt.tune"] if head == "__main__.py" else [head]
    for arg in argv[1:]:
        command.append("<spec: see config>" if command[-1] == "--spec-b64" else arg)
    return command


# ----------------------------------------------------------------------------- CLI


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tunix_rt.tune",
        description="Run a tunix-rt Sweep with Ray Tune: trial records and the summary go "
        "to the store as they happen. Rerunning an interrupted local sweep resumes it.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--spec", help="YAML/JSON file: a full Sweep manifest or a bare spec")
    source.add_argument("--spec-b64", help="base64 of the Sweep spec's wire JSON")
    parser.add_argument(
        "--source", help="the file the spec came from, recorded in the evidence manifest"
    )
    parser.add_argument("--storage", help="store URI (default: spec.storage)")
    parser.add_argument(
        "--namespace",
        help=f"namespace in store keys (default: manifest's, else {LOCAL_NAMESPACE!r})",
    )
    parser.add_argument("--name", help="sweep name (default: the manifest's metadata.name)")
    parser.add_argument("--address", help="Ray address, e.g. auto inside a Ray cluster")
    parser.add_argument("--ray-storage", help="folder for Ray's experiment state")
    parser.add_argument("--num-cpus", type=int, help="CPUs of the local Ray (default: all)")
    parser.add_argument(
        "--fresh", action="store_true", help="start over; earlier results move to archive/"
    )
    return parser.parse_args(argv)


def load_run(args: argparse.Namespace) -> SweepRun:
    doc: SweepDocument = decode_sweep(args.spec_b64) if args.spec_b64 else load_sweep(args.spec)
    name = args.name or doc.name
    if not name:
        raise ManifestError.of(
            args.spec or "--spec-b64", [("metadata.name", "a bare spec needs --name NAME")]
        )
    return SweepRun(
        spec=doc.spec,
        name=name,
        namespace=args.namespace or doc.namespace or LOCAL_NAMESPACE,
        storage=args.storage,
        address=args.address,
        ray_storage=args.ray_storage,
        fresh=args.fresh,
        num_cpus=args.num_cpus,
        spec_path=args.spec or args.source,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        run = load_run(args)
    except ManifestError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.INVALID
    try:
        outcome = run_sweep(run)
    except (StoreError, ManifestError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.FAILED
    finally:
        if ray.is_initialized() and not args.address:
            ray.shutdown()
    if outcome.exit_code != ExitCode.OK:
        print(f"[tunix-rt] {outcome.message}", file=sys.stderr, flush=True)
    return outcome.exit_code
