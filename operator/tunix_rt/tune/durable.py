"""What lets a sweep outlive its driver: Ray Tune's experiment in the store, a check of
that state before it is restored, and the ledger of driver sessions.

* :func:`experiment_filesystem`: Ray Tune writes its experiment (state, searcher,
  per-trial result files, checkpoints) through the store's own fsspec filesystem
  (``pyarrow.fs.PyFileSystem(FSSpecHandler(store.fs))``), so ``s3://`` endpoints and
  credentials are the store's, and a new RayJob restores with ``Tuner.restore``.
* :func:`state_problem`: a store cut mid-upload can leave ``tuner.pkl`` without a
  readable ``experiment_state-*.json``; a cut newest snapshot is set aside so the one
  before it is restored; with none left, the session ends with a message that names
  the files and the fix, and touches nothing.
* :class:`SessionLedger`: ``sessions.json``, one entry a driver session: the
  wall-clock budget sums them, the operator reads the last one to tell a sweep that
  failed from a driver that was cut off.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Callable
from typing import Any

from tunix_rt.api.trial import DriverSession, DriverSessions
from tunix_rt.contract.file_names import EXPERIMENT_STATE_GLOB, TUNER_PKL
from tunix_rt.contract.layout import SweepFiles
from tunix_rt.reading import Limits, ReadError, load_json
from tunix_rt.reading.limits import MIB
from tunix_rt.storage import Store, StoreError
from tunix_rt.storage.errors import StoreTooLargeError
from tunix_rt.tune.records import utcnow

log = logging.getLogger("tunix_rt.tune")

CUT_SUFFIX = ".cut"
"""Appended to a snapshot that could not be read (kept, never deleted)."""


def experiment_filesystem(store: Store) -> Any:
    """The pyarrow filesystem Ray Tune writes the experiment through: the store's
    (same class, endpoint and credentials), as an instance of its own that keeps no
    directory listings (trials on other nodes write under the same folders; a cached
    listing would answer "not found" for what they wrote) and retries on its own (Ray's
    calls do not go through the Store's retries)."""
    from pyarrow.fs import FSSpecHandler, PyFileSystem  # type: ignore[import-untyped]

    options = dict(getattr(store.fs, "storage_options", {}) or {})
    options.update(use_listings_cache=False, skip_instance_cache=True)
    return PyFileSystem(FSSpecHandler(type(store.fs)(**options)))


def _snapshots(store: Store, prefix: str) -> list[str]:
    """Keys of Ray Tune's experiment snapshots directly under ``prefix``, oldest first."""
    under = prefix.rstrip("/") + "/"
    keys = [k for k in store.list(under) if "/" not in k[len(under) :]]
    return sorted(k for k in keys if fnmatch.fnmatch(k.rsplit("/", 1)[-1], EXPERIMENT_STATE_GLOB))


TUNE_STATE = Limits("Ray Tune experiment state", max_bytes=512 * MIB, max_depth=64)
"""Ray Tune's own snapshot: one JSON string per trial inside, shallow, and large for a
sweep of thousands of trials."""


def _readable(store: Store, key: str) -> bool:
    try:
        data = load_json(store.read_bytes(key, TUNE_STATE), key, TUNE_STATE)
    except (ReadError, StoreTooLargeError):
        return False
    return isinstance(data, dict) and "trial_data" in data


def state_problem(files: SweepFiles, say: Callable[[str], None]) -> str | None:
    """Check Ray Tune's experiment state in the store before it is restored.

    Snapshots that cannot be read (cut mid-upload) are renamed ``*.cut`` newest first,
    so that Tune restores the newest readable one. None: restore; else why it cannot
    be (nothing was changed but the renames; trial records are untouched)."""
    store, prefix = files.store, files.layout.experiment_prefix
    for key in reversed(_snapshots(store, prefix)):
        if _readable(store, key):
            return None
        store.write_bytes(key + CUT_SUFFIX, store.read_bytes(key))
        store.delete(key)
        say(f"Ray Tune's snapshot {store.uri_for(key)} is cut short; set aside as {CUT_SUFFIX}")
    records = len([k for k in store.list(files.layout.trials_prefix) if k.endswith(".json")])
    return (
        f"Ray Tune's experiment state at {store.uri_for(prefix)} is incomplete: "
        f"{TUNER_PKL} is there but no readable {EXPERIMENT_STATE_GLOB} (the store was cut "
        f"while it was written), so the sweep cannot resume where it was. Nothing was "
        f"deleted: the {records} trial record(s) under {store.uri_for(files.layout.trials_prefix)} "
        "are intact. Run the sweep again with --fresh to start over (earlier results move "
        "to archive/), or give it another name"
    )


def drop_experiment(store: Store, prefix: str) -> int:
    """Delete Ray Tune's experiment under ``prefix`` (a ``--fresh`` start, or state that
    holds nothing to resume); how many files went."""
    keys = store.list(prefix.rstrip("/") + "/")
    for key in keys:
        store.delete(key)
    return len(keys)


class SessionLedger:
    """This driver session's entry in ``sessions.json``: added at the start, its sign of
    life refreshed while it runs (at most every ``every_s`` seconds), its end recorded.

    Store errors are logged, never raised: the ledger must not end a sweep."""

    def __init__(self, files: SweepFiles, every_s: float) -> None:
        self.files = files
        self.every_s = every_s
        self.earlier: list[DriverSession] = []
        self.current: DriverSession | None = None
        self._last = 0.0

    def open(self) -> float:
        """Add this session; the wall seconds of the earlier ones."""
        try:
            found = self.files.sessions()
        except StoreError as exc:
            log.warning("could not read the driver sessions: %s", exc)
            found = None
        self.earlier = list(found.sessions) if found else []
        now = utcnow()
        self.current = DriverSession(started_at=now, seen_at=now)
        self._write()
        return DriverSessions(sessions=self.earlier).wall_seconds

    def alive(self, monotonic_now: float) -> None:
        """Refresh the sign of life (throttled)."""
        if self.current is None or monotonic_now - self._last < self.every_s:
            return
        self._last = monotonic_now
        self.current = self.current.model_copy(update={"seen_at": utcnow()})
        self._write()

    def close(self, exit_code: int, message: str) -> None:
        if self.current is None:
            return
        now = utcnow()
        self.current = self.current.model_copy(
            update={
                "seen_at": now,
                "ended_at": now,
                "exit_code": int(exit_code),
                "message": message,
            }
        )
        self._write()

    def _write(self) -> None:
        assert self.current is not None
        try:
            self.files.write_sessions(DriverSessions(sessions=[*self.earlier, self.current]))
        except StoreError as exc:
            log.warning("could not record the driver session: %s", exc)
