"""A failed attempt: the reason that classifies it, and what it leaves behind (the end of
its log and failure.json, uploaded to ``<prefix>/failed/<UTC stamp>/``)."""

from __future__ import annotations

import traceback
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path

from tunix_rt.contract.file_names import FAILURE_JSON, KAGGLE_OUTPUT_LOG_TXT
from tunix_rt.evidence import ChecksumError, EvidenceError, PackageError
from tunix_rt.evidence.failure import (
    BAD_EVIDENCE_REASON,
    ERROR_REASON,
    INTERRUPTED_REASON,
    TIMEOUT_REASON,
    TRAINING_FAILED_REASON,
    UPLOAD_FAILED_REASON,
    RehearsalFailure,
    failure_schema_errors,
    upload_failure,
)
from tunix_rt.rehearsal.attempt import Attempt, is_timeout, timeout_message
from tunix_rt.rehearsal.errors import RehearsalError
from tunix_rt.rehearsal.plan import RehearsalPlan
from tunix_rt.rehearsal.run_log import RunLog
from tunix_rt.storage import Store, StoreError


def training_error(
    plan: RehearsalPlan, exc: Exception, log: RunLog, attempt: Attempt
) -> RehearsalError:
    """Log why training stopped; the error classifies it (TrainingTimeout or TrainingFailed)."""
    reached = getattr(exc, "step", None)
    if isinstance(reached, int) and not isinstance(reached, bool):
        attempt.step = reached
    attempt.failure_logged = True
    if is_timeout(exc, attempt):
        done = bool(getattr(exc, "before_eval", False))
        why = timeout_message(plan, attempt.step, attempt.elapsed(), done=done)
        log(f"FAILED: {why}")
        return RehearsalError(
            f"rehearsal {plan.name}: {why}", reason=TIMEOUT_REASON, step=attempt.step
        )
    log(f"FAILED: training raised {type(exc).__name__}: {exc}")
    log("".join(traceback.format_exception(exc)).rstrip())
    return RehearsalError(
        f"rehearsal {plan.name}: training failed: {type(exc).__name__}: {exc}",
        reason=TRAINING_FAILED_REASON,
        step=attempt.step,
    )


def failure_error(
    plan: RehearsalPlan, exc: BaseException, step: int | None = None
) -> RehearsalError:
    """The RehearsalError a failed run reports (its reason classifies the failure)."""
    if isinstance(exc, RehearsalError):
        return exc
    if isinstance(exc, KeyboardInterrupt):
        where = f"at step {step} of {plan.config.max_steps}" if step is not None else "early"
        return RehearsalError(
            f"rehearsal {plan.name}: interrupted {where} (Ctrl-C, or SIGTERM: the RayJob "
            "was stopped or deleted); run it again to start over",
            reason=INTERRUPTED_REASON,
            step=step,
        )
    if isinstance(exc, EvidenceError | PackageError | ChecksumError):
        return RehearsalError(
            f"rehearsal {plan.name}: bad evidence: {exc}", reason=BAD_EVIDENCE_REASON
        )
    if isinstance(exc, StoreError):
        return RehearsalError(
            f"rehearsal {plan.name}: uploading the evidence failed: {exc}",
            reason=UPLOAD_FAILED_REASON,
        )
    return RehearsalError(f"rehearsal {plan.name}: {type(exc).__name__}: {exc}")


def record_failure(
    plan: RehearsalPlan,
    store: Store,
    folder: Path,
    attempt: Attempt,
    error: RehearsalError,
    exc: BaseException,
    echo: Callable[[str], None] | None,
) -> RehearsalError:
    """Finish the log, upload it with failure.json to failed/<stamp>/, and return the
    error to raise: the same message plus where the log went (or why it did not)."""
    ended = datetime.now(UTC)
    log_path = folder / KAGGLE_OUTPUT_LOG_TXT
    message = str(error)
    prefix = f"rehearsal {plan.name}: "
    core = message[len(prefix) :] if message.startswith(prefix) else message
    failed_uri = store.uri_for(plan.layout.failed_prefix)
    _finish_failed_log(log_path, echo, attempt, error, exc, core, failed_uri)
    failure = _failure_record(plan, attempt, error, exc, core, ended)
    problems = failure_schema_errors(failure.document())
    if problems:  # a bug here must not hide the run's own error
        _say(echo, f"WARNING: {FAILURE_JSON} does not match its schema: {problems}")
    with suppress(OSError):  # the local folder's copy (kept with --out)
        (folder / FAILURE_JSON).write_bytes(failure.to_json())
    try:
        uploaded = upload_failure(store, failure, log_path)
    except (StoreError, OSError) as up:
        kept = str(log_path.resolve()) if log_path.is_file() else None
        where = f"; it is kept at {kept}" if kept else ""
        located = RehearsalError(
            f"{message} (the failure log could not be uploaded to {failed_uri}/: {up}{where})",
            reason=error.reason,
            step=failure.step,
        )
        located.local_log = kept
        return located
    _say(echo, f"failure log uploaded to {uploaded.folder_uri}/")
    located = RehearsalError(
        f"{message} (log: {uploaded.log_uri or uploaded.failure_uri})",
        reason=error.reason,
        step=failure.step,
    )
    located.log_uri = uploaded.log_uri
    located.failure_uri = uploaded.failure_uri
    return located


def _finish_failed_log(
    log_path: Path,
    echo: Callable[[str], None] | None,
    attempt: Attempt,
    error: RehearsalError,
    exc: BaseException,
    core: str,
    failed_uri: str,
) -> None:
    """The failed run's last log lines: why (unless the run said it), where the log goes."""
    with suppress(OSError):  # the folder is gone or read-only: failure.json still goes up
        tail = RunLog(log_path, echo, append=True)
        try:
            if not attempt.failure_logged:
                tail(f"FAILED: {core}")
                if error.reason == ERROR_REASON and not isinstance(exc, RehearsalError):
                    tail("".join(traceback.format_exception(exc)).rstrip())  # a bug: where
            tail(f"uploading this log and {FAILURE_JSON} to {failed_uri}/")
        finally:
            tail.close()


def _failure_record(
    plan: RehearsalPlan,
    attempt: Attempt,
    error: RehearsalError,
    exc: BaseException,
    core: str,
    ended: datetime,
) -> RehearsalFailure:
    """failure.json of a failed attempt."""
    root = exc.__cause__ if isinstance(exc, RehearsalError) and exc.__cause__ else exc
    source = (
        {"sweep": plan.source_sweep, "trial": plan.source_trial}
        if (plan.source_sweep or plan.source_trial)
        else None
    )
    return RehearsalFailure(
        run_name=plan.name,
        namespace=plan.namespace,
        reason=error.reason,
        message=core,
        error_type=type(root).__name__,
        step=error.step if error.step is not None else attempt.step,
        max_steps=plan.config.max_steps,
        timeout_seconds=plan.timeout_seconds,
        start_time=attempt.started,
        end_time=ended,
        wall_seconds=round(attempt.elapsed(), 3),
        commit_sha=attempt.commit.sha,
        commit_dirty=attempt.commit.dirty,
        config_path=plan.config_path,
        config_sha256=attempt.config_digest,
        source=source,
    )


def _say(echo: Callable[[str], None] | None, line: str) -> None:
    if echo is not None:
        echo(line)
