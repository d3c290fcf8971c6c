"""The driver's side of ``spec.warmStartFrom``: find the earlier sweep's results, judge its
trials (:func:`tunix_rt.contract.warm_start.judge_trials`), record the verdicts in
``warm_start.json`` before the first trial, and hand the search what it reuses
(:class:`~tunix_rt.tune.warm_search.WarmStart`).

Where the earlier results are: ``warmStartFrom.uri`` (a sweep folder or its
``summary.json``); for ``warmStartFrom.sweep``, the URI the operator resolved from that
Sweep's status (``--warm-start-uri``), else ``<storage>/<namespace>/<name>`` (a local run:
``<storage>/local/<name>``). A resumed session reads its ``warm_start.json`` back: Tune
restores the searcher with the trials already in it.
"""

from __future__ import annotations

from dataclasses import dataclass

from tunix_rt.api.sweep import SweepSpec
from tunix_rt.api.trial import TrialResult, WarmStartRecord
from tunix_rt.contract.exits import ExitCode
from tunix_rt.contract.file_names import EVIDENCE_DIR, RUN_MANIFEST_JSON
from tunix_rt.contract.layout import Reader, SweepLayout
from tunix_rt.contract.warm_start import Source, algorithm_use, judge_trials
from tunix_rt.results import ResultsError, load, sweep_folder
from tunix_rt.storage import Store, StoreError
from tunix_rt.tune.session import Session, SweepOutcome, SweepRun
from tunix_rt.tune.warm_search import WarmStart

SKIPS_LOGGED = 20
"""Skipped trials the sweep log names one by one (warm_start.json has them all)."""


class WarmStartError(ValueError):
    """The earlier sweep cannot be used at all (its message says why and the fix)."""


@dataclass(frozen=True)
class Earlier:
    """The earlier sweep as read from the store."""

    source: Source
    trials: list[TrialResult]
    unreadable: int = 0


def source_uri(run: SweepRun) -> str:
    """The earlier sweep's folder (see the module's docstring)."""
    warm = run.spec.warm_start_from
    assert warm is not None
    if warm.uri is not None:
        return sweep_folder(warm.uri)
    if run.warm_start_uri:
        return sweep_folder(run.warm_start_uri)
    assert warm.sweep is not None
    store = Store(run.storage_uri)
    return store.uri_for(SweepLayout.of(run.namespace, warm.sweep).prefix)


def read_earlier(uri: str) -> Earlier:
    """The earlier sweep's trials, base trainer config and dataset digest."""
    try:
        sweep = load(uri)
    except ResultsError as exc:
        raise WarmStartError(
            f"spec.warmStartFrom: {exc}; run that sweep first, or name its results folder"
        ) from None
    if sweep.summary is not None and sweep.summary.base_config:
        base = dict(sweep.summary.base_config)
    elif sweep.spec is not None:
        base = dict(sweep.spec.trial_config({}).to_wire())
    else:
        raise WarmStartError(
            f"spec.warmStartFrom: {uri} holds trial records but neither summary.json nor "
            "spec.json, so its trainer config is unknown; name a sweep folder tunix-rt wrote"
        )
    name = sweep.summary.sweep if sweep.summary is not None else uri.rstrip("/").rsplit("/")[-1]
    source = Source(name, uri, base, earlier_dataset(uri))
    return Earlier(source, list(sweep.trials), len(sweep.unreadable))


def earlier_dataset(uri: str) -> str | None:
    """The dataset digest the earlier sweep's evidence manifest recorded (None: none)."""
    reader = Reader(Store(uri))
    for key in (f"{EVIDENCE_DIR}/{RUN_MANIFEST_JSON}", RUN_MANIFEST_JSON):
        manifest = reader.json(key)
        dataset = manifest.get("dataset") if isinstance(manifest, dict) else None
        digest = dataset.get("sha256") if isinstance(dataset, dict) else None
        if isinstance(digest, str) and digest:
            return digest
    return None


def dataset_here(spec: SweepSpec) -> str | None:
    """The digest of the dataset this sweep's trials train on (None: cannot be read)."""
    from tunix_rt.train.data import dataset_info

    try:
        return dataset_info(spec.trial_config({}).dataset).sha256
    except (ValueError, OSError):
        return None


def judge(run: SweepRun, own_uri: str) -> WarmStartRecord:
    """Read the earlier sweep and judge its trials: the record to write."""
    warm = run.spec.warm_start_from
    assert warm is not None
    uri = source_uri(run)
    if uri.rstrip("/") == own_uri.rstrip("/"):
        raise WarmStartError(
            f"spec.warmStartFrom names this sweep's own results ({uri}); name an earlier sweep"
        )
    earlier = read_earlier(uri)
    judged = judge_trials(run.spec, earlier.source, earlier.trials, dataset_here(run.spec))
    notes = list(judged.notes)
    if earlier.unreadable:
        notes.append(f"{earlier.unreadable} earlier file(s) unreadable and left out")
    return WarmStartRecord(
        source=warm.describe(),
        uri=uri,
        rerun_measured=warm.rerun_measured,
        use=algorithm_use(run.spec, len(judged.reused), warm.rerun_measured),
        reused=[t.trial_id for t in judged.reused],
        skipped=judged.skipped,
        notes=notes,
        trials=judged.reused,
    )


def prepare(session: Session, restoring: bool) -> WarmStart | SweepOutcome | None:
    """This session's warm start (None: the spec asks for none), or the outcome that ends
    the session when the earlier sweep cannot be used. A resumed session reads the
    record it wrote; a new one judges and writes it."""
    run, files = session.run, session.files
    if run.spec.warm_start_from is None:
        return None
    try:
        record = files.warm_start() if restoring else None
        if record is None:
            record = judge(run, files.uri)
            files.write_warm_start(record)
    except WarmStartError as exc:
        return SweepOutcome(ExitCode.INVALID, f"{exc}; nothing ran", results_uri=files.uri)
    except StoreError as exc:
        message = f"spec.warmStartFrom: cannot read the earlier sweep: {exc}; nothing ran"
        return SweepOutcome(ExitCode.FAILED, message, results_uri=files.uri)
    say_verdicts(session, record)
    return WarmStart.of(record, run.spec)


def say_verdicts(session: Session, record: WarmStartRecord) -> None:
    """The warm start in the sweep log: counts, each skip (the first few), notes, use."""
    say = session.say
    say(
        f"warm start from {record.source} ({record.uri}): {len(record.reused)} trial(s) "
        f"reused, {len(record.skipped)} skipped"
    )
    for skipped in record.skipped[:SKIPS_LOGGED]:
        say(f"  skipped {skipped.trial} ({skipped.reason.value}): {skipped.message}")
    if len(record.skipped) > SKIPS_LOGGED:
        say(f"  … and {len(record.skipped) - SKIPS_LOGGED} more (warm_start.json lists them all)")
    for note in record.notes:
        say(f"  note: {note}")
    say(f"warm start: {record.use}")
