"""What every command shares: user text kept out of rich markup, exit codes in words,
checking a store can be written before anything runs, quiet store retries."""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError
from rich.markup import escape

from tunix_rt.api.common import check_storage
from tunix_rt.api.errors import validation_errors
from tunix_rt.api.secrets import redact
from tunix_rt.contract.exits import ExitCode
from tunix_rt.contract.file_names import SPEC_JSON
from tunix_rt.storage import Store, StoreError
from tunix_rt.storage.store import RETRY_ATTEMPT

EXIT_MEANING: dict[int, str] = {
    ExitCode.OK: "finished",
    ExitCode.FAILED: "the run failed",
    ExitCode.INVALID: "invalid: nothing ran",
    ExitCode.INTERRUPTED: "interrupted: run the same command again to resume",
}


TRAIN_EXTRA_HINT = "make demo, or uv sync --frozen --all-extras, or pip install 'tunix-rt[train]'"
"""What to type to get the train extra (Ray, JAX); print it through :func:`esc`."""


def esc(value: object) -> str:
    """``value`` as text that rich prints as written (``[red]`` stays ``[red]``), with
    any credential in it masked (:func:`tunix_rt.api.secrets.redact`)."""
    return escape(redact(str(value)))


def exit_meaning(code: int) -> str:
    """``exit 2 (invalid: nothing ran)``: an exit code with what it means."""
    meaning = EXIT_MEANING.get(code)
    if meaning is None and code < 0:
        meaning = f"killed by signal {-code}"
    return f"exit {code}" + (f" ({meaning})" if meaning else "")


def writable_problem(target: str | Path) -> str | None:
    """Why a local folder cannot be written (created if absent, a probe file written and
    removed), as ``strerror``; None when it can."""
    folder = Path(target)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=str(folder), prefix=".tmp-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    return None


def store_problem(store: Store, prefix: str) -> str | None:
    """One line saying why ``store`` cannot hold a run under ``prefix``; None when it can.

    file:// stores are written to (a probe file, removed); object stores are read once
    (with the store's retries), which finds an unreachable endpoint, a missing bucket or
    missing credentials before anything starts.
    """
    if store.scheme == "file":
        problem = writable_problem(Path(store.root) / prefix)
        if problem is None:
            return None
        return f"cannot write to {store.uri}: {problem}; choose a writable --storage"
    try:
        store.exists(f"{prefix.strip('/')}/{SPEC_JSON}")
    except StoreError as exc:
        return f"cannot use the store {store.uri}: {exc}"
    return None


class _FirstRetryOnly(logging.Filter):
    """Lets through the first retry warning of a burst (one line), not one per attempt;
    records that are not retries pass unchanged."""

    def filter(self, record: logging.LogRecord) -> bool:
        attempt = getattr(record, RETRY_ATTEMPT, None)
        return attempt is None or attempt <= 1


class _StderrHandler(logging.Handler):
    """Writes to the current ``sys.stderr`` (which tests swap) as ``warning: …``."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(f"{record.levelname.lower()}: {record.getMessage()}\n")
        except Exception:  # pragma: no cover - logging must never break a command
            self.handleError(record)


_HANDLER_NAME = "tunix-rt-cli"


def quiet_store_retries() -> None:
    """Store retries on the terminal: one line per burst (idempotent)."""
    logger = logging.getLogger("tunix_rt.storage")
    if any(h.get_name() == _HANDLER_NAME for h in logger.handlers):
        return
    handler = _StderrHandler(logging.WARNING)
    handler.set_name(_HANDLER_NAME)
    handler.addFilter(_FirstRetryOnly())
    logger.addHandler(handler)


def no_retries(store: Store) -> Store:
    """The same store making one attempt per call: for polls, whose next round retries."""
    from tunix_rt.storage.store import RetryPolicy

    return Store(store.uri, retry=RetryPolicy(attempts=1))


__all__ = [
    "EXIT_MEANING",
    "esc",
    "exit_meaning",
    "no_retries",
    "quiet_store_retries",
    "store_problem",
    "writable_problem",
]


def storage_option(value: str | None) -> str | None:
    """``--storage``: checked as a spec's ``storage`` is, before anything runs, and named as
    the flag (exit 2); a credential in it is never echoed."""
    if value is None:
        return None
    try:
        check_storage("storage", value)
    except ValidationError as exc:
        raise typer.BadParameter(validation_errors(exc)[0][1], param_hint="--storage") from None
    return value


def storage_flag(help: str, default: str | None = None) -> Any:
    """The ``--storage`` option every command declares alike (checked by
    :func:`storage_option`); only its default and help differ."""
    return typer.Option(default, "--storage", callback=storage_option, help=help)
