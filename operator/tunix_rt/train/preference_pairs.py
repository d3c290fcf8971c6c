"""Preference pairs for DPO, built from the dataset's own rows (no judge model, no samples).

The chosen completion is the gold trace and answer. The rejected one is, in turn, each
failure the eval guards against: a wrong answer after the gold trace, a trace that runs
past ``eval.maxTraceTokens`` without closing its answer, and a trace with no ``<answer>``.
Every pair is checked with the eval's own judge (``scoring.rewards.as_evaluated``): its
chosen completion scores 1 and its rejected one 0, so DPO prefers exactly what
primary_score rewards.

Pure Python (no JAX): the ``tunix-dpo`` backend tokenizes the pairs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, NamedTuple

from tunix_rt.scoring.judge import answers_match
from tunix_rt.scoring.rewards import CountTokens, as_evaluated
from tunix_rt.train.data import Example
from tunix_rt.train.tokenizer import format_target

Rejection = Literal["wrong_answer", "over_cap", "no_answer"]
REJECTIONS: tuple[Rejection, ...] = ("wrong_answer", "over_cap", "no_answer")
"""The failure modes, in the order rows take them (row ``i`` takes ``REJECTIONS[i % 3]``)."""


class Pair(NamedTuple):
    """One preference: after ``prompt``, ``chosen`` is preferred to ``rejected``.

    ``rejected_stops`` is False for an over-cap trace: the model never stopped, so the
    rejected sequence carries no end-of-sequence token."""

    prompt: str
    chosen: str
    rejected: str
    rejection: Rejection
    rejected_stops: bool


def wrong_answer(index: int, examples: Sequence[Example]) -> str | None:
    """An answer that does not match row ``index``'s: an integer one off (up on even rows,
    down on odd), else the next row's answer that differs; None when every row agrees."""
    expected = examples[index].answer
    try:
        return str(int(expected) + (1 if index % 2 == 0 else -1))
    except ValueError:
        pass
    for step in range(1, len(examples)):
        other = examples[(index + step) % len(examples)].answer
        if not answers_match(other, expected):
            return other
    return None


def over_cap_trace(reasoning: str, max_trace_tokens: int, count: CountTokens) -> str:
    """``<reasoning>`` and the gold reasoning repeated until the text is longer than
    ``max_trace_tokens`` tokens: the eval's cap cuts it before any answer."""
    text = "<reasoning>" + reasoning
    while count(text) <= max_trace_tokens:
        text += " " + (reasoning or ".")
    return text


def rejected_for(
    index: int,
    examples: Sequence[Example],
    max_trace_tokens: int,
    count: CountTokens,
) -> tuple[str, Rejection, bool]:
    """Row ``index``'s rejected completion, its failure mode and whether it stops."""
    ex = examples[index]
    kind = REJECTIONS[index % len(REJECTIONS)]
    if kind == "wrong_answer":
        wrong = wrong_answer(index, examples)
        if wrong is not None:
            return format_target(ex.reasoning, wrong), kind, True
        kind = "no_answer"
    if kind == "over_cap":
        return over_cap_trace(ex.reasoning, max_trace_tokens, count), kind, False
    return f"<reasoning>{ex.reasoning}</reasoning>", "no_answer", True


def preference_pairs(
    examples: Sequence[Example], max_trace_tokens: int, count: CountTokens
) -> list[Pair]:
    """One pair per row; ValueError when the eval would not score a gold completion 1
    (its trace is longer than ``eval.maxTraceTokens``: DPO would prefer a zero)."""
    pairs = []
    for index, ex in enumerate(examples):
        chosen = format_target(ex.reasoning, ex.answer)
        judged = as_evaluated(chosen, ex.answer, max_trace_tokens, count)
        if judged.judgement.answer_correctness != 1:
            raise ValueError(
                f"train row {index}: its gold completion is {judged.trace_tokens} tokens, "
                f"past eval.maxTraceTokens={max_trace_tokens}, so the eval scores it 0 and "
                "DPO would learn to prefer a wrong answer; raise eval.maxTraceTokens to at "
                f"least {judged.trace_tokens}"
            )
        rejected, kind, stops = rejected_for(index, examples, max_trace_tokens, count)
        pairs.append(Pair(ex.prompt, chosen, rejected, kind, stops))
    return pairs
