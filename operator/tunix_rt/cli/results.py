"""Finding a sweep's results from what a person types: a folder, a summary.json, a URI."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from tunix_rt.api.sweep import Objective, SweepSpec
from tunix_rt.api.trial import SweepResult, TrialResult
from tunix_rt.contract.layout import SUMMARY_FILE, TRIALS_DIR, SweepFiles, SweepLayout
from tunix_rt.evidence.package import SWEEP_SUMMARY_NAME
from tunix_rt.storage import Store, StoreError, StoreNotFoundError


class ResultsError(RuntimeError):
    """Nothing readable at the given location."""


@dataclass
class SweepResults:
    """What a sweep folder holds; ``summary`` is None while the sweep still runs."""

    uri: str
    summary: SweepResult | None
    trials: list[TrialResult]
    objective: Objective
    planned: int | None
    max_steps: int | None
    spec: SweepSpec | None = None


def to_uri(location: str) -> str:
    if "://" in location:
        return location.rstrip("/")
    return f"file://{Path(location).expanduser().resolve()}"


def sweep_folder(location: str) -> str:
    """The sweep folder's URI for a folder, a summary.json or a trial file."""
    uri = to_uri(location)
    if uri.endswith(".json"):
        uri = uri.rsplit("/", 1)[0]
        if uri.endswith("/trials"):
            uri = uri.rsplit("/", 1)[0]
    return uri


EVIDENCE_SUMMARY_FILE = SWEEP_SUMMARY_NAME
"""The summary's copy in a sweep's evidence folder (``<sweep>/evidence/``): such a folder
is a finished sweep, shown as one."""


def _evidence_summary(store: Store, problems: list[str]) -> SweepResult | None:
    """The summary of an evidence folder (its sweep_summary.json); None when absent."""
    try:
        raw = store.read_bytes(EVIDENCE_SUMMARY_FILE)
    except StoreNotFoundError:
        return None
    try:
        return SweepResult.model_validate_json(raw)
    except ValidationError as exc:
        problems.append(
            f"{store.uri_for(EVIDENCE_SUMMARY_FILE)} is not a sweep summary: "
            f"{exc.error_count()} error(s)"
        )
        return None


def load(location: str) -> SweepResults:
    """Summary (when written), trial records and the objective of one sweep.

    The store is opened at the sweep's own folder. Unreadable trial records and spec are
    left out; an unreadable summary, or nothing at all, is a :class:`ResultsError`.
    """
    uri = sweep_folder(location)
    files = SweepFiles(Store(uri), SweepLayout(""))
    try:
        summary = files.summary()
        problems = list(files.problems)
        if summary is None and not problems:
            summary = _evidence_summary(files.store, problems)
        trials = files.trials()
        spec = files.spec()
    except StoreError as exc:
        raise ResultsError(str(exc)) from exc
    if summary is None and problems:
        raise ResultsError(problems[0])
    if summary is None and not trials:
        raise ResultsError(f"no sweep results at {uri} (no {SUMMARY_FILE}, no {TRIALS_DIR}/*.json)")
    if summary is not None:
        objective = Objective.model_validate(
            {"metric": summary.objective_metric, "mode": summary.objective_mode}
        )
        trials = list(summary.trials)  # this run's trials (earlier runs live in archive/)
        planned: int | None = summary.trials_planned
    else:
        objective = spec.objective if spec else Objective()
        planned = spec.planned_trials() if spec else None
    max_steps = spec.budget.smoke_steps if spec else None
    return SweepResults(uri, summary, trials, objective, planned, max_steps, spec)
