"""A sweep's results as Python objects, from what a person types: a folder, a
summary.json, an evidence folder, or a URI (``file://``, ``s3://``, ``gs://``).

    from tunix_rt import results

    sweep = results.load("runs/local/sweep-smoke")
    sweep.best.params, sweep.best.primary_score     # the best trial (None while none scored)
    for trial in sweep.trials:                      # TrialResult: params, metrics, state, …
        print(trial.trial_id, trial.params, trial.primary_score)
    sweep.curve(sweep.best.trial_id)                # every report: step, loss, primary_score…
    sweep.rows()                                    # flat dicts (params.*, metrics.*): pandas
    sweep.to_json(), sweep.to_csv(open("trials.csv", "w"))

``tunix-rt sweep show LOCATION --json`` / ``--csv`` print the same. Curves come from the
trial records (every report, kept in the store as the trial runs, so they outlive the
RayJob); for records written before curves were kept, from Ray Tune's own per-trial
``result.json`` under the sweep's ``ray/`` folder, which is in the store too.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from tunix_rt.api.sweep import SweepSpec
from tunix_rt.api.sweep_goals import Objective
from tunix_rt.api.trial import SweepResult, TrialResult
from tunix_rt.contract.best_trial import objective_value, ranked, sweep_best
from tunix_rt.contract.file_names import (
    RAY_RESULT_JSON,
    SUMMARY_JSON,
    SWEEP_SUMMARY_JSON,
    TRIALS_DIR,
)
from tunix_rt.contract.layout import SweepFiles, SweepLayout, read_sweep_summary
from tunix_rt.reading import RECORD, ReadError, load_json
from tunix_rt.scoring import PRIMARY_SCORE
from tunix_rt.storage import Store, StoreError


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
    unreadable: dict[str, str] = field(default_factory=dict)
    """Files that are there but could not be read (trial records, the spec): URI -> why
    (too large, cut short, malformed JSON, not a valid trial record). Never silently
    dropped: ``tunix-rt sweep show`` lists them and exits 3."""

    @property
    def best(self) -> TrialResult | None:
        """The finished trial with the best objective (the summary's pick once written)."""
        return sweep_best(self.trials, self.objective, self.summary)

    def curve(self, trial_id: str) -> list[dict[str, float]]:
        """Every report of one trial, in order (its metrics at each step): its record's
        curve, else Ray Tune's ``ray/<trial>/result.json``; empty where neither is kept."""
        record = next((t for t in self.trials if t.trial_id == trial_id), None)
        if record is not None and record.curve:
            return [dict(point) for point in record.curve]
        from tunix_rt.tune.records import numeric_metrics  # the operator never loads tune

        store = Store(self.uri)
        try:
            text = store.read_text(SweepLayout("").ray_trial_key(trial_id, RAY_RESULT_JSON))
        except StoreError:
            return []
        points = []
        for line in text.splitlines():
            try:
                report = load_json(line, RAY_RESULT_JSON, RECORD)
            except ReadError:
                continue  # a report cut by an interruption (or not one at all)
            if isinstance(report, dict):
                points.append(numeric_metrics(report))
        return points

    @property
    def accelerator_hours(self) -> float:
        """Accelerator-hours the sweep used: the summary's count, else the records' sum."""
        if self.summary is not None and self.summary.accelerator_hours_used is not None:
            return self.summary.accelerator_hours_used
        return sum(t.accelerator_hours for t in self.trials)

    def rows(self) -> list[dict[str, Any]]:
        """One flat dict a trial, best first: id, state, the objective, steps, wall
        seconds, ``params.<name>`` and ``metrics.<name>`` (for pandas or a CSV)."""
        out = []
        for trial in ranked(self.trials, self.objective):
            row: dict[str, Any] = {
                "trial_id": trial.trial_id,
                "state": trial.state.value,
                PRIMARY_SCORE: trial.primary_score,
                "objective": objective_value(trial, self.objective),
                "steps": trial.steps,
                "wall_seconds": round(trial.wall_seconds, 3),
                "accelerator_hours": round(trial.accelerator_hours, 6),
                "preemptions": trial.preemptions,
                "error": trial.error,
            }
            row.update({f"params.{k}": v for k, v in sorted(trial.params.items())})
            row.update({f"metrics.{k}": v for k, v in sorted(trial.metrics.items())})
            out.append(row)
        return out

    def to_json(self) -> dict[str, Any]:
        """The sweep as JSON-ready data: where, how it ended, the objective, every trial."""
        best = self.best
        return {
            "uri": self.uri,
            "sweep": self.summary.sweep if self.summary else None,
            "phase": self.summary.phase.value if self.summary else None,
            "message": self.summary.message if self.summary else None,
            "reason": self.summary.reason if self.summary else None,
            "acceleratorHoursUsed": self.accelerator_hours,
            "objective": {"metric": self.objective.metric, "mode": self.objective.mode},
            "trialsPlanned": self.planned,
            "unreadable": [{"uri": uri, "problem": why} for uri, why in self.unreadable.items()],
            "bestTrial": best.trial_id if best else None,
            "bestParams": dict(best.params) if best else None,
            "primaryScore": best.primary_score if best else None,
            "trials": [t.model_dump(mode="json", by_alias=True) for t in self.trials],
        }

    def to_csv(self, out: TextIO) -> None:
        """:meth:`rows` as CSV, one column per key any trial has."""
        rows = self.rows()
        columns: list[str] = []
        for row in rows:
            columns += [key for key in row if key not in columns]
        writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


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


def load(location: str) -> SweepResults:
    """Summary (when written), trial records and the objective of one sweep.

    The store is opened at the sweep's own folder. Unreadable trial records and spec are
    left out of ``trials`` and listed in ``unreadable``; an unreadable summary, trial
    records that are all unreadable, or nothing at all, is a :class:`ResultsError`.
    """
    uri = sweep_folder(location)
    files = SweepFiles(Store(uri), SweepLayout(""))
    try:
        summary = files.summary()
        if summary is None and not files.problems:  # an evidence folder: a finished sweep
            stored = read_sweep_summary(files, files.layout.key(SWEEP_SUMMARY_JSON))
            summary = stored.result if stored is not None else None
        problems = list(files.problems)
        trials = files.trials()
        spec = files.spec()
    except StoreError as exc:
        raise ResultsError(str(exc)) from exc
    if summary is None and problems:
        raise ResultsError(problems[0])
    unreadable = {files.store.uri_for(key): why for key, why in files.unreadable.items()}
    if summary is None and not trials and files.damaged_trials:
        count = len(files.damaged_trials)
        first = next(iter(unreadable.items()))
        raise ResultsError(
            f"every trial record at {uri} is unreadable ({count} of {count}; none is "
            f"missing): {first[0]}: {first[1]}" + (f" (and {count - 1} more)" if count > 1 else "")
        )
    if summary is None and not trials:
        raise ResultsError(f"no sweep results at {uri} (no {SUMMARY_JSON}, no {TRIALS_DIR}/*.json)")
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
    return SweepResults(uri, summary, trials, objective, planned, max_steps, spec, unreadable)
