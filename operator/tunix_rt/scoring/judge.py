"""Judging one generation: parse the format, compare the answer, apply the guardrail.

Pure Python on purpose: the built-in evaluator (``train/evaluate.py``), the Tunix eval
and the GRPO rewards (``scoring/rewards.py``) all call :func:`judge`, so an eval row's
``answer_correctness`` and the reward for the same text cannot disagree.
"""

from __future__ import annotations

import re
from typing import NamedTuple

ANSWER_CLOSE = "</answer>"
"""Generation stops at the first closing answer tag (the eval's stop token)."""

_FORMAT = re.compile(r"\s*<reasoning>(.*?)</reasoning>\s*<answer>(.*?)</answer>\s*", re.DOTALL)
_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)


class ParsedOutput(NamedTuple):
    reasoning: str | None
    answer: str | None
    format_valid: bool


class Judgement(NamedTuple):
    """What the score needs from one generation (``answer_correctness`` is 0 or 1)."""

    parsed: ParsedOutput
    answer_correctness: int
    format_valid: bool


def parse_output(text: str) -> ParsedOutput:
    """Split a generation into reasoning and answer; malformed text yields None parts."""
    full = _FORMAT.fullmatch(text)
    if full is not None:
        return ParsedOutput(full.group(1), full.group(2).strip(), True)
    answer = _ANSWER.search(text)
    return ParsedOutput(None, answer.group(1).strip() if answer else None, False)


def answers_match(answer: str | None, expected: str) -> bool:
    """Integers compare by value ('+7' == '7'), anything else by stripped text."""
    if answer is None:
        return False
    expected = expected.strip()
    try:
        return int(answer) == int(expected)
    except ValueError:
        return answer == expected


def judge(output: str, expected: str, hit_cap: bool) -> Judgement:
    """Score one generation: an unparsable or truncated (``hit_cap``) answer is wrong."""
    parsed = parse_output(output)
    correct = not hit_cap and answers_match(parsed.answer, expected)
    return Judgement(parsed, int(correct), parsed.format_valid and not hit_cap)


def cut_at_stop(text: str) -> tuple[str, bool]:
    """The text up to and including the first ``</answer>`` (where the eval's decoder
    stops), and whether there was one."""
    end = text.find(ANSWER_CLOSE)
    if end < 0:
        return text, False
    return text[: end + len(ANSWER_CLOSE)], True
