"""The evidence of a finished Sweep: the folder and zip that show how its best trial won.

Layout (also the zip's content)::

    run_manifest.json   kind "sweep": commit, the Sweep spec as config, dataset, versions
    sweep_summary.json  every trial ranked, the best trial and its params (SweepResult)
    best_config.json    the best trial's full trainer config, ready to promote
    trials/<id>.json    each trial's record, byte for byte as the store holds it (a trial
                        reused by a warm start: as warm_start.json holds it, reusedFrom set)
    warm_start.json     a warm-started sweep's: what it reused and skipped, and why
    sweep_log.txt       the driver's log: trial starts, scores, failures, the verdict
    report.html         the trial table and a primary_score-per-trial plot
    SHA256SUMS          checksums of all of the above
    submission/<zip>    the reproducible zip (``tunix_rt_<sweep>_<date>_<sha>.zip``)

Pure Python (no Ray, no JAX): the driver calls it after the last trial, tests call it
with hand-made trials.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any

from tunix_rt.api.trial import SweepResult, TrialResult, WarmStartRecord
from tunix_rt.contract.best_config import best_trial_config
from tunix_rt.contract.file_names import (
    BEST_CONFIG_JSON,
    REPORT_HTML,
    RUN_MANIFEST_JSON,
    SUBMISSION_DIR,
    SWEEP_LOG_TXT,
    SWEEP_SUMMARY_JSON,
    TRIALS_DIR,
    WARM_START_JSON,
)
from tunix_rt.evidence.checksums import write_sums
from tunix_rt.evidence.manifest import CommitInfo, build_run_manifest
from tunix_rt.evidence.package import PackageError, build_zip, verify_zip
from tunix_rt.evidence.report import render_sweep_report


@dataclass(frozen=True)
class SweepRunFacts:
    """What the driver knows about the run that the summary does not say (named as the
    run manifest's arguments: :meth:`manifest_args`)."""

    spec: dict[str, Any]
    """The Sweep spec, wire form (the manifest's ``config``)."""
    config_path: str
    command: list[str]
    commit: CommitInfo
    model_id: str
    dataset: dict[str, Any]
    seed: int
    devices: list[str]
    start_time: datetime
    end_time: datetime
    wall_seconds: float
    storage_uri: str
    storage_prefix: str
    numerics: dict[str, Any] | None = None
    """What the trials pinned and the driver's CPU (``numerics_record``, scope driver)."""

    def manifest_args(self) -> dict[str, Any]:
        """The facts as :func:`build_run_manifest` takes them: each under its own name, the
        spec as ``config``."""
        args = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "spec"}
        return args | {"config": self.spec}


def _trainer(facts: SweepRunFacts) -> dict[str, Any]:
    trainer = facts.spec.get("trainer")
    return trainer if isinstance(trainer, dict) else {}


def best_config(summary: SweepResult) -> dict[str, Any] | None:
    """The best trial's trainer config (:func:`best_trial_config`), wire form."""
    if summary.best_params is None or not summary.base_config:
        return None
    return best_trial_config(
        summary.base_config, summary.best_params, summary.best_schedule
    ).to_wire()


def summary_bytes(summary: SweepResult) -> bytes:
    """The summary exactly as ``Store.write_json`` writes summary.json (same bytes)."""
    return wire_bytes(summary)


def wire_bytes(record: SweepResult | TrialResult) -> bytes:
    """A record as ``Store.write_json`` writes it (same bytes)."""
    return (json.dumps(record.to_wire(), indent=2, sort_keys=True) + "\n").encode()


def _dump(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_sweep_evidence(
    folder: Path,
    *,
    summary: SweepResult,
    trial_files: dict[str, bytes],
    log_text: str,
    facts: SweepRunFacts,
    warm_start: bytes | None = None,
) -> Path:
    """Write the evidence folder and its zip into ``folder`` (empty); return the zip path.

    ``trial_files`` maps trial id to the record's bytes as stored, so the bundle's
    checksums vouch for exactly what the operator and the CLI read; ``warm_start``: the
    sweep's ``warm_start.json`` as stored (None: no warm start).
    """
    if folder.exists() and any(folder.iterdir()):
        raise PackageError(f"refusing to write sweep evidence into {folder}: it is not empty")
    folder.mkdir(parents=True, exist_ok=True)
    # no model_source: each trial's record says where its model came from
    manifest = build_run_manifest(
        kind="sweep",
        run_name=summary.sweep,
        namespace=summary.namespace,
        steps=sum(t.steps for t in summary.trials),
        backend=_trainer(facts).get("backend") or "builtin",
        **facts.manifest_args(),
    )
    summary_wire = summary.to_wire()
    (folder / RUN_MANIFEST_JSON).write_text(_dump(manifest), encoding="utf-8")
    (folder / SWEEP_SUMMARY_JSON).write_bytes(summary_bytes(summary))
    best = best_config(summary)
    if best is not None:
        (folder / BEST_CONFIG_JSON).write_text(_dump(best), encoding="utf-8")
    trials = folder / TRIALS_DIR
    trials.mkdir()
    for trial_id, data in sorted(trial_files.items()):
        TrialResult.model_validate_json(data)  # only records the readers accept go in
        (trials / f"{trial_id}.json").write_bytes(data)
    (folder / SWEEP_LOG_TXT).write_text(log_text, encoding="utf-8")
    if warm_start is not None:
        WarmStartRecord.model_validate_json(warm_start)  # only what the readers accept
        (folder / WARM_START_JSON).write_bytes(warm_start)
    html = render_sweep_report(manifest=manifest, summary=summary_wire, best_config=best)
    (folder / REPORT_HTML).write_text(html, encoding="utf-8")
    names = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    write_sums(folder, names)
    bundle = build_zip(folder, folder / SUBMISSION_DIR)
    check = verify_zip(bundle)
    if not check.ok:
        raise PackageError(f"the sweep bundle {bundle.name} does not verify: {check.errors}")
    return bundle
