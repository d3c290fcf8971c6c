"""DPO's preference pairs: the eval's own judge scores every chosen completion 1 and every
rejected one 0, each failure mode appears, and a cap that cuts a gold trace is refused."""

from __future__ import annotations

import pytest

from tunix_rt.api.trainer_sections import DatasetConfig
from tunix_rt.scoring.rewards import as_evaluated
from tunix_rt.train import data
from tunix_rt.train import tokenizer as byte_tokenizer
from tunix_rt.train.data import Example
from tunix_rt.train.preference_pairs import REJECTIONS, preference_pairs, wrong_answer


def count(text: str) -> int:
    return len(byte_tokenizer.encode(text))


def test_chosen_scores_one_and_rejected_zero_as_the_eval_judges_them() -> None:
    examples = data.load_dataset(DatasetConfig(trainSize=300, evalSize=8)).train
    pairs = preference_pairs(examples, 32, count)
    assert len(pairs) == len(examples)
    assert {p.rejection for p in pairs} == set(REJECTIONS)
    for pair, ex in zip(pairs, examples, strict=True):
        assert pair.prompt == ex.prompt
        chosen = as_evaluated(pair.chosen, ex.answer, 32, count)
        rejected = as_evaluated(pair.rejected, ex.answer, 32, count)
        assert chosen.judgement.answer_correctness == 1 and not chosen.hit_cap
        assert rejected.judgement.answer_correctness == 0, (pair.rejection, pair.rejected)
        if pair.rejection == "over_cap":
            assert rejected.hit_cap and "<answer>" not in pair.rejected
            assert not pair.rejected_stops
            # Just past the cap: no longer than one more copy of the trace.
            assert count(pair.rejected) <= 32 + count(ex.reasoning) + 1
        if pair.rejection == "no_answer":
            assert rejected.judgement.parsed.answer is None and pair.rejected_stops
        if pair.rejection == "wrong_answer":
            assert rejected.judgement.format_valid and pair.rejected_stops


def test_wrong_answers_for_integers_and_for_text() -> None:
    rows = [Example("a", "r", "7"), Example("b", "r", "7"), Example("c", "r", "-3")]
    assert [wrong_answer(i, rows) for i in range(3)] == ["8", "6", "-2"]
    words = [Example("a", "r", "cat"), Example("b", "r", "cat"), Example("c", "r", "dog")]
    assert wrong_answer(0, words) == "dog" and wrong_answer(2, words) == "cat"
    # Every row agrees: no wrong answer to borrow, so the pair falls back to no_answer.
    same = [Example("a", "r", "cat"), Example("b", "r", "cat")]
    assert wrong_answer(0, same) is None
    assert preference_pairs(same, 64, count)[0].rejection == "no_answer"


def test_a_cap_that_cuts_the_gold_trace_is_refused_with_the_fix() -> None:
    rows = [Example("1+1=", "x" * 40, "2")]
    with pytest.raises(ValueError, match=r"eval.maxTraceTokens=16.*raise eval.maxTraceTokens"):
        preference_pairs(rows, 16, count)
