"""The store layout: every key the operator, the CLI and the code inside a RayJob share,
and the one reader of each, under one error policy.

    <storage>/<namespace>/<sweep>/
        spec.json              the spec the driver runs (a rerun with another is refused)
        trials/<id>.json       TrialResult, rewritten as the trial runs
        sweep_log.txt          the driver's own lines, saved after every finished trial
        summary.json           SweepResult, written last: the sweep is over
        sessions.json          DriverSessions: every driver run, how it ended (resume rules,
                               the wall-clock budget across attempts)
        warm_start.json        WarmStartRecord: the earlier trials spec.warmStartFrom reused
                               and those it skipped, why (written before the first trial)
        evidence/              the sweep's evidence bundle (submission/<zip> last)
        ray/                   Ray Tune's experiment (any store): experiment_state-*.json,
                               tuner.pkl, searcher state, and per trial ray/<id>/
                               {progress.csv,result.json,events.out.tfevents.*,
                               checkpoint_*/} (object stores keep trial checkpoints here)
        checkpoints/<id>/      trial checkpoints written in place (file:// stores)
        logs/                  trial logs
        archive/<stamp>/       earlier runs' files (``--fresh``, a re-applied Sweep)
    <storage>/<namespace>/rehearsals/<name>/
        run_manifest.json eval_summary.json kaggle_output_log.txt … submission/<zip>
        failed/<stamp>/{failure.json,kaggle_output_log.txt}   failed attempts
        archive/<stamp>/       earlier runs' evidence

The names in it are :mod:`tunix_rt.contract.file_names`'s. Error policy, the same for
every reader here (:func:`read_sweep_summary` is the one reader of a stored SweepResult):
a key that is absent reads as ``None``; one that is there but unreadable (not JSON, not
the model) reads as ``None`` and adds a line to ``problems``; a store that cannot be
reached raises :class:`StoreError`, for the caller to retry (the operator), report (the
CLI) or record (the driver).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import ClassVar, Generic, Self, TypeVar

from pydantic import BaseModel, ValidationError

from tunix_rt.api.errors import validation_errors
from tunix_rt.api.sweep import SweepSpec
from tunix_rt.api.trial import (
    FINISHED_STATES,
    DriverSessions,
    SweepResult,
    TrialResult,
    WarmStartRecord,
)
from tunix_rt.contract import file_names
from tunix_rt.reading import RECORD, ReadError, load_json
from tunix_rt.storage import Store, StoreError, StoreNotFoundError
from tunix_rt.storage.errors import StoreTooLargeError

LOCAL_NAMESPACE = "local"
"""Namespace in store keys for runs without a cluster."""

M = TypeVar("M", bound=BaseModel)


def _join(prefix: str, *parts: str) -> str:
    return "/".join(p.strip("/") for p in (prefix, *parts) if p.strip("/"))


def bundle_key(keys: Iterable[str], prefix: str) -> str | None:
    """The newest zip under ``<prefix>/submission/`` among ``keys`` (None: no bundle)."""
    under = f"{_join(prefix, file_names.SUBMISSION_DIR)}/"
    zips = sorted(k for k in keys if k.startswith(under) and k.endswith(".zip"))
    return zips[-1] if zips else None


def latest_bundle(store: Store, prefix: str) -> str | None:
    """URI of the newest zip under ``<prefix>/submission/``, None when there is none."""
    key = bundle_key(store.list(prefix), prefix)
    return store.uri_for(key) if key is not None else None


# ----------------------------------------------------------------------------- keys


class _File:
    """A layout attribute: the key of ``parts`` under the run's prefix."""

    def __init__(self, *parts: str) -> None:
        self.parts = parts

    def __get__(self, layout: _Layout, owner: type | None = None) -> str:
        return layout.key(*self.parts)


@dataclass(frozen=True)
class _Layout:
    """A run's folder in the store: keys are joined under ``prefix``."""

    prefix: str
    kind_dir: ClassVar[tuple[str, ...]] = ()
    """The folder of this kind's runs under a namespace (none for sweeps)."""

    @classmethod
    def of(cls, namespace: str, name: str) -> Self:
        return cls("/".join((namespace, *cls.kind_dir, name)))

    def key(self, *parts: str) -> str:
        return _join(self.prefix, *parts)

    archive_prefix = _File(file_names.ARCHIVE_DIR)


@dataclass(frozen=True)
class SweepLayout(_Layout):
    """Where one sweep's files live, relative to the store's root.

    ``prefix`` is ``<namespace>/<sweep>``, or empty for a store rooted at the sweep's own
    folder (what ``tunix-rt sweep show runs/local/my-sweep`` opens).
    """

    spec_key = _File(file_names.SPEC_JSON)
    summary_key = _File(file_names.SUMMARY_JSON)
    log_key = _File(file_names.SWEEP_LOG_TXT)
    sessions_key = _File(file_names.SESSIONS_JSON)
    warm_start_key = _File(file_names.WARM_START_JSON)
    evidence_prefix = _File(file_names.EVIDENCE_DIR)
    experiment_prefix = _File(file_names.EXPERIMENT_DIR)
    """Ray Tune's experiment (``storage_path`` = the sweep's prefix, name ``ray``)."""

    def ray_trial_key(self, trial_id: str, name: str) -> str:
        """One of Ray Tune's own files of a trial (``progress.csv``, ``result.json``)."""
        return self.key(file_names.EXPERIMENT_DIR, trial_id, name)

    @property
    def trials_prefix(self) -> str:
        return self.key(file_names.TRIALS_DIR) + "/"

    def trial_key(self, trial_id: str) -> str:
        return self.key(file_names.TRIALS_DIR, f"{trial_id}.json")


@dataclass(frozen=True)
class RehearsalLayout(_Layout):
    """Where one rehearsal's evidence lives: ``<namespace>/rehearsals/<name>``."""

    kind_dir = (file_names.REHEARSALS_DIR,)

    manifest_key = _File(file_names.RUN_MANIFEST_JSON)
    eval_summary_key = _File(file_names.EVAL_SUMMARY_JSON)
    log_key = _File(file_names.KAGGLE_OUTPUT_LOG_TXT)
    failed_prefix = _File(file_names.FAILED_DIR)

    def is_current(self, key: str) -> bool:
        """A key of the current evidence (not under failed/ or archive/)."""
        return not key.startswith((f"{self.failed_prefix}/", f"{self.archive_prefix}/"))


# Shorthands for one key, relative to the storage URI.
def sweep_prefix(namespace: str, sweep: str) -> str:
    return SweepLayout.of(namespace, sweep).prefix


def trials_prefix(namespace: str, sweep: str) -> str:
    return SweepLayout.of(namespace, sweep).trials_prefix


def trial_key(namespace: str, sweep: str, trial_id: str) -> str:
    return SweepLayout.of(namespace, sweep).trial_key(trial_id)


def summary_key(namespace: str, sweep: str) -> str:
    return SweepLayout.of(namespace, sweep).summary_key


def sweep_evidence_prefix(namespace: str, sweep: str) -> str:
    return SweepLayout.of(namespace, sweep).evidence_prefix


def rehearsal_prefix(namespace: str, rehearsal: str) -> str:
    return RehearsalLayout.of(namespace, rehearsal).prefix


# ----------------------------------------------------------------------------- readers


@dataclass
class Reader:
    """Reads JSON files into models under the module's error policy: an absent file is
    None; a file that is there but unreadable (too large, cut short, not JSON, not the
    model) is None too, and says so twice: a line in ``problems`` and its key in
    ``unreadable`` (why, in a few words), so that no reader can mistake damage for
    absence."""

    store: Store
    problems: list[str] = field(default_factory=list)
    unreadable: dict[str, str] = field(default_factory=dict)

    def _damaged(self, key: str, why: str) -> None:
        self.unreadable[key] = why
        self.problems.append(f"{self.store.uri_for(key)}: {why}")

    def raw(self, key: str) -> bytes | None:
        """The bytes at ``key`` (within :data:`~tunix_rt.reading.RECORD`); None when
        absent or too large (recorded)."""
        try:
            return self.store.read_bytes(key, RECORD)
        except StoreNotFoundError:
            return None
        except StoreTooLargeError as exc:
            self._damaged(key, str(exc).removeprefix(f"{self.store.uri_for(key)} "))
            return None

    def json(self, key: str, raw: bytes | None = None) -> object | None:
        """The JSON at ``key`` (``raw``: its bytes, already read); None when absent or not
        JSON (a problem is recorded)."""
        raw = self.raw(key) if raw is None else raw
        if raw is None:
            return None
        try:
            data: object = load_json(raw, self.store.uri_for(key), RECORD)
        except ReadError as exc:
            self._damaged(key, exc.problem)
            return None
        return data

    def model(self, key: str, model: type[M], raw: bytes | None = None) -> M | None:
        """The model at ``key`` (``raw``: its bytes, already read); None when absent or not
        that model (a problem is recorded: the fields and what is wrong, in words)."""
        data = self.json(key, raw)
        if data is None:
            return None
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            pairs = validation_errors(exc)
            detail = "; ".join(f"{p}: {m}" if p else m for p, m in pairs[:3])
            more = f" (and {len(pairs) - 3} more)" if len(pairs) > 3 else ""
            self._damaged(key, f"not a valid {_NAMES.get(model.__name__, model.__name__)}: "
                          f"{detail[:300]}{more}")  # fmt: skip
            return None


_NAMES = {
    "TrialResult": "trial record",
    "SweepResult": "sweep summary",
    "DriverSessions": "sessions file",
    "SweepSpec": "sweep spec",
    "WarmStartRecord": "warm start record",
}


@dataclass(frozen=True)
class StoredSummary:
    """A sweep's summary as stored: the model, its URI, and its bytes (a rehearsal's
    evidence copies them unchanged)."""

    result: SweepResult
    uri: str
    raw: bytes


def read_sweep_summary(reader: Reader, key: str) -> StoredSummary | None:
    """The one reader of a stored SweepResult: a sweep's ``summary.json``, or the
    ``sweep_summary.json`` of its evidence folder. None when absent, or when unreadable
    (then ``reader.problems`` names the file and why)."""
    raw = reader.raw(key)
    if raw is None:
        return None
    result = reader.model(key, SweepResult, raw)
    return StoredSummary(result, reader.store.uri_for(key), raw) if result is not None else None


L = TypeVar("L", bound=_Layout)


class _RunFiles(Reader, Generic[L]):
    """A run's files in a store: a reader bound to the run's layout."""

    def __init__(self, store: Store, layout: L) -> None:
        super().__init__(store)
        self.layout = layout
        self.damaged_trials: dict[str, str] = {}
        """Trial records :meth:`SweepFiles.trials` found but could not read: key -> why."""

    @property
    def uri(self) -> str:
        return self.store.uri_for(self.layout.prefix)


class SweepFiles(_RunFiles[SweepLayout]):
    """One sweep's records in a store: the readers and writers both sides use."""

    def trial(self, trial_id: str) -> TrialResult | None:
        return self.model(self.layout.trial_key(trial_id), TrialResult)

    def trials(self, cache: dict[str, TrialResult] | None = None) -> list[TrialResult]:
        """Every readable trial record, in id order. Finished records are final: with a
        ``cache`` each is read once (the operator polls)."""
        out = []
        self.damaged_trials = {}
        for key in self.store.list(self.layout.trials_prefix):
            if not key.endswith(".json"):
                continue
            record = cache.get(key) if cache is not None else None
            if record is None:
                record = self.model(key, TrialResult)
                if record is None:
                    if key in self.unreadable:  # gone since listed is not damage
                        self.damaged_trials[key] = self.unreadable[key]
                    continue
                if cache is not None and record.state in FINISHED_STATES:
                    cache[key] = record
            out.append(record)
        return sorted(out, key=lambda t: t.trial_id)

    def summary(self) -> SweepResult | None:
        stored = read_sweep_summary(self, self.layout.summary_key)
        return stored.result if stored is not None else None

    def spec(self) -> SweepSpec | None:
        return self.model(self.layout.spec_key, SweepSpec)

    def sessions(self) -> DriverSessions | None:
        """Every driver session so far (None before the first)."""
        return self.model(self.layout.sessions_key, DriverSessions)

    def warm_start(self) -> WarmStartRecord | None:
        """What the warm start reused and skipped (None: no warm start, or not yet)."""
        return self.model(self.layout.warm_start_key, WarmStartRecord)

    def ray_trial_text(self, trial_id: str, name: str) -> str | None:
        """One of Ray Tune's per-trial files as text; None when absent."""
        try:
            return self.store.read_text(self.layout.ray_trial_key(trial_id, name))
        except StoreNotFoundError:
            return None

    def log(self) -> str | None:
        try:
            return self.store.read_text(self.layout.log_key)
        except StoreNotFoundError:
            return None

    def bundle_uri(self) -> str | None:
        """The newest evidence zip of the finished sweep (uploaded before summary.json)."""
        return latest_bundle(self.store, self.layout.evidence_prefix)

    # writers ---------------------------------------------------------------------
    def write_trial(self, record: TrialResult) -> str:
        return self.store.write_json(self.layout.trial_key(record.trial_id), record)

    def write_summary(self, summary: SweepResult) -> str:
        """Last of a sweep's writes: it tells every reader the sweep is over."""
        return self.store.write_json(self.layout.summary_key, summary)

    def write_spec(self, spec: SweepSpec) -> str:
        return self.store.write_json(self.layout.spec_key, spec)

    def write_log(self, text: str) -> str:
        return self.store.write_text(self.layout.log_key, text)

    def write_sessions(self, sessions: DriverSessions) -> str:
        return self.store.write_json(self.layout.sessions_key, sessions)

    def write_warm_start(self, record: WarmStartRecord) -> str:
        return self.store.write_json(self.layout.warm_start_key, record)


@dataclass(frozen=True)
class SweepTarget:
    """Where one sweep's records live; small and picklable (it travels to trial workers)."""

    storage: str
    namespace: str
    sweep: str

    @property
    def layout(self) -> SweepLayout:
        return SweepLayout.of(self.namespace, self.sweep)

    def store(self) -> Store:
        return Store(self.storage)

    def files(self, store: Store | None = None) -> SweepFiles:
        return SweepFiles(store or self.store(), self.layout)


class RehearsalFiles(_RunFiles[RehearsalLayout]):
    """One rehearsal's evidence in a store, as the operator and the CLI read it."""

    def current_keys(self) -> list[str]:
        """The keys of the evidence at the prefix (failed attempts and archives left out)."""
        return [k for k in self.store.list(self.layout.prefix + "/") if self.layout.is_current(k)]

    def eval_summary(self) -> dict[str, object] | None:
        data = self.json(self.layout.eval_summary_key)
        return data if isinstance(data, dict) else None

    def manifest(self) -> dict[str, object] | None:
        data = self.json(self.layout.manifest_key)
        return data if isinstance(data, dict) else None


def read_trial(store: Store, key: str) -> TrialResult | None:
    """One trial record by its key (None when absent or unreadable)."""
    return Reader(store).model(key, TrialResult)


__all__ = [
    "LOCAL_NAMESPACE",
    "Reader",
    "RehearsalFiles",
    "RehearsalLayout",
    "StoreError",
    "StoredSummary",
    "SweepFiles",
    "SweepLayout",
    "SweepTarget",
    "bundle_key",
    "latest_bundle",
    "read_sweep_summary",
    "read_trial",
    "rehearsal_prefix",
    "summary_key",
    "sweep_evidence_prefix",
    "sweep_prefix",
    "trial_key",
    "trials_prefix",
]
