"""The Tune driver's session: a Sweep run (or resumed) with Ray Tune, step by step.

A :class:`~tunix_rt.tune.session.Session` of named steps: preflight, restore-or-archive
(:mod:`tunix_rt.tune.resume`), open the session (``sessions.json``, budgets), make the
``Tuner`` (:mod:`tunix_rt.tune.mapping`, its hooks :mod:`tunix_rt.tune.hooks`), run it,
the verdict, publish (:mod:`tunix_rt.tune.publish`).

Local runs (no ``--address``) start a Ray on this machine; with ``--address auto`` the
same code joins the Ray cluster it runs in (the operator's RayJob). Ray's own
experiment (its state, the searcher's, each trial's ``progress.csv`` / ``result.json`` /
TensorBoard events and, on object stores, its checkpoints) lives at
``<store>/<ns>/<sweep>/ray`` on every store (object stores through the store's own
filesystem, :mod:`tunix_rt.tune.durable`), so any later run, a new RayJob included,
resumes it (``Tuner.restore``); ``--ray-storage`` puts it elsewhere.

Sweep budgets (``budget.acceleratorHours``, ``budget.wallClockSeconds``, across
sessions) and ``objective.goal`` are enforced here (:mod:`tunix_rt.tune.budget`, through
the hooks): a gate on the search algorithm starts no trial that would pass a cap, the
stopper stops running trials at a cap or once a trial reaches the goal.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import time
from typing import Any

import ray
from ray import tune

from tunix_rt.api.sweep import SweepSpec
from tunix_rt.api.trial_shape import TRIAL_DRIVER_RESOURCE, TRIAL_DRIVER_SLOTS
from tunix_rt.contract.exits import ExitCode, exit_code_for
from tunix_rt.contract.file_names import CHECKPOINTS_DIR, EXPERIMENT_DIR
from tunix_rt.contract.layout import SweepFiles, SweepTarget
from tunix_rt.contract.phases import sweep_verdict
from tunix_rt.evidence import commit_info
from tunix_rt.notice import RAY_HOOK, RAY_HOOK_ENV
from tunix_rt.storage import Store, StoreError
from tunix_rt.tune import multihost
from tunix_rt.tune.budget import SweepLimits
from tunix_rt.tune.context import SessionContext
from tunix_rt.tune.durable import SessionLedger
from tunix_rt.tune.hooks import SweepMonitor, attach
from tunix_rt.tune.mapping import search_space, trial_resources, tune_config
from tunix_rt.tune.pbt import checkpoints_kept
from tunix_rt.tune.preemption import MAX_PREEMPTIONS
from tunix_rt.tune.publish import publish, summarise, sweep_end
from tunix_rt.tune.records import utcnow
from tunix_rt.tune.resume import restore_failed, restore_or_archive
from tunix_rt.tune.session import Session, SweepOutcome, SweepRun, experiment_fs, experiment_root
from tunix_rt.tune.sweep_log import SweepLog
from tunix_rt.tune.trainable import TrialContext, train_trial
from tunix_rt.tune.warm_search import WarmStart
from tunix_rt.tune.warm_start import prepare as prepare_warm_start


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
    os.environ.setdefault(RAY_HOOK_ENV, RAY_HOOK)  # SIGTERM checkpoints (tunix_rt.notice)
    os.environ.setdefault(WORKER_NICENESS_ENV, "0")
    for attempt in range(1, RAY_START_ATTEMPTS + 1):
        try:
            ray.init(
                num_cpus=run.num_cpus or os.cpu_count() or 1,
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.WARNING,
                object_store_memory=300 * 1024 * 1024,
                resources={TRIAL_DRIVER_RESOURCE: TRIAL_DRIVER_SLOTS},  # multi-host drivers
            )
            return
        except Exception as exc:  # Ray raises a bare Exception for this
            if "timed out during startup" not in str(exc) or attempt == RAY_START_ATTEMPTS:
                raise
            ray.shutdown()
            print(
                f"Ray's node did not register within Ray's fixed 30 s (a busy machine); "
                f"starting it again ({attempt + 1}/{RAY_START_ATTEMPTS})",
                file=sys.stderr,
                flush=True,
            )


WORKER_NICENESS_ENV = "RAY_worker_niceness"
"""Local Ray starts its workers at nice 15 (Ray's default), so beside any busy process at
normal priority the trials got about 3% of a core and a sweep barely moved (found running
the test suite beside a CPU hog). Local trials run at normal priority; set the variable
to keep Ray's default."""

RAY_START_ATTEMPTS = 3
"""Local Ray waits a fixed 30 s for its raylet to register (ray/_private/node.py); on a
loaded machine that is not enough, and a second start usually is."""


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
    # them are expected (see ``mapping._OptunaSearch``).
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


def entrypoint_problem(run: SweepRun) -> str | None:
    """Why a ``backend: python`` entrypoint cannot be imported here (None: it can, or the
    trainer is built in): found before Ray starts, not by the first trials. Only for a
    local run, whose trials import it from this machine's PYTHONPATH; on a cluster the
    trial image may hold a package the driver's lacks."""
    trainer = run.spec.trainer
    if run.address or trainer.backend != "python" or not trainer.entrypoint:
        return None
    from tunix_rt.train.backends.python_code import EntrypointError, load_entrypoint

    try:
        load_entrypoint(trainer.entrypoint)
    except EntrypointError as exc:
        return str(exc)
    return None


def run_sweep(run: SweepRun) -> SweepOutcome:
    """Run (or resume) a sweep to the end; write every trial record and the summary."""
    store = Store(run.storage_uri)
    target = SweepTarget(store.uri, run.namespace, run.name)
    files = target.files(store)
    try:  # preflight: a store that cannot be written fails the sweep before Ray starts
        store.probe(target.layout.prefix)
    except StoreError as exc:
        return SweepOutcome(ExitCode.FAILED, f"preflight failed, nothing ran: {exc}")
    problem = dataset_problem(run.spec)
    if problem:
        outcome = SweepOutcome(ExitCode.INVALID, f"bad dataset, nothing ran: {problem}")
        return _ended_early(files, outcome)
    problem = entrypoint_problem(run)
    if problem:
        outcome = SweepOutcome(ExitCode.INVALID, f"{problem}; nothing ran")
        return _ended_early(files, outcome)
    say = SweepLog(files, echo=run.echo)
    root, fs = experiment_root(run, store, target), experiment_fs(run, store)
    session = Session(run, target, files, say, root, utcnow(), fs)
    try:
        return _run_sweep(session)
    finally:
        say.save()


def _ledger(files: SweepFiles) -> SessionLedger:
    """This session's entry in ``sessions.json`` (a sign of life every 5 s locally, 30 s
    on an object store)."""
    return SessionLedger(files, every_s=5.0 if files.store.scheme == "file" else 30.0)


def _ended_early(files: SweepFiles, outcome: SweepOutcome) -> SweepOutcome:
    """A session that ends before it runs Tune, without a verdict, is in ``sessions.json``
    too, ended: what reads the ledger (the operator, ``tunix-rt sweep show``) learns how
    and why from it. A sweep that had finished keeps its ledger as it was."""
    if outcome.summary is None:
        ledger = _ledger(files)
        ledger.open()
        ledger.close(outcome.exit_code, outcome.message)
    return outcome


def _open_session(session: Session) -> SessionContext:
    """This session in ``sessions.json``, and its limits seeded from earlier sessions
    (their wall seconds, the trial records' hours): what the hooks in Tune's loop use."""
    ledger = _ledger(session.files)
    earlier = ledger.open()
    limits = SweepLimits.seeded(session.run.spec, time.monotonic(), session.files.trials(), earlier)
    return SessionContext(session.say, limits, ledger)


def _run_sweep(session: Session) -> SweepOutcome:
    """The steps of one driver session, each a function of its own."""
    run, files = session.run, session.files
    _sweep_env()
    restoring, early = restore_or_archive(session)
    if early is not None:
        return _ended_early(files, early)
    warm = prepare_warm_start(session, restoring)
    if isinstance(warm, SweepOutcome):
        return _ended_early(files, warm)
    files.write_spec(run.spec)
    context = _open_session(session)
    try:
        outcome = _tune(session, restoring, context, warm)
    except BaseException as exc:  # recorded, then raised as before
        # Ctrl-C is an interruption (resumable); anything else ends the sweep as failed,
        # so that the operator does not start the same crash again.
        code = ExitCode.INTERRUPTED if isinstance(exc, KeyboardInterrupt) else ExitCode.FAILED
        context.ledger.close(code, f"{type(exc).__name__}: {exc}"[:500])
        raise
    context.ledger.close(outcome.exit_code, outcome.message)
    return outcome


def _tune(
    session: Session, restoring: bool, context: SessionContext, warm: WarmStart | None = None
) -> SweepOutcome:
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
        tuner = make_tuner(session, trainable, restoring, context, warm)
    except Exception as exc:  # Tune's own state, unreadable: say which and what to do
        if not restoring:
            raise
        return SweepOutcome(ExitCode.FAILED, restore_failed(session, exc), results_uri=files.uri)
    _graceful_sigterm()
    grid = tuner.fit()
    limits = context.limits
    end = sweep_end(grid, files.trials(), run.spec, time.monotonic() - started, limits, warm)
    unreadable = [
        f"{k.rsplit('/', 1)[-1]}: {why}" for k, why in sorted(files.damaged_trials.items())
    ]
    for line in unreadable:
        say(f"WARNING: trial record {line}")

    verdict = sweep_verdict(end, run.spec)
    if not verdict.finished:
        return SweepOutcome(exit_code_for(verdict.phase), verdict.message, results_uri=files.uri)
    summary = summarise(run, end.trials, verdict, limits, unreadable, warm)
    say(f"{verdict.phase.value}: {verdict.message}")
    return publish(session, summary, end.trials, warm)


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


def make_tuner(
    session: Session,
    trainable: Any,
    restoring: bool,
    context: SessionContext,
    warm: WarmStart | None = None,
) -> tune.Tuner:
    """The Tuner of this session, its hooks given the session's context: restored from
    its experiment (the searcher with a warm start's trials in it), or new from the spec
    (a warm start's trials fed to the searcher)."""
    session.say(f"code: commit {commit_info().short}")  # per session: a resumed sweep may differ
    if restoring:
        tuner = _restored_tuner(session, trainable)
    else:
        tuner = _new_tuner(session, trainable, warm)
    attach(tuner, context)
    return tuner


def _restored_tuner(session: Session, trainable: Any) -> tune.Tuner:
    """The Tuner of an earlier session, from its experiment (hooks and search state
    included)."""
    session.say(f"resuming sweep {session.run.name!r} from {session.experiment}")
    return tune.Tuner.restore(
        session.experiment,
        trainable,
        resume_unfinished=True,
        resume_errored=False,
        storage_filesystem=session.fs,
    )


def _new_tuner(session: Session, trainable: Any, warm: WarmStart | None = None) -> tune.Tuner:
    """A Tuner made from the spec (:mod:`tunix_rt.tune.mapping`)."""
    run, target, say, root = session.run, session.target, session.say, session.root
    spec = run.spec
    monitor = SweepMonitor(
        target,
        spec.max_failed_trials,
        float(spec.budget.trial_timeout_seconds) if spec.budget.trial_timeout_seconds else None,
        echo=run.echo,
    )
    planned = warm.planned() if warm is not None else spec.planned_trials()
    say(
        f"sweep {run.name!r}: {planned} trials, {spec.algorithm.value} search, "
        f"{spec.scheduler.type.value} scheduler, {spec.max_concurrent_trials} at a time"
    )
    return tune.Tuner(
        trainable,
        param_space=search_space(spec),
        tune_config=tune_config(spec, warm),
        run_config=tune.RunConfig(
            name=EXPERIMENT_DIR,
            storage_path=root,
            storage_filesystem=session.fs,
            checkpoint_config=tune.CheckpointConfig(num_to_keep=checkpoints_kept(spec)),
            stop=monitor,
            callbacks=[monitor],
            # Lost workers only: a trainer error is not retried (tune.preemption).
            failure_config=tune.FailureConfig(max_failures=MAX_PREEMPTIONS),
            log_to_file=True,
            verbose=1,
        ),
    )
