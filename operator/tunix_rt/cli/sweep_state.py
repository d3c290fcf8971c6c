"""How a local sweep's driver ended (``sessions.json``), or whether it still runs (its pid)."""

from __future__ import annotations

import contextlib
import os
import re
import socket
from datetime import UTC, datetime
from pathlib import Path

from tunix_rt.api.trial import DriverSession
from tunix_rt.cli.sweep_process import CLI_MARK, LOG_NAME, LOG_STAMP
from tunix_rt.contract.exits import ExitCode
from tunix_rt.contract.file_names import LOGS_DIR
from tunix_rt.contract.layout import SweepFiles, SweepLayout
from tunix_rt.contract.phases import session_of_attempt
from tunix_rt.storage import Store, StoreError

RUNNING = "running"
INTERRUPTED = "interrupted: run the same command again to resume"
UNKNOWN = "no summary yet: running, or interrupted"


def recorded_end(files: SweepFiles, since: datetime) -> DriverSession | None:
    """How the driver that started at ``since`` (or later) ended, as its session in
    ``sessions.json`` says; None while it runs, or when it recorded no end (it stopped
    before its session was added, or the store cannot be read)."""
    try:
        sessions = files.sessions()
    except StoreError:
        return None
    session = session_of_attempt(sessions.last if sessions else None, since)
    if session is None or session.exit_code is None:
        return None
    return session


def end_reason(files: SweepFiles, since: datetime) -> str | None:
    """Why the driver that started at ``since`` ended, in its own words (None: unknown)."""
    session = recorded_end(files, since)
    if session is None:
        return None
    return session.message or None


def unfinished_state(uri: str) -> str:
    """What a sweep without a summary is doing: how the driver of its newest log (local
    runs keep them under ``logs/``) ended; running while that driver lives.

    The driver records how it ended in ``sessions.json``; this CLI writes the driver's
    pid first in the log. Without a local log (an object store, a cluster's sweep) there
    is no telling, and the answer says so.
    """
    if not uri.startswith("file://"):
        return UNKNOWN
    logs = sorted((Path(uri.removeprefix("file://")) / LOGS_DIR).glob(LOG_NAME.format(stamp="*")))
    if not logs:
        return UNKNOWN
    try:
        lines = logs[-1].read_text(errors="replace").splitlines()
    except OSError:
        return UNKNOWN
    started = _log_started(logs[-1])
    ended = recorded_end(SweepFiles(Store(uri), SweepLayout("")), started) if started else None
    if ended is not None:
        if ended.exit_code == ExitCode.INVALID:
            return f"not run: {ended.message or 'see the driver log'}"
        return INTERRUPTED
    marks = [line[len(CLI_MARK) :].strip() for line in lines if line.startswith(CLI_MARK)]
    pid_line = next((m for m in marks if m.startswith("driver pid ")), None)
    if pid_line is not None and not _alive(pid_line):
        return INTERRUPTED
    return RUNNING


def _log_started(log_file: Path) -> datetime | None:
    """When ``sweep run`` started the driver of ``log_file`` (its name says)."""
    prefix, suffix = LOG_NAME.split("{stamp}")
    stamp = log_file.name.removeprefix(prefix).removesuffix(suffix)
    try:
        return datetime.strptime(stamp, LOG_STAMP).replace(tzinfo=UTC)
    except ValueError:
        return None


def _alive(pid_line: str) -> bool:
    """Whether the driver named by ``driver pid N on HOST`` still runs (True when it
    cannot be told: another host)."""
    match = re.fullmatch(r"driver pid (\d+) on (\S+)", pid_line)
    if match is None or match.group(2) != socket.gethostname():
        return True
    pid = int(match.group(1))
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists():  # a reused pid is another program
        with contextlib.suppress(OSError):
            return b"tunix_rt.tune" in cmdline.read_bytes()
    return True
