"""GRPO rewards built from the score's own rule, so reward and primary_score agree.

Each reward judges a completion exactly as the eval would have: the text is cut at the
first ``</answer>`` (where the eval's decoder stops), counted in tokens, and a completion
that has not closed its answer within ``eval.maxTraceTokens`` tokens is truncated (hit
the cap) — then :func:`tunix_rt.scoring.judge.judge` decides. So
``answer_correct`` on a completion is the ``answer_correctness`` its eval row would get,
and its mean over eval rows is ``compute_primary_score`` of those rows.

Pure Python (no JAX): the Tunix GRPO backend passes :func:`reward_fns` to
``GRPOLearner``, which calls each with ``prompts``, ``completions`` and the batch's
other columns (``answer``: the expected answers) and logs it under its ``__name__``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from tunix_rt.scoring.judge import Judgement, cut_at_stop, judge

CountTokens = Callable[[str], int]
RewardFn = Callable[..., list[float]]

FORMAT_VALID_REWARD = 0.5
"""Reward for the exact ``<reasoning>…</reasoning><answer>…</answer>`` shape."""
ANSWER_TAGS_REWARD = 0.25
"""Reward for an ``<answer>…</answer>`` that parses, without the full shape."""
OVER_CAP_PENALTY = 0.5
"""Most the trace-length penalty takes away (a completion that never closes its answer)."""


class Completion(NamedTuple):
    """A completion as the eval would have seen it."""

    text: str
    trace_tokens: int
    hit_cap: bool
    judgement: Judgement


def as_evaluated(text: str, expected: str, max_trace_tokens: int, count: CountTokens) -> Completion:
    """Cut ``text`` where the eval stops, count its tokens, and judge it with the eval's
    cap: no ``</answer>`` within ``max_trace_tokens`` tokens means the eval hit its cap."""
    cut, closed = cut_at_stop(text)
    tokens = count(cut)
    hit_cap = not closed or tokens > max_trace_tokens
    return Completion(cut, tokens, hit_cap, judge(cut, expected, hit_cap))


def answer_correct(completion: Completion) -> float:
    """1.0 when the eval would count the answer correct (its ``answer_correctness``)."""
    return float(completion.judgement.answer_correctness)


def format_valid(completion: Completion) -> float:
    """Partial credit for the format: the full shape, or at least a parsable answer."""
    if completion.judgement.format_valid:
        return FORMAT_VALID_REWARD
    if not completion.hit_cap and completion.judgement.parsed.answer is not None:
        return ANSWER_TAGS_REWARD
    return 0.0


def trace_length(completion: Completion, max_trace_tokens: int) -> float:
    """0 within the cap; past it, minus the overshoot as a share of the cap (at most
    ``OVER_CAP_PENALTY``); an answer never closed costs the whole penalty."""
    if not completion.hit_cap:
        return 0.0
    if not completion.text.endswith("</answer>"):
        return -OVER_CAP_PENALTY
    over = (completion.trace_tokens - max_trace_tokens) / max_trace_tokens
    return -OVER_CAP_PENALTY * min(1.0, max(over, 0.0))


def reward_fns(max_trace_tokens: int, count: CountTokens) -> list[RewardFn]:
    """The GRPO reward functions (Tunix's signature: ``prompts``, ``completions``,
    ``answer`` and further batch columns as keywords; one float per completion)."""

    def judged(completions: Sequence[str], answer: Sequence[str]) -> list[Completion]:
        if len(completions) != len(answer):
            raise ValueError(f"{len(completions)} completions but {len(answer)} expected answers")
        return [
            as_evaluated(text, str(expected), max_trace_tokens, count)
            for text, expected in zip(completions, answer, strict=True)
        ]

    def answer_correct_fn(
        prompts: Sequence[str], completions: Sequence[str], answer: Sequence[str], **_: Any
    ) -> list[float]:
        return [answer_correct(c) for c in judged(completions, answer)]

    def format_valid_fn(
        prompts: Sequence[str], completions: Sequence[str], answer: Sequence[str], **_: Any
    ) -> list[float]:
        return [format_valid(c) for c in judged(completions, answer)]

    def trace_length_fn(
        prompts: Sequence[str], completions: Sequence[str], answer: Sequence[str], **_: Any
    ) -> list[float]:
        return [trace_length(c, max_trace_tokens) for c in judged(completions, answer)]

    answer_correct_fn.__name__ = "answer_correct"
    format_valid_fn.__name__ = "format_valid"
    trace_length_fn.__name__ = "trace_length"
    return [answer_correct_fn, format_valid_fn, trace_length_fn]


REWARD_NAMES = ("answer_correct", "format_valid", "trace_length")
"""The ``__name__`` of each of :func:`reward_fns`, in order (history: ``reward_<name>``)."""
REWARD_RANGES: dict[str, tuple[float, float]] = {
    "answer_correct": (0.0, 1.0),
    "format_valid": (0.0, FORMAT_VALID_REWARD),
    "trace_length": (-OVER_CAP_PENALTY, 0.0),
}
"""The least and greatest value each of :func:`reward_fns` returns (by name): the range of
its mean, so of the ``reward_<name>`` metric an ``objective.goal`` may aim at."""
