"""eval_summary.json and eval_rows.jsonl: the final evaluation of a run.

``primary_score`` comes from ``tunix_rt.scoring.compute_primary_score`` over exactly the
rows written to eval_rows.jsonl, so anyone can recompute it from the folder.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tunix_rt.contract.file_names import EVAL_ROWS_JSONL, EVAL_SUMMARY_JSON
from tunix_rt.evidence.validation import validate
from tunix_rt.scoring import PRIMARY_SCORE, compute_primary_score

SUMMARY_SCHEMA_VERSION = "tunix-rt/eval_summary/v1"

PRIMARY_SCORE_DEFINITION = (
    "mean of answer_correctness over the eval rows that have one "
    "(tunix_rt.scoring.compute_primary_score)"
)

MAX_FIELD_CHARS = 4000
"""Guardrail on each text field of an eval row as written (generation is capped upstream)."""

ROW_TEXT_FIELDS = ("prompt", "expected_answer", "output", "reasoning", "answer")


def finite_or_none(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None if value is None else float(value)
    number = float(value)
    return number if math.isfinite(number) else None


def row_dict(row: Any) -> dict[str, Any]:
    """One eval row as written: a plain dict with text fields capped at MAX_FIELD_CHARS."""
    if isinstance(row, Mapping):
        data = dict(row)
    elif hasattr(row, "model_dump"):
        data = row.model_dump(mode="json")
    else:
        data = dict(vars(row))
    truncated = []
    for name in ROW_TEXT_FIELDS:
        value = data.get(name)
        if isinstance(value, str) and len(value) > MAX_FIELD_CHARS:
            data[name] = value[:MAX_FIELD_CHARS]
            truncated.append(name)
    if truncated:
        data["truncated_fields"] = truncated
    return data


def rows_jsonl(rows: Iterable[Mapping[str, Any]]) -> str:
    """eval_rows.jsonl text: one compact JSON object per line, keys sorted, each validated."""
    lines = []
    for number, row in enumerate(rows):
        validate("eval_row", row, label=f"{EVAL_ROWS_JSONL} line {number + 1}")
        lines.append(json.dumps(row, sort_keys=True, ensure_ascii=False) + "\n")
    return "".join(lines)


def row_counts(rows: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    return {
        "eval_rows": len(rows),
        "scored_rows": sum(1 for r in rows if r.get("answer_correctness") is not None),
        "correct_rows": sum(1 for r in rows if (r.get("answer_correctness") or 0) >= 1),
        "format_valid_rows": sum(1 for r in rows if r.get("format_valid")),
        "capped_rows": sum(1 for r in rows if r.get("hit_cap")),
    }


def build_eval_summary(
    *,
    run_name: str,
    rows: Sequence[Mapping[str, Any]],
    metrics: Mapping[str, Any],
    model_id: str,
    dataset: dict[str, Any],
    steps: int,
    wall_seconds: float,
    trainer_primary_score: float | None,
    history: Sequence[Mapping[str, Any]] = (),
    max_trace_tokens: int | None = None,
    rows_file: str | None = EVAL_ROWS_JSONL,
) -> dict[str, Any]:
    """The summary as a dict, validated against eval_summary.schema.json."""
    counts: dict[str, Any] = row_counts(rows)
    counts["rows_file"] = rows_file
    summary: dict[str, Any] = {
        "schema_version": SUMMARY_SCHEMA_VERSION,
        "run_name": run_name,
        PRIMARY_SCORE: compute_primary_score(rows),
        "primary_score_definition": PRIMARY_SCORE_DEFINITION,
        "trainer_primary_score": finite_or_none(trainer_primary_score),
        "metrics": {str(k): finite_or_none(v) for k, v in sorted(metrics.items())},
        "rows": counts,
        "model_id": model_id,
        "dataset": dataset,
        "steps": steps,
        "wall_seconds": round(max(wall_seconds, 0.0), 3),
        "learning_curve": [
            {str(k): finite_or_none(v) for k, v in point.items()} for point in history
        ],
    }
    if max_trace_tokens is not None:
        summary["max_trace_tokens"] = max_trace_tokens
    validate("eval_summary", summary, label=EVAL_SUMMARY_JSON)
    return summary
