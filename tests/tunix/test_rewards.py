"""The GRPO rewards judge a completion exactly as the eval judges its row: the mean
``answer_correct`` reward over eval rows is compute_primary_score of those rows."""

from __future__ import annotations

import pytest

from tunix_rt.scoring import compute_primary_score
from tunix_rt.scoring.judge import cut_at_stop, judge
from tunix_rt.scoring.rewards import (
    ANSWER_TAGS_REWARD,
    FORMAT_VALID_REWARD,
    OVER_CAP_PENALTY,
    REWARD_NAMES,
    REWARD_RANGES,
    as_evaluated,
    reward_fns,
)

CAP = 12


def count(text: str) -> int:
    """One token per character except the four tags (one each): the byte tokenizer's
    count for ASCII text."""
    for tag in ("<reasoning>", "</reasoning>", "<answer>", "</answer>"):
        text = text.replace(tag, "#")
    return len(text)


# (completion as sampled, expected answer): what a rollout can produce.
CASES = [
    ("<reasoning>1+2</reasoning><answer>3</answer>", "3"),  # right, 10 tokens
    ("<reasoning>1+2</reasoning><answer>4</answer>", "3"),  # wrong answer
    ("<reasoning>1+2</reasoning><answer>+3</answer>", "3"),  # integers by value
    ("<reasoning>1+2</reasoning><answer>3.</answer>", "3"),  # prose's stop: not the integer
    ("<answer>3</answer>", "3"),  # right answer, no reasoning: still correct
    ("<reasoning>1+2</reasoning><answer>3</answer>garbage after", "3"),  # eval stops at tag
    ("<reasoning>1+2+3+4+5</reasoning><answer>15</answer>", "15"),  # 15 tokens > CAP
    ("<reasoning>1+2+3", "6"),  # never closes its answer
    ("", "0"),
    ("<reasoning>a</reasoning><answer>x</answer><answer>3</answer>", "3"),  # first answer
]


def eval_row(text: str, expected: str) -> dict[str, object]:
    """The row the eval would write for this generation: its decoder stops at the first
    </answer> or after CAP tokens (hit_cap when no </answer> by then)."""
    cut, closed = cut_at_stop(text)
    tokens = count(cut)
    hit_cap = not closed or tokens > CAP
    judged = judge(cut, expected, hit_cap)
    return {"answer_correctness": judged.answer_correctness, "format_valid": judged.format_valid}


def test_answer_reward_mean_is_primary_score() -> None:
    correct, _, _ = reward_fns(CAP, count)
    completions = [text for text, _ in CASES]
    answers = [expected for _, expected in CASES]
    rewards = correct(prompts=["p"] * len(CASES), completions=completions, answer=answers)
    rows = [eval_row(text, expected) for text, expected in CASES]
    assert rewards == [float(r["answer_correctness"]) for r in rows]
    assert sum(rewards) / len(rewards) == compute_primary_score(rows)
    # The cases exercise both outcomes, so the equality above can fail.
    assert 0 < sum(rewards) < len(rewards)


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_each_completion_is_judged_like_its_eval_row(text: str, expected: str) -> None:
    completion = as_evaluated(text, expected, CAP, count)
    row = eval_row(text, expected)
    assert completion.judgement.answer_correctness == row["answer_correctness"]
    assert completion.judgement.format_valid == row["format_valid"]


def test_a_full_stop_costs_the_answer_reward_and_nothing_else() -> None:
    """What the GRPO repair example (examples/sweep-tunix-grpo-repair.yaml) learns from: its
    SFT start ends answers with a stop, and a group whose samples differ in that one token
    differs by the whole answer reward, as the eval's score of those rows does."""
    answer, fmt, length = reward_fns(CAP, count)
    texts = [
        "<reasoning>1+2</reasoning><answer>3</answer>",
        "<reasoning>1+2</reasoning><answer>3.</answer>",
    ]
    batch = {"prompts": ["1+2="] * 2, "completions": texts, "answer": ["3", "3"]}
    assert answer(**batch) == [1.0, 0.0]
    assert fmt(**batch) == [FORMAT_VALID_REWARD] * 2 and length(**batch) == [0.0, 0.0]
    assert [judge(t, "3", hit_cap=False).answer_correctness for t in texts] == [1, 0]


def test_over_the_cap_is_wrong_even_with_the_right_answer() -> None:
    text = "<reasoning>1+2+3+4+5</reasoning><answer>15</answer>"
    assert as_evaluated(text, "15", CAP, count).judgement.answer_correctness == 0
    assert as_evaluated(text, "15", 64, count).judgement.answer_correctness == 1


def test_format_and_length_rewards() -> None:
    _, fmt, length = reward_fns(CAP, count)
    texts = [
        "<reasoning>1</reasoning><answer>1</answer>",  # valid
        "noise<answer>1</answer>",  # parsable answer only
        "<reasoning>1",  # never closed
        "<reasoning>1+2+3+4+5+6+7+8+9+10+11</reasoning><answer>66</answer>",  # 38 > 3 x CAP
        "<reasoning>1+2+3+4+5</reasoning><answer>15</answer>",  # 15 tokens: 3 over
    ]
    kwargs = {"prompts": ["p"] * len(texts), "completions": texts, "answer": ["1"] * len(texts)}
    assert fmt(**kwargs) == [FORMAT_VALID_REWARD, ANSWER_TAGS_REWARD, 0.0, 0.0, 0.0]
    assert length(**kwargs) == pytest.approx(
        [0.0, 0.0, -OVER_CAP_PENALTY, -OVER_CAP_PENALTY, -OVER_CAP_PENALTY * 3 / CAP]
    )


def test_names_and_extra_batch_columns() -> None:
    fns = reward_fns(CAP, count)
    assert tuple(fn.__name__ for fn in fns) == REWARD_NAMES
    # Tunix passes every column of the batch (and the mode) as keywords.
    out = fns[0](prompts=["p"], completions=["<answer>1</answer>"], answer=["1"], mode="train")
    assert out == [1.0]


def test_every_reward_stays_in_its_range() -> None:
    """REWARD_RANGES bound the reward_<fn> metrics an objective.goal may aim at: each
    function stays inside its range, and the cases reach both ends of it."""
    assert tuple(REWARD_RANGES) == REWARD_NAMES
    texts = [text for text, _ in CASES] + ["noise<answer>1</answer>"]
    answers = [expected for _, expected in CASES] + ["1"]
    for fn in reward_fns(CAP, count):
        values = fn(prompts=["p"] * len(texts), completions=texts, answer=answers)
        low, high = REWARD_RANGES[fn.__name__]
        assert (min(values), max(values)) == (low, high), fn.__name__


def test_mismatched_answers_are_refused() -> None:
    with pytest.raises(ValueError, match="2 completions but 1 expected"):
        reward_fns(CAP, count)[0](prompts=["p", "q"], completions=["a", "b"], answer=["1"])
