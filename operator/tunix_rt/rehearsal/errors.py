"""The error a rehearsal raises, and the exit status it means (one place for both)."""

from __future__ import annotations

from tunix_rt.contract.exits import ExitCode
from tunix_rt.evidence.failure import ERROR_REASON, INTERRUPTED_REASON


class RehearsalError(RuntimeError):
    """The rehearsal cannot run or did not finish; the message says why and where.

    For a run that started and failed: ``reason`` (CamelCase: TrainingTimeout,
    TrainingFailed, BadEvidence, UploadFailed, RehearsalError), ``step`` (train steps
    reached, when known), ``log_uri`` / ``failure_uri`` (where its log and failure.json
    went; None when that upload failed) and ``local_log`` (the log on this machine when
    the upload failed).
    """

    def __init__(self, message: str, *, reason: str = ERROR_REASON, step: int | None = None):
        super().__init__(message)
        self.reason = reason
        self.step = step
        self.log_uri: str | None = None
        self.failure_uri: str | None = None
        self.local_log: str | None = None


def exit_code(error: RehearsalError) -> ExitCode:
    """Process exit status for a failed run: INTERRUPTED (130) when it was interrupted,
    else FAILED (1)."""
    return ExitCode.INTERRUPTED if error.reason == INTERRUPTED_REASON else ExitCode.FAILED
