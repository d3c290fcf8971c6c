"""The store as the web view reads it: every Sweep and Rehearsal, one sweep's page, one
trial's. Only the store is read (it outlives every RayJob and cluster), through the run
contract's layout and readers (:mod:`tunix_rt.contract.layout`), and each file is parsed
once per version (:class:`~tunix_rt.ui.cache.StampCache`).

Where things are (``contract.layout``): ``<ns>/<sweep>/{summary.json, spec.json,
sessions.json, trials/<id>.json, evidence/, logs/}``; ``<ns>/rehearsals/<name>/`` (read by
:mod:`~tunix_rt.ui.rehearsals`). A sweep without summary.json is still running (or was
cut off): its trial records are rewritten as the trials run, curves included, so its
page shows them as they grow.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from tunix_rt.api.sweep import SweepSpec
from tunix_rt.api.sweep_goals import Objective
from tunix_rt.api.trial import DriverSessions, SweepResult, TrialResult
from tunix_rt.contract.best_trial import objective_value, sweep_best
from tunix_rt.contract.exits import ExitCode
from tunix_rt.contract.file_names import (
    EVIDENCE_DIR,
    LOGS_DIR,
    REHEARSALS_DIR,
    SESSIONS_JSON,
    SPEC_JSON,
    SUBMISSION_DIR,
    SUMMARY_JSON,
    SWEEP_LOG_TXT,
    TRIALS_DIR,
)
from tunix_rt.contract.layout import Reader, SweepLayout
from tunix_rt.evidence.package import verify_zip
from tunix_rt.reading.limits import MIB
from tunix_rt.storage import Store, StoreEntry
from tunix_rt.ui.cache import StampCache
from tunix_rt.ui.models import FileLink, Goal, RunRow, SweepView, TrialRow, Verification

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")

SWEEP_MARKERS = (SUMMARY_JSON, SPEC_JSON, SESSIONS_JSON, TRIALS_DIR)
"""A folder under a namespace holding any of these is a sweep's."""
SWEEP_FILES = (SUMMARY_JSON, SPEC_JSON, SESSIONS_JSON, SWEEP_LOG_TXT)
SWEEP_FOLDERS = (EVIDENCE_DIR, LOGS_DIR, TRIALS_DIR)
"""What of a sweep's folder the app serves (not Ray's experiment, checkpoints, archives)."""
REMOTE_THREADS = 16
VERIFY_MAX_BYTES = 64 * MIB
"""Bundles up to this size are checked when their page is first shown (then cached by
the zip's stamp); larger ones are left unchecked, and the page says how to check them."""


@dataclass
class SweepState:
    """One sweep as read: the summary once written, else the records so far."""

    namespace: str
    name: str
    entries: dict[str, StoreEntry]
    summary: SweepResult | None = None
    spec: SweepSpec | None = None
    sessions: DriverSessions | None = None
    trials: list[TrialResult] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def layout(self) -> SweepLayout:
        return SweepLayout.of(self.namespace, self.name)

    @property
    def objective(self) -> Objective:
        if self.summary is not None:
            try:
                return Objective(
                    metric=self.summary.objective_metric, mode=self.summary.objective_mode
                )
            except ValidationError:
                return Objective()
        return self.spec.objective if self.spec is not None else Objective()


class Catalog:
    """Reads one store for the pages; safe to share between worker threads."""

    def __init__(self, store: Store, cache: StampCache | None = None) -> None:
        self.store = store
        self.cache = cache or StampCache()
        threads = 1 if store.scheme == "file" else REMOTE_THREADS
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="tunix-rt-ui")

    # ------------------------------------------------------------------ reading
    def map(self, fn: Callable[[str], T], items: Iterable[str]) -> list[T]:
        """``fn`` over ``items``: one by one on a local disk, in threads on an object store
        (one listing or read each is a round trip)."""
        if self.store.scheme == "file":
            return [fn(item) for item in items]
        return list(self._pool.map(fn, items))

    def folders(self, prefix: str) -> list[str]:
        return sorted(name for name, e in self.store.entries(prefix).items() if e.folder)

    def model(
        self, key: str, entry: StoreEntry | None, model: type[M], problems: list[str]
    ) -> M | None:
        """The model at ``key`` (None: absent or unreadable, and then a line in
        ``problems``), parsed once per version of the file."""
        if entry is None or entry.folder:
            return None

        def load() -> tuple[M | None, list[str]]:
            reader = Reader(self.store)
            return reader.model(key, model), reader.problems

        value, found = self.cache.get(model.__name__, key, entry.stamp, load)
        problems.extend(found)
        return value

    def json(self, key: str, entry: StoreEntry | None, problems: list[str]) -> dict[str, object]:
        """The JSON object at ``key`` ({} when absent or not one; a problem is recorded)."""
        if entry is None or entry.folder:
            return {}

        def load() -> tuple[dict[str, object], list[str]]:
            reader = Reader(self.store)
            data = reader.json(key)
            if data is not None and not isinstance(data, dict):
                return {}, [f"{self.store.uri_for(key)}: not a JSON object"]
            return data or {}, reader.problems

        value, found = self.cache.get("json", key, entry.stamp, load)
        problems.extend(found)
        return value

    # ------------------------------------------------------------------ the list
    def namespaces(self) -> list[str]:
        return self.folders("")

    def sweep_names(self, namespace: str) -> list[str]:
        return [n for n in self.folders(namespace) if n != REHEARSALS_DIR]

    def sweep_rows(self, namespace: str) -> list[RunRow]:
        states = self.map(
            lambda name: self.sweep_state(namespace, name, full=False), self.sweep_names(namespace)
        )
        return [sweep_row(s) for s in states if s is not None]

    # ------------------------------------------------------------------ one sweep
    def sweep_state(self, namespace: str, name: str, *, full: bool = True) -> SweepState | None:
        """The sweep's files (None: no sweep there). ``full``: its spec too, even when the
        summary says all a list row needs."""
        layout = SweepLayout.of(namespace, name)
        entries = self.store.entries(layout.prefix)
        if name == REHEARSALS_DIR or not any(m in entries for m in SWEEP_MARKERS):
            return None
        state = SweepState(namespace, name, entries)
        state.summary = self.model(
            layout.summary_key, entries.get(SUMMARY_JSON), SweepResult, state.problems
        )
        if full or state.summary is None:
            state.spec = self.model(
                layout.spec_key, entries.get(SPEC_JSON), SweepSpec, state.problems
            )
            state.sessions = self.model(
                layout.sessions_key, entries.get(SESSIONS_JSON), DriverSessions, state.problems
            )
        if state.summary is not None:
            state.trials = list(state.summary.trials)
        else:
            state.trials = self.trial_records(layout, state.problems)
        return state

    def trial_records(self, layout: SweepLayout, problems: list[str]) -> list[TrialResult]:
        """Every readable trial record of a running sweep, in id order."""
        prefix = layout.trials_prefix.rstrip("/")
        entries = self.store.entries(prefix)
        names = sorted(n for n, e in entries.items() if not e.folder and n.endswith(".json"))
        records = [self.model(f"{prefix}/{n}", entries[n], TrialResult, problems) for n in names]
        return [r for r in records if r is not None]

    def sweep_view(self, state: SweepState) -> SweepView:
        """The sweep's page: the row, its goal and budget, every trial, files to read."""
        layout = state.layout
        best = sweep_best(state.trials, state.objective, state.summary)
        bundle, checked = self.bundle(layout.prefix, f"{EVIDENCE_DIR}/{SUBMISSION_DIR}")
        log = state.entries.get(SWEEP_LOG_TXT)
        last = state.sessions.last if state.sessions else None
        return SweepView(
            row=sweep_row(state),
            goal=goal_of(state),
            trials=[trial_row(t, state.objective, best) for t in state.trials],
            reason=state.summary.reason if state.summary else None,
            wall_seconds=state.summary.wall_seconds_used if state.summary else _wall(state),
            evidence=self.links(layout.evidence_prefix, layout.prefix),
            logs=self.links(layout.key(LOGS_DIR), layout.prefix)
            + ([FileLink(path=SWEEP_LOG_TXT, size=log.size)] if log else []),
            bundle=bundle,
            verification=checked,
            problems=state.problems,
            last_seen=last.seen_at if last else None,
            summary_uri=self.store.uri_for(layout.summary_key) if state.summary else None,
        )

    def bundle(self, root: str, folder: str) -> tuple[FileLink | None, Verification | None]:
        """The newest zip in ``<root>/<folder>/`` (a link relative to ``root``) and what
        :meth:`verify` found in it."""
        entries = self.store.entries(f"{root}/{folder}")
        zips = sorted(n for n, e in entries.items() if not e.folder and n.endswith(".zip"))
        if not zips:
            return None, None
        link = FileLink(path=f"{folder}/{zips[-1]}", size=entries[zips[-1]].size)
        return link, self.verify(f"{root}/{link.path}", entries[zips[-1]])

    def verify(self, key: str, entry: StoreEntry) -> Verification | None:
        """``verify_zip`` of the bundle at ``key``, once per version of the zip (None: too
        large to check on a page view: ``tunix-rt package --verify`` checks it)."""
        if entry.size is None or entry.size > VERIFY_MAX_BYTES:
            return None
        name = key.rsplit("/", 1)[-1]

        def load() -> Verification:
            with tempfile.TemporaryDirectory(prefix="tunix-rt-ui-") as tmp:
                report = verify_zip(self.store.download(key, Path(tmp) / name))
            return Verification(
                bundle=name, ok=report.ok, files=len(report.files), errors=report.errors
            )

        return self.cache.get("verify", key, entry.stamp, load)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def links(self, prefix: str, root: str) -> list[FileLink]:
        """Every file under ``prefix`` (recursively), as links relative to ``root``."""
        return [FileLink(path=key.removeprefix(root + "/")) for key in self.store.list(prefix)]


# ----------------------------------------------------------------------------- rows


def sweep_row(state: SweepState) -> RunRow:
    """The list's row of a sweep: from its summary, else from its records so far."""
    objective = state.objective
    best = sweep_best(state.trials, objective, state.summary)
    summary = state.summary
    done = sum(1 for t in state.trials if t.finished)
    if summary is not None:
        planned = summary.trials_planned
        hours = summary.accelerator_hours_used
        phase, message = summary.phase.value, summary.message
        started, ended = summary.started_at, summary.finished_at
    else:
        planned = state.spec.planned_trials() if state.spec else None
        hours = sum(t.accelerator_hours for t in state.trials)
        phase, message = unfinished_phase(state)
        starts = [t.started_at for t in state.trials if t.started_at is not None]
        if state.sessions and state.sessions.sessions:
            starts.append(state.sessions.sessions[0].started_at)
        started, ended = (min(starts) if starts else None), None
    return RunRow(
        kind="Sweep",
        namespace=state.namespace,
        name=state.name,
        phase=phase,
        done=done,
        planned=planned,
        score=objective_value(best, objective) if best else None,
        objective=objective.metric,
        accelerator_hours=hours,
        started_at=started,
        ended_at=ended,
        message=message,
    )


def unfinished_phase(state: SweepState) -> tuple[str, str | None]:
    """A sweep without a summary: Running while its driver has not said it ended; else
    how it ended (Failed: its own verdict or a refused spec; Interrupted: a rerun
    resumes it). The store cannot tell a driver killed without a word: the live phase
    from the API can."""
    last = state.sessions.last if state.sessions else None
    if last is None:
        return ("Running" if state.trials else "Pending"), None
    if last.exit_code is None:
        return "Running", last.message
    if last.exit_code in (ExitCode.FAILED, ExitCode.INVALID):
        return "Failed", last.message
    return "Interrupted", last.message


_AS_RECORDED = set(TrialRow.model_fields) - {"state", "score", "best", "reused_from"}
"""The fields of a trial row that are the record's own, under the same names (the others
:func:`trial_row` works out)."""


def trial_row(trial: TrialResult, objective: Objective, best: TrialResult | None) -> TrialRow:
    return TrialRow(
        **trial.model_dump(include=_AS_RECORDED),
        state=trial.state.value,
        score=objective_value(trial, objective),
        best=best is not None and best.trial_id == trial.trial_id,
        reused_from=trial.origin_sweep,
    )


def goal_of(state: SweepState) -> Goal:
    """The objective and budgets: the spec's, else what the summary says."""
    objective = state.objective
    goal = Goal(metric=objective.metric, mode=objective.mode, goal=objective.goal)
    spec = state.spec
    if spec is None:
        return goal
    budget = spec.budget
    return goal.model_copy(
        update={
            "goal": spec.objective.goal,
            "smoke_steps": budget.smoke_steps,
            "trial_timeout_seconds": budget.trial_timeout_seconds,
            "sweep_timeout_seconds": budget.sweep_timeout_seconds,
            "accelerator_hours": budget.accelerator_hours,
            "wall_clock_seconds": budget.wall_clock_seconds,
            "max_failed_trials": spec.max_failed_trials,
            "algorithm": str(spec.algorithm.value),
            "search_space": {k: p.to_wire() for k, p in spec.search_space.items()},
        }
    )


def _wall(state: SweepState) -> float | None:
    return state.sessions.wall_seconds if state.sessions else None
