"""THE rehearsal run: train and evaluate a plan's config, leave its evidence in the store.

    plan  = plan_from_file("rehearsal.yaml")            # or plan_from_spec(spec, ...)
    result = run_rehearsal(plan)                        # trains (JAX), writes, packages, uploads
    result.primary_score, result.evidence_uri, result.bundle_uri, result.to_status()

Steps: preflight of the store → ``tunix_rt.train.run_trial`` with its log captured (tee'd
to kaggle_output_log.txt with timestamps, :mod:`~tunix_rt.rehearsal.run_log`) → the
evidence folder and its zip (:mod:`~tunix_rt.rehearsal.evidence_folder`) → upload of all
of it to ``<storage>/<namespace>/rehearsals/<name>/``.

``spec.timeoutSeconds`` (or ``--timeout-seconds``) becomes the trainer's deadline,
counted from the start of the run. A run that fails (the trainer raised, the deadline
passed, bad evidence, a failed upload) uploads its log and failure.json to
``<prefix>/failed/<UTC stamp>/`` (:mod:`~tunix_rt.rehearsal.run_failure`), leaves an
earlier good bundle at the prefix alone, and raises RehearsalError saying where the log
went. JAX is imported only when a run starts (``tunix_rt.train``).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tunix_rt.contract.file_names import (
    EVAL_SUMMARY_JSON,
    FAILED_DIR,
    KAGGLE_OUTPUT_LOG_TXT,
    RUN_MANIFEST_JSON,
    SHA256SUMS,
)
from tunix_rt.evidence import commit_info
from tunix_rt.evidence.failure import BAD_DATASET_REASON
from tunix_rt.evidence.manifest import canonical_json
from tunix_rt.evidence.upload import publish_folder
from tunix_rt.rehearsal.attempt import Attempt, seconds
from tunix_rt.rehearsal.errors import RehearsalError
from tunix_rt.rehearsal.evidence_folder import package, score, write_up
from tunix_rt.rehearsal.plan import RehearsalPlan
from tunix_rt.rehearsal.result import RehearsalResult
from tunix_rt.rehearsal.run_failure import failure_error, record_failure, training_error
from tunix_rt.rehearsal.run_log import RunLog, capture_logging, stderr_echo
from tunix_rt.storage import Store, StoreError, redact_uri

Trainer = Callable[..., Any]
"""``run_trial(config, *, report=None, checkpoint_dir=None, log=None[, deadline]) ->
TrainResult``; ``deadline`` (a ``time.monotonic()`` instant) is passed only when the run
has a timeout, and a trainer that stops at it raises a TimeoutError (``step`` attribute:
the steps reached), as ``tunix_rt.train.TrainingTimeout`` does."""


def _prepare_dir(out_dir: Path) -> None:
    """An empty folder for the evidence; a previous evidence folder there is replaced."""
    if out_dir.is_symlink():
        raise RehearsalError(f"refusing to write evidence through symlink {out_dir}")
    if out_dir.exists():
        if not out_dir.is_dir():
            raise RehearsalError(f"{out_dir} exists and is not a folder")
        entries = list(out_dir.iterdir())
        if entries:
            markers = {RUN_MANIFEST_JSON, KAGGLE_OUTPUT_LOG_TXT, SHA256SUMS, EVAL_SUMMARY_JSON}
            if not any(e.name in markers for e in entries):
                raise RehearsalError(
                    f"refusing to write evidence into {out_dir}: it holds other files"
                )
            shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)


def default_command() -> list[str]:
    argv = list(sys.argv) or ["tunix-rt"]
    first = Path(argv[0]).name
    if first == "__main__.py":
        return ["python", "-m", "tunix_rt.rehearsal", *argv[1:]]
    return [first, *argv[1:]]


@contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """SIGTERM (a stopped or deleted RayJob, ``kill``) ends the run like Ctrl-C does: as a
    failure whose log and failure.json are uploaded before the process exits."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def check_user_dataset(plan: RehearsalPlan) -> None:
    """A bad user dataset fails the run in seconds, before any training, naming the field
    (it would otherwise surface as a training failure, after the model compiled)."""
    from tunix_rt.train.data import check_dataset

    try:
        check_dataset(plan.config)
    except (ValueError, OSError) as exc:
        raise RehearsalError(
            f"rehearsal {plan.name}: bad dataset, nothing trained: {exc}", reason=BAD_DATASET_REASON
        ) from None


def run_rehearsal(
    plan: RehearsalPlan,
    *,
    out_dir: str | Path | None = None,
    command: list[str] | None = None,
    echo: Callable[[str], None] | None = stderr_echo,
    trainer: Trainer | None = None,
    cwd: Path | None = None,
    store: Store | None = None,
) -> RehearsalResult:
    """Train, evaluate, write the evidence folder, package it, upload it; return the result.

    ``out_dir``: keep the evidence folder there (else a temp folder, removed at the end;
    with file:// storage the store itself holds the folder). ``trainer`` replaces
    ``tunix_rt.train.run_trial`` (tests). ``plan.timeout_seconds`` bounds the run from
    here on (the trainer's deadline).

    A run that fails raises RehearsalError after uploading its log and failure.json to
    ``<prefix>/failed/<UTC stamp>/``; the error says where they went (or, when that upload
    failed too, why, and where the log is kept locally).
    """
    store = store or Store(plan.storage)
    preflight(plan, store)
    if trainer is None:
        check_user_dataset(plan)
    # --out naming the store's own folder (file://) is built elsewhere too, so that a
    # failed run cannot remove the good evidence there: only a complete bundle replaces it.
    keep = out_dir is not None and not _is_store_folder(store, plan.prefix, Path(out_dir))
    folder = (
        Path(out_dir)
        if keep and out_dir is not None
        else Path(tempfile.mkdtemp(prefix="tunix-rt-"))
    )
    _prepare_dir(folder)
    clock = time.monotonic()
    attempt = Attempt(
        started=datetime.now(UTC),
        clock=clock,
        deadline=clock + plan.timeout_seconds if plan.timeout_seconds is not None else None,
        commit=commit_info(cwd),  # the code as it is when the run starts (it runs that code)
        config_digest=hashlib.sha256(canonical_json(plan.config.to_wire())).hexdigest(),
    )
    remove = not keep
    try:
        return _run(plan, folder, keep, command or default_command(), echo, trainer, store, attempt)
    except (Exception, KeyboardInterrupt) as exc:  # Ctrl-C, SIGTERM (stopped): log it too
        error = failure_error(plan, exc, attempt.step)
        try:
            located = record_failure(plan, store, folder, attempt, error, exc, echo)
        except Exception as bug:  # never hide the run's own error behind this one
            located = RehearsalError(
                f"{error} (recording the failure failed: {type(bug).__name__}: {bug})",
                reason=error.reason,
                step=error.step,
            )
        if located.local_log is not None:
            remove = False  # the only copy of the log
        raise located from exc
    finally:
        if remove:
            shutil.rmtree(folder, ignore_errors=True)


STORE_UNAVAILABLE_REASON = "StoreUnavailable"
"""The reason of a rehearsal whose store could not be written before it started."""


def preflight(plan: RehearsalPlan, store: Store) -> None:
    """Before any training: the store takes a probe object (written, then deleted) at
    the rehearsal's prefix, or the run fails at once with reason StoreUnavailable, the
    URI and the cause (credentials, bucket, permission) named. Nothing is uploaded then:
    the store is what failed."""
    try:
        store.probe(plan.prefix)
    except StoreError as exc:
        raise RehearsalError(
            f"rehearsal {plan.name}: preflight failed, nothing ran: {exc}",
            reason=STORE_UNAVAILABLE_REASON,
        ) from exc


def _is_store_folder(store: Store, prefix: str, out_dir: Path) -> bool:
    target = store.local_path(prefix)
    return target is not None and target.resolve() == out_dir.resolve()


def _run(
    plan: RehearsalPlan,
    folder: Path,
    keep: bool,
    command: list[str],
    echo: Callable[[str], None] | None,
    trainer: Trainer | None,
    store: Store,
    attempt: Attempt,
) -> RehearsalResult:
    """The steps of one run: log the header, train, score, write the evidence (all in the
    run log), then package, verify and publish it."""
    log = RunLog(folder / KAGGLE_OUTPUT_LOG_TXT, echo)
    try:
        with capture_logging(log):
            _log_header(log, plan, store, command, attempt)
            outcome = _train(plan, trainer, log, attempt)
            evidence = score(plan, outcome, log, attempt)
            write_up(plan, folder, store, command, attempt, outcome, evidence)
            log(
                f"evidence: commit {attempt.commit.short}, primary_score {evidence.score}, "
                f"files {sorted(p.name for p in folder.iterdir() if p.is_file())}"
            )
            log(f"done in {evidence.wall:.1f}s; the zip and the upload follow (see the result)")
    finally:
        log.close()
    bundle = package(plan, folder)
    say = echo or (lambda _line: None)
    published = publish_folder(
        store, folder, plan.prefix, keep=(FAILED_DIR,), archive=True, say=say
    )
    return RehearsalResult(
        name=plan.name,
        namespace=plan.namespace,
        primary_score=evidence.score,
        metrics=evidence.summary["metrics"],
        steps=evidence.steps,
        wall_seconds=round(evidence.wall, 3),
        evidence_uri=store.uri_for(plan.prefix),
        bundle_uri=published.bundle_uri,
        bundle_name=bundle.name if bundle else None,
        evidence_files=published.uris,
        log_uri=store.uri_for(plan.layout.log_key),
        local_dir=str(folder.resolve()) if keep else _local_store_dir(store, plan.prefix),
        source_sweep=plan.source_sweep,
        source_trial=plan.source_trial,
        params=plan.source_params,
        config_sha256=evidence.manifest["config_sha256"],
        commit_sha=evidence.manifest["commit_sha"],
        start_time=attempt.started,
        completion_time=evidence.finished,
    )


def _log_header(
    log: RunLog, plan: RehearsalPlan, store: Store, command: list[str], attempt: Attempt
) -> None:
    """What runs, where, from which code and config."""
    log(f"tunix-rt rehearsal {plan.name} (namespace {plan.namespace})")
    log(f"command: {' '.join(command)}")
    log(f"storage: {redact_uri(store.uri)} prefix {plan.prefix}")
    log(f"code: commit {attempt.commit.short} ({attempt.commit.source})")
    log(f"config: {plan.config_path} sha256 {attempt.config_digest}")
    if plan.timeout_seconds is not None:
        log(f"timeout: {plan.timeout_field} {seconds(plan.timeout_seconds)} s")
    if plan.source_sweep:
        log(f"promoted from sweep {plan.source_sweep} trial {plan.source_trial}")
    for note in plan.notes:
        log(note)
    log(f"trainer config: {json.dumps(plan.config.to_wire(), sort_keys=True)}")


def _train(plan: RehearsalPlan, trainer: Trainer | None, log: RunLog, attempt: Attempt) -> Any:
    """The trainer's outcome; its failure (the deadline, or anything it raised) is logged
    and raised as a RehearsalError."""
    run_trial: Trainer = trainer or importlib.import_module("tunix_rt.train").run_trial
    limit = {} if attempt.deadline is None else {"deadline": attempt.deadline}
    try:
        return run_trial(plan.config, report=attempt.report, checkpoint_dir=None, log=log, **limit)
    except Exception as exc:
        raise training_error(plan, exc, log, attempt) from exc


def _local_store_dir(store: Store, prefix: str) -> str | None:
    path = store.local_path(prefix)
    return str(path) if path is not None else None
