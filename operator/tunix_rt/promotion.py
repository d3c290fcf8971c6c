"""A finished sweep's best trial as the two files to commit: its trainer config and a
Rehearsal manifest that runs it inline.

One definition of what those files hold, for every way they leave: ``tunix-rt promote
-o`` writes them to a folder, ``tunix-rt promote --git`` and the web view's Promote
button commit them to a git repository (:mod:`tunix_rt.gitops`). The config itself is
:func:`tunix_rt.contract.best_config.best_trial_config`'s.

:func:`load_finished` reads the store; :func:`promoted_files` is pure (the same sweep and
options give the same text), so the folder and the git paths cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tunix_rt import results as results_mod
from tunix_rt.api.common import DEFAULT_STORAGE
from tunix_rt.api.errors import validation_errors
from tunix_rt.api.names import SOURCE_SWEEP_ANNOTATION, SOURCE_TRIAL_ANNOTATION
from tunix_rt.api.rehearsal import Rehearsal
from tunix_rt.api.trainer import TrainerConfig
from tunix_rt.api.trial import SweepResult
from tunix_rt.contract.best_config import best_trial_config
from tunix_rt.contract.exits import ExitCode
from tunix_rt.contract.file_names import (
    EVIDENCE_DIR,
    REPORT_HTML,
    SUMMARY_JSON,
    SWEEP_SUMMARY_JSON,
)
from tunix_rt.contract.layout import latest_bundle
from tunix_rt.display_text import format_params, format_score
from tunix_rt.reading import kube_yaml
from tunix_rt.scoring import PRIMARY_SCORE
from tunix_rt.storage import Store, StoreError
from tunix_rt.storage.redact import redact_uri

SOURCE_SCORE = "tunixrt.io/source-primary-score"


class PromotionError(RuntimeError):
    """Why a sweep cannot be promoted: one line a problem, and the exit code it means
    (INVALID: an option the user gave; FAILED: the sweep's own results)."""

    def __init__(self, lines: list[str], exit_code: ExitCode = ExitCode.FAILED) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines
        self.exit_code = exit_code


class EvidenceLinks(BaseModel):
    """Where a person checks why this trial won (credentials never shown)."""

    summary: str
    """The sweep's summary.json (or an evidence folder's sweep_summary.json)."""
    report: str | None = None
    """The sweep evidence's report.html (trial table, score plot), when written."""
    bundle: str | None = None
    """The sweep evidence's reproducible zip, when written."""

    def lines(self) -> list[str]:
        """``what: URI`` for each link there is."""
        named = [("summary", self.summary), ("report", self.report), ("bundle", self.bundle)]
        return [f"{what}: {uri}" for what, uri in named if uri]


class RehearsalOptions(BaseModel):
    """What a person may set in the promoted Rehearsal; None: the sweep's own."""

    model_config = ConfigDict(frozen=True)

    steps: int | None = Field(
        None, ge=1, description="maxSteps raised to this (a longer run than the smoke cap)."
    )
    name: str | None = Field(None, description="The Rehearsal's name (default <sweep>-best).")
    storage: str | None = Field(None, description="Its evidence store (default: the sweep's).")


@dataclass(frozen=True)
class FinishedSweep:
    """A sweep that ended with a best trial: what promoting it needs to know."""

    uri: str
    """The sweep's results folder."""
    summary: SweepResult
    storage: str
    """The sweep's store: the rehearsal's default storage."""
    evidence: EvidenceLinks

    @property
    def source(self) -> str:
        return f"{self.summary.namespace}/{self.summary.sweep}"

    @property
    def trial_id(self) -> str:
        return self.summary.best_trial_id or ""

    @property
    def score(self) -> str:
        return format_score(self.summary.primary_score)

    @property
    def params(self) -> str:
        return format_params(self.summary.best_params or {})


@dataclass(frozen=True)
class PromotedFiles:
    """The two files' text, and what they hold."""

    rehearsal_name: str
    trainer: TrainerConfig
    trainer_text: str
    rehearsal_text: str


def load_finished(location: str) -> FinishedSweep:
    """The sweep at ``location`` (a folder, summary.json or URI); PromotionError (exit 1)
    unless it finished with a best trial."""
    try:
        results = results_mod.load(location)
    except (results_mod.ResultsError, StoreError) as exc:
        raise PromotionError([str(exc)]) from None
    summary = results.summary
    if summary is None:
        raise PromotionError([f"{results.uri}: no summary yet: the sweep has not finished"])
    if summary.best_trial_id is None or summary.best_params is None:
        raise PromotionError([f"sweep {summary.sweep} has no best trial ({summary.message})"])
    storage = results.spec.storage if results.spec else DEFAULT_STORAGE
    return FinishedSweep(results.uri, summary, storage, evidence_links(results.uri))


def evidence_links(uri: str) -> EvidenceLinks:
    """The summary, report and zip of the sweep whose folder (or evidence folder) is
    ``uri``; a report or zip the store cannot show is left out, never an error."""
    store = Store(uri)
    in_folder = _exists(store, SUMMARY_JSON)
    summary_key = SUMMARY_JSON if in_folder is not False else SWEEP_SUMMARY_JSON
    prefix = EVIDENCE_DIR if summary_key == SUMMARY_JSON else ""
    report_key = f"{prefix}/{REPORT_HTML}".lstrip("/")
    report = store.uri_for(report_key) if _exists(store, report_key) else None
    try:
        bundle = latest_bundle(store, prefix)
    except StoreError:
        bundle = None
    shown = {"summary": store.uri_for(summary_key), "report": report, "bundle": bundle}
    return EvidenceLinks.model_validate({k: redact_uri(v) if v else None for k, v in shown.items()})


def _exists(store: Store, key: str) -> bool | None:
    """Whether ``key`` is in the store; None when the store cannot say."""
    try:
        return store.exists(key)
    except StoreError:
        return None


def promoted_files(
    sweep: FinishedSweep,
    *,
    trainer_path: str,
    rehearsal_path: str,
    options: RehearsalOptions = RehearsalOptions(),
) -> PromotedFiles:
    """Both files' text: the best trial's trainer config and the Rehearsal that runs it,
    as ``options`` set them. The paths are where the files will be, as the comments show
    them. PromotionError when the config or the manifest is invalid."""
    summary, steps = sweep.summary, options.steps
    trainer = best_config(summary, steps)
    header = (
        f"# Trainer config promoted from sweep {sweep.source}, best trial {sweep.trial_id}\n"
        f"# ({PRIMARY_SCORE}={sweep.score}; {sweep.params}).\n"
        f"# Results: {sweep.uri}\n"
        + (f"# maxSteps raised to {steps} for the rehearsal (--steps).\n" if steps else "")
    )
    name = rehearsal_name(sweep, options.name)
    manifest = rehearsal_manifest(name, sweep, trainer, options.storage or sweep.storage)
    rehearsal_text = (
        f"# Rehearsal of sweep {sweep.source}'s best trial {sweep.trial_id} "
        f"({PRIMARY_SCORE}={sweep.score}).\n"
        f"# Run it: tunix-rt rehearsal run {rehearsal_path}   or   kubectl apply -f "
        f"{rehearsal_path}\n" + _dump(manifest)
    )
    return PromotedFiles(name, trainer, header + _dump(trainer.to_wire()), rehearsal_text)


def rehearsal_name(sweep: FinishedSweep, name: str | None) -> str:
    """``name``, else ``<sweep>-best``, cut to a Kubernetes name's 63 characters."""
    return (name or f"{sweep.summary.sweep}-best")[:63].rstrip("-")


def best_config(summary: SweepResult, steps: int | None) -> TrainerConfig:
    """The best trial's trainer config, ``maxSteps`` raised to ``steps``."""
    try:
        trainer = best_trial_config(
            summary.base_config, summary.best_params or {}, summary.best_schedule
        )
        if steps is not None:
            trainer = TrainerConfig.model_validate(trainer.model_dump() | {"max_steps": steps})
    except ValidationError as exc:
        where = "--steps" if steps is not None else f"sweep {summary.sweep}'s best params"
        lines = [f"{where}: {path}: {msg}" for path, msg in validation_errors(exc, "trainer")]
        raise PromotionError(
            lines, ExitCode.INVALID if steps is not None else ExitCode.FAILED
        ) from None
    except ValueError as exc:  # best params that are no trainer field (with_params)
        raise PromotionError([f"sweep {summary.sweep}'s best params: {exc}"]) from None
    return trainer


def rehearsal_manifest(
    name: str, sweep: FinishedSweep, trainer: TrainerConfig, storage: str
) -> dict[str, Any]:
    """The Rehearsal that runs ``trainer`` inline, annotated with where it came from;
    PromotionError (exit 2) when it is invalid (a bad name or storage)."""
    manifest: dict[str, Any] = {
        "apiVersion": "tunixrt.io/v1alpha1",
        "kind": "Rehearsal",
        "metadata": {
            "name": name,
            "annotations": {
                SOURCE_SWEEP_ANNOTATION: sweep.summary.sweep,
                SOURCE_TRIAL_ANNOTATION: sweep.trial_id,
                SOURCE_SCORE: sweep.score,
            },
        },
        "spec": {"trainer": trainer.to_wire(), "storage": storage},
    }
    try:
        Rehearsal.model_validate(manifest)
    except ValidationError as exc:
        lines = [f"Rehearsal {name}: {path}: {msg}" for path, msg in validation_errors(exc)]
        raise PromotionError(lines, ExitCode.INVALID) from None
    return manifest


def _dump(data: object) -> str:
    return kube_yaml.dump(data, sort_keys=False, width=100)
