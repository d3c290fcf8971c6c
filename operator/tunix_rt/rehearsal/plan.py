"""The plan of a rehearsal: the exact config it runs and where that config came from.

    plan = plan_from_spec(spec, name=..., namespace=..., storage=...)

The config is ``spec.trainer``, or a Sweep's best trial (``spec.fromSweep``: its summary
read from the store, the config rebuilt by
:func:`tunix_rt.contract.best_config.best_trial_config`), with ``spec.overrides`` on top.
Reading a plan from a file is :mod:`tunix_rt.rehearsal.plan_file`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from tunix_rt.api.common import DEFAULT_STORAGE
from tunix_rt.api.errors import ManifestError
from tunix_rt.api.rehearsal import EvidenceOptions, RehearsalSpec, SourceTrial
from tunix_rt.api.trainer import TrainerConfig
from tunix_rt.api.trial import SweepResult
from tunix_rt.contract.best_config import best_trial_config
from tunix_rt.contract.layout import (
    LOCAL_NAMESPACE,
    RehearsalLayout,
    SweepFiles,
    SweepLayout,
    read_sweep_summary,
)
from tunix_rt.rehearsal.errors import RehearsalError
from tunix_rt.storage import Store, StoreError

TIMEOUT_FIELD = "spec.timeoutSeconds"


@dataclass
class RehearsalPlan:
    """Everything a run needs, resolved: the exact config and where it came from."""

    name: str
    namespace: str
    storage: str
    config: TrainerConfig
    config_path: str
    config_source_sha256: str | None = None
    overrides: dict[str, Any] | None = None
    evidence: EvidenceOptions = field(default_factory=EvidenceOptions)
    source_sweep: str | None = None
    source_trial: str | None = None
    source_params: dict[str, Any] | None = None
    source_score: float | None = None
    sweep_summary: dict[str, Any] | None = None
    """The source sweep's SweepResult (snake_case dict), for the report."""
    sweep_summary_bytes: bytes | None = None
    """The summary exactly as stored, copied into the evidence as sweep_summary.json."""
    summary_uri: str | None = None
    notes: list[str] = field(default_factory=list)
    timeout_seconds: float | None = None
    """Wall-clock limit of the run from its start (the trainer's deadline); None: none."""
    timeout_field: str = TIMEOUT_FIELD
    """Where the limit came from, for messages: spec.timeoutSeconds or --timeout-seconds."""

    @property
    def layout(self) -> RehearsalLayout:
        return RehearsalLayout.of(self.namespace, self.name)

    @property
    def prefix(self) -> str:
        return self.layout.prefix

    def source(self) -> dict[str, Any] | None:
        if not (self.source_sweep or self.source_trial):
            return None
        return {
            "sweep": self.source_sweep,
            "trial": self.source_trial,
            "params": self.source_params,
            "trial_primary_score": self.source_score,
            "summary_uri": self.summary_uri,
        }


def _overridden(config: TrainerConfig, overrides: Mapping[str, Any] | None) -> TrainerConfig:
    """``TrainerConfig.with_overrides`` (the one way overrides apply, as in admission); a
    bad override is a RehearsalError naming ``spec.overrides.<key>``."""
    try:
        return config.with_overrides(overrides)
    except ManifestError as exc:
        raise RehearsalError(str(exc)) from None


def _sweep_summary(store: Store, namespace: str, sweep: str) -> tuple[SweepResult, str, bytes]:
    """The source sweep's summary, its URI, and its bytes as stored (copied into the
    evidence unchanged, so read once)."""
    files = SweepFiles(store, SweepLayout.of(namespace, sweep))
    stored = read_sweep_summary(files, files.layout.summary_key)
    if stored is not None:
        return stored.result, stored.uri, stored.raw
    if files.problems:
        raise RehearsalError(files.problems[0])
    raise RehearsalError(
        f"sweep {sweep!r} has no summary at {store.uri_for(files.layout.summary_key)}: run "
        f"the sweep first (tunix-rt sweep run …) or check --storage/--namespace"
    )


@dataclass
class _Source:
    """Where a plan's config comes from: inline, or a sweep's best trial (its summary)."""

    config: TrainerConfig
    sweep: str | None
    trial: str | None
    summary: SweepResult | None = None
    summary_uri: str | None = None
    summary_bytes: bytes | None = None
    notes: list[str] = field(default_factory=list)

    def trial_record(self) -> tuple[dict[str, Any] | None, float | None]:
        """(params, primary_score) of the source trial, when the summary has it."""
        summary = self.summary
        if summary is None or not self.trial:
            return None, None
        params: dict[str, Any] | None = None
        score: float | None = None
        for trial in summary.trials:
            if trial.trial_id == self.trial:
                params, score = dict(trial.params), trial.primary_score
        if params is None and self.trial == summary.best_trial_id:
            params, score = dict(summary.best_params or {}), summary.primary_score
        return params, score


def _from_sweep(store: Store, namespace: str, sweep: str, given: SourceTrial) -> _Source:
    """The sweep's base config with its best trial's params (``spec.fromSweep``); a
    ``given`` source names it otherwise in the report."""
    summary, summary_uri, summary_bytes = _sweep_summary(store, namespace, sweep)
    if summary.best_trial_id is None or summary.best_params is None:
        raise RehearsalError(f"sweep {sweep!r} has no best trial yet ({summary_uri})")
    try:
        # base_config is the sweep's trial_config({}) (smoke cap included)
        config = best_trial_config(summary.base_config, summary.best_params, summary.best_schedule)
    except (ValidationError, ValueError) as exc:
        raise RehearsalError(f"{summary_uri}: cannot rebuild the trainer config: {exc}") from None
    trial = given.trial or summary.best_trial_id
    return _Source(
        config=config,
        sweep=given.sweep or sweep,
        trial=trial,
        summary=summary,
        summary_uri=summary_uri,
        summary_bytes=summary_bytes,
        notes=[f"config: sweep {sweep} base config + best trial {trial}"],
    )


def _inline(store: Store, namespace: str, config: TrainerConfig, given: SourceTrial) -> _Source:
    """``spec.trainer``; a named source sweep's summary is read for the report, if it can."""
    source = _Source(config=config, sweep=given.sweep, trial=given.trial)
    if given.sweep:
        try:
            source.summary, source.summary_uri, source.summary_bytes = _sweep_summary(
                store, namespace, given.sweep
            )
        except (RehearsalError, StoreError) as exc:
            source.notes.append(f"sweep summary unavailable, report without trial table: {exc}")
    return source


def plan_from_spec(
    spec: RehearsalSpec,
    *,
    name: str,
    namespace: str = LOCAL_NAMESPACE,
    storage: str | None = None,
    config_path: str = "<inline>",
    config_source_sha256: str | None = None,
    source: SourceTrial = SourceTrial(),
    max_steps: int | None = None,
    store: Store | None = None,
    timeout_seconds: float | None = None,
) -> RehearsalPlan:
    """Resolve a RehearsalSpec to a plan (reads the sweep summary from the store if needed).

    ``source``: the trial the config was promoted from (for ``fromSweep``, by default its
    best trial); ``timeout_seconds`` overrides ``spec.timeoutSeconds`` (the CLI's
    --timeout-seconds).
    """
    if timeout_seconds is not None and not timeout_seconds > 0:
        raise RehearsalError(f"--timeout-seconds must be positive, not {timeout_seconds}")
    storage_uri = storage or spec.storage or DEFAULT_STORAGE
    store = store or Store(storage_uri)
    if spec.from_sweep is not None:
        found = _from_sweep(store, namespace, spec.from_sweep, source)
    else:
        assert spec.trainer is not None
        found = _inline(store, namespace, spec.trainer, source)
    overrides = dict(spec.overrides or {})
    config = _overridden(found.config, overrides)
    if max_steps is not None:
        config = _overridden(config, {"maxSteps": max_steps})
        overrides["maxSteps"] = max_steps
    source_params, source_score = found.trial_record()
    return RehearsalPlan(
        name=name,
        namespace=namespace,
        storage=storage_uri,
        config=config,
        config_path=config_path,
        config_source_sha256=config_source_sha256,
        overrides=overrides or None,
        evidence=spec.evidence,
        source_sweep=found.sweep,
        source_trial=found.trial,
        source_params=source_params,
        source_score=source_score,
        sweep_summary=found.summary.model_dump(mode="json") if found.summary else None,
        sweep_summary_bytes=found.summary_bytes,
        summary_uri=found.summary_uri,
        notes=found.notes,
        timeout_seconds=timeout_seconds if timeout_seconds is not None else spec.timeout_seconds,
        timeout_field="--timeout-seconds" if timeout_seconds is not None else TIMEOUT_FIELD,
    )
