"""A finished training scored and written up: the evidence folder (eval_summary.json,
run_manifest.json, eval_rows.jsonl, sweep_summary.json, report.html), SHA256SUMS and
the verified zip under ``submission/``."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tunix_rt.api.trainer import TrainerConfig
from tunix_rt.contract.file_names import (
    EVAL_ROWS_JSONL,
    EVAL_SUMMARY_JSON,
    REPORT_HTML,
    RUN_MANIFEST_JSON,
    SUBMISSION_DIR,
    SWEEP_SUMMARY_JSON,
)
from tunix_rt.contract.numerics import numerics_record
from tunix_rt.evidence import (
    build_eval_summary,
    build_run_manifest,
    build_zip,
    render_report,
    verify_zip,
    write_sums,
)
from tunix_rt.evidence.failure import BAD_EVIDENCE_REASON
from tunix_rt.evidence.summary import row_dict, rows_jsonl
from tunix_rt.rehearsal.attempt import Attempt, seconds
from tunix_rt.rehearsal.errors import RehearsalError
from tunix_rt.rehearsal.plan import RehearsalPlan
from tunix_rt.rehearsal.run_log import RunLog
from tunix_rt.scoring import PRIMARY_SCORE, compute_primary_score
from tunix_rt.storage import Store


@dataclass
class RunEvidence:
    """What one finished training produced, scored and written up."""

    rows: list[dict[str, Any]]
    score: float | None
    steps: int
    finished: datetime
    wall: float
    summary: dict[str, Any] = field(default_factory=dict)
    manifest: dict[str, Any] = field(default_factory=dict)


def score(plan: RehearsalPlan, outcome: Any, log: RunLog, attempt: Attempt) -> RunEvidence:
    """primary_score from the eval rows (``tunix_rt.scoring``, whichever trainer ran)."""
    finished = datetime.now(UTC)
    wall = attempt.elapsed()
    if attempt.deadline is not None and time.monotonic() > attempt.deadline:
        log(
            f"WARNING: finished {time.monotonic() - attempt.deadline:.0f} s past "
            f"{plan.timeout_field} ({seconds(plan.timeout_seconds or 0)}); a started "
            "final evaluation is not interrupted"
        )
    rows = [row_dict(r) for r in getattr(outcome, "eval_rows", [])]
    score = compute_primary_score(rows)
    trainer_score = getattr(outcome, PRIMARY_SCORE, None)
    log(
        f"eval: {len(rows)} rows, primary_score {score} "
        f"(trainer reported {trainer_score}), steps {getattr(outcome, 'steps', 0)}"
    )
    if trainer_score is not None and score is not None and abs(trainer_score - score) > 1e-12:
        log("WARNING: the trainer's primary_score differs from the eval rows' score")
    steps = int(getattr(outcome, "steps", 0) or 0)
    return RunEvidence(rows=rows, score=score, steps=steps, finished=finished, wall=wall)


def write_up(
    plan: RehearsalPlan,
    folder: Path,
    store: Store,
    command: list[str],
    attempt: Attempt,
    outcome: Any,
    evidence: RunEvidence,
) -> None:
    """eval_summary.json, run_manifest.json, eval_rows.jsonl, sweep_summary.json and
    report.html into the evidence folder (as the plan's evidence options say)."""
    dataset = _as_dict(getattr(outcome, "dataset", None))
    model_id = str(getattr(outcome, "model_id", "") or "unknown")
    wall = evidence.wall
    evidence.summary = build_eval_summary(
        run_name=plan.name,
        rows=evidence.rows,
        metrics=dict(getattr(outcome, "metrics", {}) or {}),
        model_id=model_id,
        dataset=dataset,
        steps=evidence.steps,
        wall_seconds=float(getattr(outcome, "wall_seconds", wall) or wall),
        trainer_primary_score=getattr(outcome, PRIMARY_SCORE, None),
        history=[dict(p) for p in getattr(outcome, "history", []) or []],
        max_trace_tokens=plan.config.eval.max_trace_tokens,
        rows_file=EVAL_ROWS_JSONL if plan.evidence.include_eval_rows else None,
    )
    evidence.manifest = build_run_manifest(
        run_name=plan.name,
        namespace=plan.namespace,
        commit=attempt.commit,
        model_id=model_id,
        dataset=dataset,
        config=plan.config.to_wire(),
        config_path=plan.config_path,
        config_source_sha256=plan.config_source_sha256,
        overrides=plan.overrides,
        command=command,
        seed=plan.config.seed,
        start_time=attempt.started,
        end_time=evidence.finished,
        wall_seconds=wall,
        steps=evidence.steps,
        devices=[str(d) for d in getattr(outcome, "devices", []) or []],
        source=plan.source(),
        storage_uri=store.uri,
        storage_prefix=plan.prefix,
        backend=plan.config.backend,
        model_source=model_source_of(outcome, plan.config, model_id),
        numerics=numerics_record([str(d) for d in getattr(outcome, "devices", []) or []]),
    )
    _write_files(plan, folder, evidence)


def model_source_of(outcome: Any, config: TrainerConfig, model_id: str) -> dict[str, Any] | None:
    """What the manifest records as ``model_source``: the backend's own account (Tunix:
    config name, checkpoint and digest, versions; python: what the entrypoint declared
    and its code), or for the built-in trainer its model config, from random init."""
    source = getattr(outcome, "model_source", None)
    if source is not None:
        return _as_dict(source)
    if config.backend != "builtin":
        return None
    return {
        "name": model_id,
        "config": config.model.to_wire(),
        "checkpoint": None,
        "checkpoint_sha256": None,
        "random_init": True,
        "versions": {},
    }


def _write_files(plan: RehearsalPlan, folder: Path, evidence: RunEvidence) -> None:
    _write_json(folder / EVAL_SUMMARY_JSON, evidence.summary)
    _write_json(folder / RUN_MANIFEST_JSON, evidence.manifest)
    if plan.evidence.include_eval_rows:
        (folder / EVAL_ROWS_JSONL).write_text(rows_jsonl(evidence.rows), encoding="utf-8")
    if plan.sweep_summary_bytes is not None:
        (folder / SWEEP_SUMMARY_JSON).write_bytes(plan.sweep_summary_bytes)
    if plan.evidence.report:
        html = render_report(
            manifest=evidence.manifest,
            summary=evidence.summary,
            rows=evidence.rows,
            sweep=plan.sweep_summary,
        )
        (folder / REPORT_HTML).write_text(html, encoding="utf-8")


def package(plan: RehearsalPlan, folder: Path) -> Path | None:
    """SHA256SUMS, then the zip under submission/ (when the plan packages), verified."""
    names = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    write_sums(folder, names)
    if not plan.evidence.package:
        return None
    bundle = build_zip(folder, folder / SUBMISSION_DIR)
    check = verify_zip(bundle)
    if not check.ok:
        raise RehearsalError(
            f"rehearsal {plan.name}: bad evidence: the bundle {bundle.name} does not "
            f"verify: {check.errors}",
            reason=BAD_EVIDENCE_REASON,
        )
    return bundle


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def _as_dict(obj: Any) -> dict[str, Any]:
    if obj is None:
        return {}
    if isinstance(obj, Mapping):
        return dict(obj)
    if hasattr(obj, "model_dump"):
        dumped: dict[str, Any] = obj.model_dump(mode="json")
        return dumped
    if hasattr(obj, "_asdict"):
        return dict(obj._asdict())
    return dict(vars(obj))
