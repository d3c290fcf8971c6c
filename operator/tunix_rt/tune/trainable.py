"""The Ray Tune function trainable: one trial = one ``run_trial`` of the trainer.

It writes the trial's record to the store when it starts (Running, params), at eval
points and every few seconds while it trains, and the final record (Succeeded with
metrics, or Failed with the error) before it returns; every trainer report goes on to
Tune with ``tune.report`` so schedulers and search algorithms see it. The record keeps
the curve (every report) and the accelerator-hours, both carried over when an
interrupted trial resumes.

Checkpoints: with a ``file://`` store the trainer writes them in place
(``<sweep>/checkpoints/<id>``); with an object store it writes them to a local folder
that goes to Tune as a ``ray.tune.Checkpoint`` after each save, which Tune uploads under
the experiment (``<sweep>/ray/<id>/checkpoint_*``) and hands back to the resumed trial.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tunix_rt.api.sweep import SweepSpec
from tunix_rt.api.trainer import TrainerConfig
from tunix_rt.api.trial import TrialResult, TrialState, accelerator_hours
from tunix_rt.contract.layout import SweepFiles, SweepTarget
from tunix_rt.contract.numerics import pin_numerics
from tunix_rt.evidence.manifest import json_safe
from tunix_rt.notice import Preempted
from tunix_rt.scoring import PRIMARY_SCORE
from tunix_rt.storage import StoreError
from tunix_rt.tune.preemption import checkpoint_seen, refuse_retry, trainer_failed
from tunix_rt.tune.records import (
    HOURS_KEY,
    extend_curve,
    failed_record,
    numeric_metrics,
    plain,
    utcnow,
)
from tunix_rt.tune.trial_checkpoints import (
    CheckpointSender,
    local_checkpoint_dir,
    restore_checkpoint,
)


@dataclass(frozen=True)
class TrialContext:
    """What every trial of a sweep needs besides its params (sent once, via with_parameters).

    ``spec`` is the model the driver validated (it pickles): trials do not validate it again.
    """

    target: SweepTarget
    spec: SweepSpec
    cpus: float = 1.0
    write_every_s: float = 5.0
    checkpoint_root: str | None = None
    env: dict[str, str] = field(default_factory=dict)


COMPILE_CACHE_DIR = os.path.join(tempfile.gettempdir(), "tunix-rt-jax-cache")
COMPILE_CACHE_DEFAULTS = {
    "JAX_COMPILATION_CACHE_DIR": COMPILE_CACHE_DIR,
    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0.5",  # small ops: a compile beats a read
}
"""The trial workers' compile cache, as environment variables (each one a user sets wins)."""


def use_compile_cache() -> None:
    """JAX's persistent compilation cache for this trial (unless the environment sets one).

    Every trial worker process (one per concurrent trial, kept between trials of the
    built-in trainer: ``mapping.reuse_workers``) would compile the same train step and eval
    (3-5 s on CPU here, more on accelerators); with the cache the trials after the first
    load them (measured in benchmarks/README.md). Entries are keyed by JAX version,
    backend, flags and program, so a machine-wide folder is safe to share. An empty
    ``JAX_COMPILATION_CACHE_DIR`` turns it off. No effect once JAX is imported here.
    """
    for name, value in COMPILE_CACHE_DEFAULTS.items():
        os.environ.setdefault(name, value)


def limit_threads(cpus: float) -> None:
    """Keep a trial's JAX/BLAS threads within its CPU reservation.

    Two 1-CPU trials on a 2-core machine must not each spawn a thread per core. Never
    ``JAX_PLATFORMS``: on GPU/TPU nodes JAX still picks the accelerator. These variables
    cover BLAS/OpenMP; Eigen runs on one thread in every trial (``pin_numerics``: its
    thread count changes the numbers), and XLA's own CPU pools follow the affinity
    (:func:`size_cpu_pools`).
    """
    threads = max(1, int(cpus))
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, str(threads))


def size_cpu_pools(threads: int) -> None:
    """Start JAX's CPU backend with as many compute threads as the trial has CPUs.

    XLA's CPU runtime sizes its thread pools by the cores the process may run on when the
    backend starts (``sched_getaffinity``), whatever XLA_FLAGS say: measured here, a
    "1-CPU" trial ran every train step on two threads, so alone it used both cores and two
    side by side each got half (benchmarks/README.md). The affinity is narrowed while the
    backend starts and then given back to every thread: the pools stay small and the OS
    still runs the trial on whichever core is free (nothing is pinned). Only for trials
    without accelerators (it starts JAX's backends); no effect once JAX is imported.
    """
    if "jax" in sys.modules or not hasattr(os, "sched_getaffinity"):
        return
    allowed = os.sched_getaffinity(0)
    if threads >= len(allowed):
        return
    os.sched_setaffinity(0, set(sorted(allowed)[:threads]))
    try:
        import jax

        jax.devices()
    finally:
        for tid in os.listdir("/proc/self/task"):
            with contextlib.suppress(OSError):
                os.sched_setaffinity(int(tid), allowed)


def load_workload() -> Callable[..., Any]:
    """The trainer's ``run_trial``, imported in the trial's process: the driver never loads
    JAX or a backend."""
    from tunix_rt.train import run_trial

    return run_trial


class Reporter:
    """The trainer's ``report`` callback: forward to Tune, keep the record fresh.

    Every report to Tune carries the latest value of every metric seen so far, so a
    scheduler comparing ``loss`` and a searcher reading ``primary_score`` always find
    theirs (missing ones are simply absent until first reported).
    """

    def __init__(
        self,
        record: TrialResult,
        write: Callable[[TrialResult], object],
        tune_report: Callable[[dict[str, Any]], None],
        every_s: float,
        *,
        accelerators: float | None = None,
        checkpoints: CheckpointSender | None = None,
        checkpoint_dir: str | None = None,
    ) -> None:
        self.record = record
        self.write = write
        self.tune_report = tune_report
        self.every_s = every_s
        self.latest: dict[str, float] = {}
        self.started = time.monotonic()
        self.last_write = self.started
        self.reports = 0
        self.accelerators = accelerators
        """Devices held: each write adds their hours to the record's (None: not counted)."""
        self.base_hours = record.accelerator_hours
        self.checkpoints = checkpoints
        self.checkpoint_dir = checkpoints.directory if checkpoints else checkpoint_dir
        """Watched for new checkpoints: the record says which step a lost worker resumes from."""

    def hours(self) -> float:
        """The trial's accelerator-hours: earlier sessions' plus this one's so far."""
        if self.accelerators is None:
            return self.record.accelerator_hours
        elapsed = time.monotonic() - self.started
        return self.base_hours + accelerator_hours(self.accelerators, elapsed)

    def __call__(self, metrics: dict[str, float]) -> None:
        for key, value in metrics.items():
            value = plain(value)
            if isinstance(value, int | float) and not isinstance(value, bool):
                self.latest[key] = float(value)
        point = numeric_metrics(metrics)
        self.reports += 1
        self.record = self.record.model_copy(
            update={"curve": extend_curve(self.record.curve, point)}
        )
        eval_point = PRIMARY_SCORE in metrics
        checkpoint = self.checkpoints is not None and self.checkpoints.has_new()
        saved = False
        if self.checkpoints is None:  # in place: saved is kept (a sent one: once sent)
            seen = checkpoint_seen(self.record, self.checkpoint_dir, utcnow())
            saved, self.record = seen is not self.record, seen
        now = time.monotonic()
        if eval_point or checkpoint or saved or now - self.last_write >= self.every_s:
            self.record = self.refreshed()
            self.write(self.record)
            self.last_write = now
        # Written before reporting: Tune may stop the trial while report() blocks.
        out = self.tune_metrics()
        if self.accelerators is not None:
            out[HOURS_KEY] = self.hours()
        if checkpoint:
            assert self.checkpoints is not None
            self.checkpoints.send(out)
            # Tune holds it now: what a retried trial resumes from.
            self.record = checkpoint_seen(self.record, self.checkpoint_dir, utcnow())
            self.write(self.record)
        else:
            self.tune_report(out)

    def refreshed(self) -> TrialResult:
        """The record with the latest metrics, steps, score and hours."""
        return self.record.model_copy(
            update={
                "metrics": dict(self.latest),
                "steps": int(self.latest.get("step", self.record.steps)),
                "primary_score": self.latest.get(PRIMARY_SCORE),
                "accelerator_hours": self.hours(),
            }
        )

    def tune_metrics(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.latest)
        if "step" in out:
            out["step"] = int(out["step"])
        return out


def resumed_record(record: TrialResult, previous: TrialResult | None) -> TrialResult:
    """A trial starting again after an interruption (or a preemption) keeps its curve,
    its hours and its preemption counts."""
    if previous is None:
        return record.model_copy(update={"starts": 1})
    return record.model_copy(
        update={
            "curve": list(previous.curve),
            "accelerator_hours": previous.accelerator_hours,
            "starts": previous.starts + 1,
            "preemptions": previous.preemptions,
            "lost_steps": previous.lost_steps,
            "lost_accelerator_hours": previous.lost_accelerator_hours,
        }
    )


def train_trial(config: dict[str, Any], context: TrialContext) -> None:
    """Ray Tune function trainable (wrapped with ``tune.with_parameters(…, context=…)``)."""
    from ray import tune

    from tunix_rt.tune import pbt

    prepare_worker(context)
    trial_id = tune.get_context().get_trial_id()
    files = context.target.files()
    params = {name: plain(value) for name, value in config.items()}

    previous = previous_record(files, trial_id)
    if previous is not None and previous.state is TrialState.SUCCEEDED:
        # Finished in an earlier, interrupted session whose Tune state lagged behind:
        # report the stored result again instead of training twice.
        tune.report(replayed_metrics(previous))
        return
    if trainer_failed(previous):
        assert previous is not None
        raise refuse_retry(previous)  # Tune retries lost workers only (tune.preemption)

    sender = checkpoint_sender(context, trial_id, params)
    directory = trial_checkpoint_dir(context, trial_id, params, sender)
    record = resumed_record(
        running_record(context.target, trial_id, params, context.spec.trainer.backend),
        previous,
    )
    record = checkpoint_seen(record, directory, utcnow())  # the step it resumes from
    if isinstance(sender, pbt.ScheduleSender) and sender.schedule:
        record = record.model_copy(update={"schedule": sender.schedule})
    files.write_trial(record)
    started = time.monotonic()
    reporter = Reporter(
        record,
        files.write_trial,
        lambda m: tune.report(m),
        context.write_every_s,
        accelerators=context.spec.accelerators_per_trial(),
        checkpoints=sender,
        checkpoint_dir=directory,
    )
    try:
        result = run_workload(context, trial_id, params, reporter, sender)
    except Preempted:  # SIGTERM, checkpoint saved: still Running, Tune retries it from there
        if sender is not None and sender.has_new():
            sender.send(reporter.tune_metrics())  # to the store, for the retry
        files.write_trial(checkpoint_seen(reporter.refreshed(), directory, utcnow()))
        raise
    except Exception as exc:
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        files.write_trial(
            failed_record(reporter.refreshed(), detail).model_copy(
                update={"wall_seconds": time.monotonic() - started}
            )
        )
        raise

    final, metrics = final_record(reporter.refreshed(), result)
    if reporter.reports == 0 or reporter.latest.get(PRIMARY_SCORE) != result.primary_score:
        # The trainer's last report did not carry the final score: report it so that
        # the searcher and the result grid see what the record says.
        reporter.latest.update(metrics)
        files.write_trial(final)
        out = reporter.tune_metrics()
        out[HOURS_KEY] = final.accelerator_hours
        tune.report(out)
    else:
        files.write_trial(final)


def checkpoint_sender(
    context: TrialContext, trial_id: str, params: dict[str, Any]
) -> CheckpointSender | None:
    """For a sweep on an object store whose trainer checkpoints: the trial's local folder,
    filled with the checkpoint Tune kept (a resumed trial continues from it)."""
    from ray import tune

    from tunix_rt.tune import pbt

    if context.checkpoint_root is not None and not pbt.is_pbt(context.spec):
        return None  # under pbt, checkpoints always go through Tune (tune/pbt.py)
    if context.spec.trial_config(params).checkpoint_every <= 0:
        return None
    directory = local_checkpoint_dir(trial_id)
    restore_checkpoint(directory, tune.get_checkpoint)
    if pbt.is_pbt(context.spec):
        return pbt.ScheduleSender(directory, tune.report, trial_id, params)
    return CheckpointSender(directory, tune.report)


def prepare_worker(context: TrialContext) -> None:
    """The trial process's environment: the sweep's variables, compile cache, threads."""
    for key, value in context.env.items():
        os.environ.setdefault(key, value)
    pin_numerics()  # before size_cpu_pools starts JAX's backend
    use_compile_cache()
    limit_threads(context.cpus)
    resources = context.spec.resources
    builtin = context.spec.trainer.backend == "builtin"
    # Not for trials over several processes: JAX must join them (jax.distributed) before
    # its backend starts, and size_cpu_pools starts it.
    if builtin and not (resources.gpu or resources.tpu or resources.spans_hosts()):
        size_cpu_pools(max(1, int(context.cpus)))


def previous_record(files: SweepFiles, trial_id: str) -> TrialResult | None:
    """This trial's record from an earlier session; None when absent or unreadable.

    A store that cannot be read is no reason to skip training either: the trial trains
    (and its first write reports the store's error), as an absent record would.
    """
    try:
        return files.trial(trial_id)
    except StoreError:
        return None


def replayed_metrics(previous: TrialResult) -> dict[str, Any]:
    """What a trial that already succeeded reports to Tune again: its stored result."""
    again: dict[str, Any] = dict(previous.metrics)
    if previous.primary_score is not None:
        again[PRIMARY_SCORE] = previous.primary_score
    again["step"] = previous.steps
    return again


def running_record(
    target: SweepTarget, trial_id: str, params: dict[str, Any], backend: str | None = None
) -> TrialResult:
    return TrialResult(
        trial_id=trial_id,
        sweep=target.sweep,
        namespace=target.namespace,
        params=params,
        state=TrialState.RUNNING,
        started_at=utcnow(),
        backend=backend,
        worker=f"{socket.gethostname()}:{os.getpid()}",
    )


def trial_checkpoint_dir(
    context: TrialContext, trial_id: str, params: dict[str, Any], sender: CheckpointSender | None
) -> str | None:
    """The folder the trainer saves to: the sender's (object store) or the sweep's."""
    if sender is not None:
        return sender.directory
    return checkpoint_dir(context, trial_id, context.spec.trial_config(params))


def checkpoint_dir(context: TrialContext, trial_id: str, config: TrainerConfig) -> str | None:
    """Where the trial keeps its checkpoints (trainer.checkpointEvery > 0), if anywhere:
    they let a trial interrupted with its sweep continue where it was when it resumes."""
    if context.checkpoint_root and config.checkpoint_every > 0:
        return os.path.join(context.checkpoint_root, trial_id)
    return None


def run_workload(
    context: TrialContext,
    trial_id: str,
    params: dict[str, Any],
    reporter: Reporter,
    sender: CheckpointSender | None = None,
) -> Any:
    """Train the trial: the workload (the trainer by default) with the trial's config."""
    trainer_config = context.spec.trial_config(params)
    directory = sender.directory if sender else checkpoint_dir(context, trial_id, trainer_config)
    return load_workload()(
        trainer_config,
        report=reporter,
        checkpoint_dir=directory,
        log=lambda line: print(line, flush=True),
    )


def final_record(record: TrialResult, result: Any) -> tuple[TrialResult, dict[str, float]]:
    """The Succeeded record from the workload's result, and the metrics it carries."""
    metrics = {k: float(v) for k, v in dict(result.metrics).items()}
    score = result.primary_score
    if score is not None:
        metrics[PRIMARY_SCORE] = float(score)
    metrics["step"] = float(result.steps)
    final = record.model_copy(
        update={
            "state": TrialState.SUCCEEDED,
            "metrics": metrics,
            "primary_score": score,
            "steps": int(result.steps),
            "wall_seconds": float(result.wall_seconds),
            "finished_at": utcnow(),
            "backend": getattr(result, "backend", None) or record.backend,
            "model_source": _model_source(getattr(result, "model_source", None)),
        }
    )
    return final, metrics


def _model_source(source: Any) -> dict[str, Any] | None:
    """A backend's ModelSource as the record's plain JSON (None when it gave none)."""
    if source is None:
        return None
    dumped = source.model_dump(mode="json") if hasattr(source, "model_dump") else dict(source)
    safe: dict[str, Any] = json_safe(dumped)
    return safe or None
