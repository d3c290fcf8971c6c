"""Finding a sweep's results from what a person types: a folder, a summary.json, a URI."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from tunix_rt.api.sweep import Objective, SweepSpec
from tunix_rt.api.trial import SweepResult, TrialResult
from tunix_rt.storage import Store, StoreError

SUMMARY = "summary.json"
TRIALS = "trials/"
SPEC = "spec.json"


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


def _read_json(store: Store, key: str) -> object | None:
    try:
        data: object = store.read_json(key)
        return data
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def load(location: str) -> SweepResults:
    """Summary (when written), trial records and the objective of one sweep."""
    uri = sweep_folder(location)
    store = Store(uri)
    try:
        raw_summary = _read_json(store, SUMMARY)
        keys = [k for k in store.list(TRIALS) if k.endswith(".json")]
        raw_trials = [_read_json(store, k) for k in keys]
        raw_spec = _read_json(store, SPEC)
    except StoreError as exc:
        raise ResultsError(str(exc)) from exc
    try:
        summary = SweepResult.model_validate(raw_summary) if raw_summary is not None else None
    except ValidationError as exc:
        raise ResultsError(f"{store.uri_for(SUMMARY)} is not a sweep summary: {exc}") from exc
    trials = []
    for raw in raw_trials:
        try:
            trials.append(TrialResult.model_validate(raw))
        except ValidationError:
            continue
    spec = None
    if raw_spec is not None:
        try:
            spec = SweepSpec.model_validate(raw_spec)
        except ValidationError:
            spec = None
    if summary is None and not trials:
        raise ResultsError(f"no sweep results at {uri} (no {SUMMARY}, no {TRIALS}*.json)")
    if summary is not None:
        objective = Objective.model_validate(
            {"metric": summary.objective_metric, "mode": summary.objective_mode}
        )
        trials = list(summary.trials)  # this run's trials (earlier runs live in archive/)
        planned = summary.trials_planned
    else:
        objective = spec.objective if spec else Objective()
        planned = spec.planned_trials() if spec else None
    max_steps = spec.budget.smoke_steps if spec else None
    return SweepResults(uri, summary, trials, objective, planned, max_steps, spec)
