"""The eval rows every backend produces: one scored generation per eval example (parsed and
judged by ``scoring.judge``) and their summary metrics, primary_score included."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from tunix_rt.scoring import PRIMARY_SCORE, compute_primary_score
from tunix_rt.scoring.judge import judge
from tunix_rt.train.data import Example


class EvalRow(BaseModel):
    """One eval example, what the model wrote, and how it scored (snake_case on purpose:
    ``compute_primary_score`` reads ``answer_correctness`` from these dicts)."""

    model_config = ConfigDict(extra="forbid")

    index: int = Field(description="Row index in the eval split.")
    prompt: str
    expected_answer: str
    output: str = Field(description="Raw decoded generation (tags included).")
    reasoning: str | None = Field(description="Text inside <reasoning>, when the format is valid.")
    answer: str | None = Field(description="Text inside the first <answer>…</answer>, or None.")
    answer_correctness: int = Field(ge=0, le=1, description="1 if answer == expected, else 0.")
    format_valid: bool = Field(
        description="Output is exactly <reasoning>…</reasoning><answer>…</answer>."
    )
    trace_tokens: int = Field(ge=0, description="Generated tokens, stop tag included.")
    hit_cap: bool = Field(description="Generation ran out of max_trace_tokens before </answer>.")


def score_row(
    index: int, example: Example, output: str, trace_tokens: int, hit_cap: bool
) -> EvalRow:
    """Parse one generation and score it (``scoring.judge``: the rule the GRPO rewards
    use too): an unparsable or truncated answer is 0."""
    judged = judge(output, example.answer, hit_cap)
    parsed = judged.parsed
    return EvalRow(
        index=index,
        prompt=example.prompt,
        expected_answer=example.answer,
        output=output,
        reasoning=parsed.reasoning,
        answer=parsed.answer,
        answer_correctness=judged.answer_correctness,
        format_valid=judged.format_valid,
        trace_tokens=trace_tokens,
        hit_cap=hit_cap,
    )


def summarize(rows: Sequence[EvalRow]) -> dict[str, float]:
    """primary_score (the one definition) plus the trace-length guardrail statistics."""
    metrics: dict[str, float] = {"eval_rows": float(len(rows))}
    score = compute_primary_score(row.model_dump() for row in rows)
    if score is not None:
        metrics[PRIMARY_SCORE] = score
    if rows:
        lengths = np.array([row.trace_tokens for row in rows], dtype=np.float64)
        metrics["trace_len_p50"] = float(np.percentile(lengths, 50))
        metrics["trace_len_p95"] = float(np.percentile(lengths, 95))
        metrics["cap_hit_rate"] = float(np.mean([row.hit_cap for row in rows]))
        metrics["format_valid_rate"] = float(np.mean([row.format_valid for row in rows]))
    return metrics
