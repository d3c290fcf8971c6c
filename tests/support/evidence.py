"""Helpers: a realistic evidence folder built with the evidence builders (no training)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tunix_rt.contract.file_names import (
    EVAL_ROWS_JSONL,
    EVAL_SUMMARY_JSON,
    KAGGLE_OUTPUT_LOG_TXT,
    REPORT_HTML,
    RUN_MANIFEST_JSON,
)
from tunix_rt.evidence import build_eval_summary, build_run_manifest, render_report, write_sums
from tunix_rt.evidence.manifest import CommitInfo
from tunix_rt.evidence.summary import rows_jsonl

CONFIG = {"learningRate": 0.003, "maxSteps": 20, "model": {"layers": 1, "width": 32}}
DATASET = {"name": "dev-reasoning-v2", "sha256": "cd" * 32, "train_rows": 256, "eval_rows": 4}


def sample_rows() -> list[dict[str, Any]]:
    rows = []
    for i in range(4):
        ok = i != 3
        rows.append(
            {
                "index": i,
                "prompt": f"{i}+1=?",
                "expected_answer": str(i + 1),
                "output": f"<reasoning>{i}+1</reasoning><answer>{i + 1 if ok else 0}</answer>",
                "reasoning": f"{i}+1",
                "answer": str(i + 1 if ok else 0),
                "answer_correctness": 1 if ok else 0,
                "format_valid": True,
                "trace_tokens": 9,
                "hit_cap": False,
            }
        )
    return rows


def sample_manifest(**overrides: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "run_name": "demo-run",
        "namespace": "local",
        "commit": CommitInfo("0123456789abcdef0123456789abcdef01234567", False, "git"),
        "model_id": "tunix-rt-decoder-l1-w32",
        "dataset": DATASET,
        "config": CONFIG,
        "config_path": "examples/rehearsal.yaml",
        "config_source_sha256": "ef" * 32,
        "overrides": None,
        "command": ["tunix-rt", "rehearsal", "run", "examples/rehearsal.yaml"],
        "seed": 0,
        "start_time": datetime(2025, 3, 4, 10, 0, 0, tzinfo=UTC),
        "end_time": datetime(2025, 3, 4, 10, 5, 0, tzinfo=UTC),
        "wall_seconds": 300.0,
        "steps": 20,
        "devices": ["TFRT_CPU_0"],
        "source": None,
        "storage_uri": "file:///tmp/runs",
        "storage_prefix": "local/rehearsals/demo-run",
        "versions": {
            "python": "3.11.9",
            "tunix-rt": "0.1.0",
            "jax": "0.6.0",
            "jaxlib": "0.6.0",
            "flax": "0.10.0",
            "optax": "0.2.4",
            "ray": "2.40.0",
            "numpy": "2.0.0",
        },
        "environ": {},
    }
    kwargs.update(overrides)
    return build_run_manifest(**kwargs)


def sample_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return build_eval_summary(
        run_name="demo-run",
        rows=rows,
        metrics={"format_valid_rate": 1.0, "cap_hit_rate": 0.0, "nan_metric": float("nan")},
        model_id="tunix-rt-decoder-l1-w32",
        dataset=DATASET,
        steps=20,
        wall_seconds=300.0,
        trainer_primary_score=0.75,
        history=[{"step": 0, "loss": 3.0}, {"step": 10, "loss": 1.0}, {"step": 20, "loss": 0.5}],
        max_trace_tokens=24,
    )


def write_evidence(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rows = sample_rows()
    manifest = sample_manifest()
    summary = sample_summary(rows)
    (folder / RUN_MANIFEST_JSON).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    (folder / EVAL_SUMMARY_JSON).write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    (folder / EVAL_ROWS_JSONL).write_text(rows_jsonl(rows))
    (folder / KAGGLE_OUTPUT_LOG_TXT).write_text("2025-03-04T10:00:00.000Z step 0 loss 3.0\n")
    (folder / REPORT_HTML).write_text(render_report(manifest=manifest, summary=summary, rows=rows))
    names = sorted(p.name for p in folder.iterdir())
    write_sums(folder, names)
    return folder
