"""What a finished rehearsal reports (:class:`RehearsalResult`), from the run or read back
from its evidence in the store (no JAX: the CLI's ``rehearsal show`` reads it)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from tunix_rt.api.base import ApiModel
from tunix_rt.api.common import Phase
from tunix_rt.api.rehearsal import RehearsalStatus
from tunix_rt.contract.layout import RehearsalFiles, RehearsalLayout
from tunix_rt.contract.rehearsal_evidence import read_rehearsal_evidence
from tunix_rt.scoring import PRIMARY_SCORE
from tunix_rt.storage import Store


class RehearsalResult(ApiModel):
    """What a finished rehearsal reports: the score and where its evidence lives."""

    name: str
    namespace: str
    phase: Phase = Phase.SUCCEEDED
    message: str | None = None
    primary_score: float | None = None
    metrics: dict[str, float | None] = Field(default_factory=dict)
    steps: int = 0
    wall_seconds: float = 0.0
    evidence_uri: str = Field(description="Store URI of the evidence folder.")
    bundle_uri: str | None = Field(None, description="Store URI of the submission zip.")
    bundle_name: str | None = None
    evidence_files: list[str] = Field(default_factory=list, description="URIs, sorted.")
    log_uri: str | None = Field(None, description="Store URI of kaggle_output_log.txt.")
    local_dir: str | None = Field(None, description="Local evidence folder, when kept.")
    source_sweep: str | None = None
    source_trial: str | None = None
    params: dict[str, Any] | None = None
    config_sha256: str | None = None
    commit_sha: str | None = None
    start_time: datetime | None = None
    completion_time: datetime | None = None

    def to_status(self, observed_generation: int | None = None) -> RehearsalStatus:
        """The Rehearsal status this result implies (phase, score, URIs, provenance)."""
        shared = {name: getattr(self, name) for name in _STATUS_FIELDS}
        return RehearsalStatus(observed_generation=observed_generation, **shared)


_STATUS_FIELDS = (
    "phase",
    "message",
    "source_sweep",
    "source_trial",
    "params",
    PRIMARY_SCORE,
    "evidence_uri",
    "bundle_uri",
    "evidence_files",
    "log_uri",
    "start_time",
    "completion_time",
)
"""The fields a result hands to its Rehearsal's status, as they are."""


def result_from_store(storage: str | Store, namespace: str, name: str) -> RehearsalResult | None:
    """Rebuild a finished rehearsal's result from its evidence in the store (no JAX).

    None when there is no evidence (no eval_summary.json) under the rehearsal's prefix.
    Logs of failed attempts (``failed/``) and earlier runs' evidence (``archive/``) are not
    part of it; see ``tunix_rt.rehearsal.failure_from_store``. An evidence file that is
    there but unreadable raises UnreadableEvidence naming it; StoreError propagates.
    """
    store = storage if isinstance(storage, Store) else Store(storage)
    layout = RehearsalLayout.of(namespace, name)
    found = read_rehearsal_evidence(RehearsalFiles(store, layout))
    found.check()
    summary = found.eval_summary
    if summary is None:
        return None
    manifest = found.manifest or {}
    source = manifest.get("source") or {}
    bundle = found.bundle_uri
    return RehearsalResult(
        name=name,
        namespace=namespace,
        primary_score=summary.get(PRIMARY_SCORE),
        metrics=summary.get("metrics") or {},
        steps=int(summary.get("steps") or 0),
        wall_seconds=float(summary.get("wall_seconds") or 0.0),
        evidence_uri=store.uri_for(layout.prefix),
        bundle_uri=bundle,
        bundle_name=bundle.rsplit("/", 1)[-1] if bundle else None,
        evidence_files=found.uris,
        log_uri=found.log_uri,
        source_sweep=source.get("sweep"),
        source_trial=source.get("trial"),
        params=source.get("params"),
        config_sha256=manifest.get("config_sha256"),
        commit_sha=manifest.get("commit_sha"),
        start_time=manifest.get("start_time"),
        completion_time=manifest.get("end_time"),
    )
