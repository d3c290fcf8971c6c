"""The sweep's own log: the driver's lines, echoed and kept in the store as they happen."""

from __future__ import annotations

import logging
import threading

from tunix_rt.contract.layout import SweepFiles
from tunix_rt.evidence.manifest import iso
from tunix_rt.storage import StoreError, scrub
from tunix_rt.tune.records import utcnow

log = logging.getLogger("tunix_rt.tune")


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
        line = scrub(line)
        if self.echo:
            print(f"[tunix-rt] {line}", flush=True)
        stamp = iso(utcnow())
        with self._lock:
            self.lines.extend(f"{stamp} {part}" for part in line.splitlines() or [""])

    @property
    def text(self) -> str:
        with self._lock:
            return "".join(f"{line}\n" for line in self.lines)

    def save(self) -> None:
        try:
            self.files.write_log(self.text)
        except StoreError as exc:  # the log must never end the sweep
            log.warning("could not save the sweep log: %s", exc)
