"""The run log (kaggle_output_log.txt): timestamped, scrubbed lines, tunix_rt's own log
records included, echoed to stderr as the run goes."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from tunix_rt.evidence.manifest import iso
from tunix_rt.storage import scrub


class RunLog:
    """Timestamped lines to kaggle_output_log.txt (and an echo), credentials scrubbed."""

    def __init__(
        self, path: Path, echo: Callable[[str], None] | None = None, *, append: bool = False
    ) -> None:
        self.path = path
        self.echo = echo
        self._lock = threading.Lock()
        self._handle: TextIO | None = path.open("a" if append else "w", encoding="utf-8")

    def __call__(self, message: str) -> None:
        stamp = iso(datetime.now(UTC))
        lines = scrub(str(message)).splitlines() or [""]
        with self._lock:
            for line in lines:
                text = f"{stamp} {line}"
                if self._handle is not None:
                    self._handle.write(text + "\n")
                    self._handle.flush()
                if self.echo is not None:
                    self.echo(text)

    def close(self) -> None:
        with self._lock:
            if self._handle is not None:
                self._handle.close()
                self._handle = None


class _LogHandler(logging.Handler):
    def __init__(self, sink: RunLog) -> None:
        super().__init__(logging.INFO)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.sink(f"[{record.name}] {record.levelname}: {record.getMessage()}")
        except Exception:  # a log line must never break the run
            self.handleError(record)


@contextmanager
def capture_logging(sink: RunLog) -> Iterator[None]:
    """tunix_rt's own loggers (storage retries, trainer) go to the run log too."""
    handler = _LogHandler(sink)
    logger = logging.getLogger("tunix_rt")
    previous = logger.level
    logger.addHandler(handler)
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


def stderr_echo(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
