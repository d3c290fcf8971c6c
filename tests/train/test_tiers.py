"""The built-in dataset tiers: seeded, parseable, correct, distinct, and refused by name
or context before any training when they cannot work."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from support.manifests import manifest
from tunix_rt.api.errors import ManifestError
from tunix_rt.api.manifests import check_document, parse_sweep
from tunix_rt.api.trainer import TrainerConfig
from tunix_rt.api.trainer_sections import BUILTIN_DATASETS, DatasetConfig
from tunix_rt.scoring.judge import parse_output
from tunix_rt.train import data, dataset_info, tokenizer
from tunix_rt.train.config import load_trainer_config
from tunix_rt.train.eval_rows import score_row

HARD_TIERS = ("dev-reasoning-v2-hard", "dev-reasoning-v2-hard-worded")
HARDEST = "dev-reasoning-v2-hardest"
COMPACT = re.compile(r"(\d+)((?:[-+*]\d+)+)=")
WORDED = re.compile(r"Ann has (\d+) beans; ((?:(?:gains|loses|times) \d+(?:, )?)+)\. How many\?")
VERBS = {"gains": "+", "loses": "-", "times": "*"}


def read_problem(prompt: str) -> tuple[list[str], list[str], list[str]]:
    """Operand texts, operators and operand texts again (for width checks), read from
    the prompt alone, either style."""
    if (match := COMPACT.fullmatch(prompt)) is not None:
        first, rest = match.groups()
        steps = re.findall(r"([-+*])(\d+)", rest)
    elif (match := WORDED.fullmatch(prompt)) is not None:
        first, rest = match.groups()
        steps = [(VERBS[verb], x) for verb, x in re.findall(r"(gains|loses|times) (\d+)", rest)]
    else:
        raise AssertionError(f"unreadable prompt {prompt!r}")
    operands = [first, *(x for _, x in steps)]
    return operands, [op for op, _ in steps], operands


def expected_answer(prompt: str) -> int:
    """The prompt's value with the usual precedence (``*`` before ``+``/``-``), computed
    without the generator: a ``*`` that the data put anywhere but first would show."""
    operands, ops, _ = read_problem(prompt)
    expr = operands[0] + "".join(f"{op}{int(x)}" for op, x in zip(ops, operands[1:], strict=True))
    expr = re.sub(r"\b0+(\d)", r"\1", expr)  # 034 -> 34: no octal-looking literals
    value = eval(expr, {"__builtins__": {}})  # only digits and + - * reach here
    assert isinstance(value, int)
    return value


def target_tokens(ex: data.Example) -> int:
    return len(tokenizer.encode(tokenizer.format_target(ex.reasoning, ex.answer)))


@pytest.fixture(scope="module")
def tiers() -> dict[str, tuple[list[data.Example], list[data.Example]]]:
    return {name: data.generate(0, 2000, 128, name) for name in data.TIERS}


def test_the_api_and_the_generator_name_the_same_tiers() -> None:
    assert list(BUILTIN_DATASETS) == list(data.TIERS)
    assert data.DEFAULT_TIER == DatasetConfig().name == "dev-reasoning-v2"


@pytest.mark.parametrize("name", list(data.TIERS))
def test_each_tier_is_seeded_and_deterministic(name: str) -> None:
    assert data.generate(5, 40, 10, name) == data.generate(5, 40, 10, name)
    assert data.generate(5, 40, 10, name) != data.generate(6, 40, 10, name)


@pytest.mark.parametrize("name", list(data.TIERS))
def test_rows_parse_and_their_answers_are_right(
    name: str, tiers: dict[str, tuple[list[data.Example], list[data.Example]]]
) -> None:
    train, eval_rows = tiers[name]
    tier = data.TIERS[name]
    for index, ex in enumerate(train + eval_rows):
        operands, ops, _ = read_problem(ex.prompt)
        assert len(operands) in tier.operands
        assert all(len(x) == tier.digits for x in operands)  # fixed columns
        assert "*" not in ops[1:]
        assert int(ex.answer) == expected_answer(ex.prompt)
        # the evaluator reads the trained target back as the same answer, scored correct
        target = tokenizer.format_target(ex.reasoning, ex.answer)
        parsed = parse_output(target)
        assert parsed.format_valid and parsed.answer == ex.answer
        assert score_row(index, ex, target, target_tokens(ex), hit_cap=False).answer_correctness


@pytest.mark.parametrize("name", HARD_TIERS)
def test_hard_tiers_cover_their_distribution(
    name: str, tiers: dict[str, tuple[list[data.Example], list[data.Example]]]
) -> None:
    train, _ = tiers[name]
    problems = [read_problem(ex.prompt) for ex in train]
    counts = {n: sum(len(ops) + 1 == n for _, ops, _ in problems) for n in (3, 4)}
    assert min(counts.values()) > 800  # 3 and 4 operands, about half each
    multiplied = [ops for _, ops, _ in problems if ops[0] == "*"]
    assert 550 < len(multiplied) < 780  # the first step multiplies one time in three
    multipliers = {int(operands[1]) for operands, ops, _ in problems if ops[0] == "*"}
    assert multipliers == set(range(2, 10))
    answers = [int(ex.answer) for ex in train]
    assert min(answers) < -1000 and max(answers) > 5000  # carries reach the fourth column


def test_trace_groups_are_running_totals_over_five_columns() -> None:
    # 034*7 = 238: units 4*7=28 -> carry 2 digit 8; tens 3*7+2=23 -> 2, 3; hundreds 0*7+2
    # then 238+120 = 358, 358-45 = 313
    ex = data.make_example([34, 7, 120, 45], ["*", "+", "-"], data.TIERS[HARD_TIERS[0]])
    assert ex.prompt == "034*007+120-045="
    assert ex.reasoning == "2823020000 0805030000 0301030000"
    assert ex.answer == str(34 * 7 + 120 - 45)
    negative = data.make_example([5, 999, 999, 999], ["-", "-", "-"], data.TIERS[HARD_TIERS[1]])
    assert negative.prompt == "Ann has 005 beans; loses 999, loses 999, loses 999. How many?"
    assert negative.reasoning.endswith(" -29920")  # 02992, units first
    assert negative.answer == "-2992"


def test_the_hardest_tier_covers_two_digit_multipliers_over_six_columns(
    tiers: dict[str, tuple[list[data.Example], list[data.Example]]],
) -> None:
    train, _ = tiers[HARDEST]
    problems = [read_problem(ex.prompt) for ex in train]
    counts = {n: sum(len(ops) + 1 == n for _, ops, _ in problems) for n in (3, 4)}
    assert min(counts.values()) > 800
    multipliers = [int(operands[1]) for operands, ops, _ in problems if ops[0] == "*"]
    assert 550 < len(multipliers) < 780  # one time in three, as the hard tiers
    assert set(multipliers) == set(range(10, 100))
    answers = [int(ex.answer) for ex in train]
    assert min(answers) < -1000 and max(answers) > 50_000  # the sixth column is used


def group_value(group: str) -> int:
    """A trace group's number: its digits are every second character, units first."""
    return int(group[1::2][::-1])


def test_hardest_traces_hold_the_partial_products_and_the_running_totals(
    tiers: dict[str, tuple[list[data.Example], list[data.Example]]],
) -> None:
    """Recomputed from the prompt alone: a two-digit multiply writes operand * tens, then
    operand * multiplier; every other group the running total, all modulo 10**6."""
    train, eval_rows = tiers[HARDEST]
    for ex in train[:2000] + eval_rows:
        operands, ops, _ = read_problem(ex.prompt)
        values = [int(x) for x in operands]
        expected = []
        total = values[0]
        for op, x in zip(ops, values[1:], strict=True):
            if op == "*":
                expected.append(values[0] * (x // 10))
                total *= x
            else:
                total = total + x if op == "+" else total - x
            expected.append(total % 10**6)
        groups = ex.reasoning.split(" ")
        if total < 0:
            assert groups.pop() == "-" + f"{-total:06d}"[::-1]
        assert [len(g) for g in groups] == [12] * len(groups)  # carry and digit, six columns
        assert [group_value(g) for g in groups] == expected
        assert int(ex.answer) == total


def test_a_two_digit_multiply_is_worked_as_shifted_partial_products() -> None:
    # 034*27: 034*2 = 68 (units 4*2 -> 0 8; tens 3*2 -> 0 6); then 680 + 034*7 per column:
    # 0+4*7 = 28 -> carry 2 digit 8; 8+3*7+2 = 31 -> 3, 1; 6+0*7+3 = 9 -> 0, 9: 918
    ex = data.make_example([34, 27, 120, 45], ["*", "+", "-"], data.TIERS[HARDEST])
    assert ex.prompt == "034*027+120-045="
    assert ex.reasoning.split(" ")[:2] == ["080600000000", "283109000000"]
    assert ex.answer == str(34 * 27 + 120 - 45)
    # the shifted digit, the product and the carry all reach 9: 999*99 = 98901
    assert data.two_digit_product(999, 99, 6) == ("818989080000 819099180900", 98901)
    with pytest.raises(ValueError, match="10-99"):
        data.two_digit_product(5, 9, 6)


def test_the_compact_and_worded_tiers_are_the_same_problems_differently_written(
    tiers: dict[str, tuple[list[data.Example], list[data.Example]]],
) -> None:
    compact, worded = (tiers[name][0] for name in HARD_TIERS)
    assert [(e.reasoning, e.answer) for e in compact] == [(e.reasoning, e.answer) for e in worded]
    assert all(c.prompt != w.prompt for c, w in zip(compact, worded, strict=True))
    assert [read_problem(c.prompt)[:2] for c in compact[:200]] == [
        read_problem(w.prompt)[:2] for w in worded[:200]
    ]


def test_tiers_differ_and_are_named_in_their_dataset_info() -> None:
    """(The default's full-size content stays pinned: test_data.py's sha256.)"""
    infos = {
        name: dataset_info(DatasetConfig(name=name, train_size=500, eval_size=16))
        for name in data.TIERS
    }
    assert len({info.sha256 for info in infos.values()}) == len(infos)
    assert all(info.name == name for name, info in infos.items())


def worst_rows(name: str) -> list[data.Example]:
    """The longest rows a tier can draw: most operands, longest answer of either sign."""
    tier = data.TIERS[name]
    top, count = 10**tier.digits - 1, max(tier.operands)
    rows = [data.make_example([0] + [top] * (count - 1), ["-"] * (count - 1), tier)]
    if tier.multiply:
        low, high = (2, 9) if tier.multiplier_digits == 1 else (10, 99)
        rows.append(
            data.make_example([top, high] + [top] * (count - 2), ["*"] + ["+"] * (count - 2), tier)
        )
        # a product too small to cover the subtractions: the most groups, then a sign
        rows.append(
            data.make_example([0, low] + [top] * (count - 2), ["*"] + ["-"] * (count - 2), tier)
        )
    else:
        rows.append(data.make_example([top] * count, ["+"] * (count - 1), tier))
    return rows


@pytest.mark.parametrize("name", list(data.TIERS))
def test_the_api_knows_each_tiers_longest_row_and_trace(
    name: str, tiers: dict[str, tuple[list[data.Example], list[data.Example]]]
) -> None:
    need = BUILTIN_DATASETS[name]
    worst = worst_rows(name)
    row = max(len(data.encode_prompt(ex.prompt)) + target_tokens(ex) for ex in worst)
    assert (need.row_tokens, need.trace_tokens) == (row, max(map(target_tokens, worst)))
    train, eval_rows = tiers[name]
    assert all(target_tokens(ex) <= need.trace_tokens for ex in train + eval_rows)
    # encode_train packs to the longest row, which must fit the bound
    assert data.encode_train(train, need.row_tokens).tokens.shape[1] <= need.row_tokens
    # the defaults leave room for every trace but the hardest tier's, whose example
    # config raises eval.maxTraceTokens (checked below)
    default_cap = TrainerConfig().eval.max_trace_tokens
    assert (need.trace_tokens <= default_cap) == (name != HARDEST)


@pytest.mark.parametrize("name", [*HARD_TIERS, HARDEST])
def test_a_context_too_short_for_the_tier_is_refused_naming_the_field(name: str) -> None:
    need = BUILTIN_DATASETS[name].row_tokens
    with pytest.raises(ValidationError) as caught:
        TrainerConfig.model_validate({"dataset": {"name": name}, "model": {"context": need - 1}})
    error = caught.value.errors()[0]
    assert error["loc"] == ("model", "context")
    assert f"at least {need}" in error["msg"] and name in error["msg"]
    cap = max(BUILTIN_DATASETS[name].trace_tokens, 48)
    TrainerConfig.model_validate(
        {"dataset": {"name": name}, "model": {"context": need}, "eval": {"maxTraceTokens": cap}}
    )
    # user files are measured when read, not by the tier's bound
    TrainerConfig.model_validate(
        {"dataset": {"name": name, "trainPath": "t.jsonl", "evalPath": "e.jsonl"}}
    )


@pytest.mark.parametrize("name", list(data.TIERS))
def test_a_trace_cap_that_cuts_the_tiers_longest_trace_is_refused(name: str) -> None:
    """Rows whose gold trace the cap cuts could never score: refused at validation, naming
    eval.maxTraceTokens and the bound, instead of a silently lower primary_score."""
    need = BUILTIN_DATASETS[name]
    base = {"dataset": {"name": name}, "model": {"context": 128}}
    with pytest.raises(ValidationError) as caught:
        TrainerConfig.model_validate(base | {"eval": {"maxTraceTokens": need.trace_tokens - 1}})
    error = caught.value.errors()[0]
    assert error["loc"] == ("eval", "maxTraceTokens")
    assert f"at least {need.trace_tokens}" in error["msg"] and name in error["msg"]
    TrainerConfig.model_validate(base | {"eval": {"maxTraceTokens": need.trace_tokens}})


def test_an_unknown_tier_is_refused_naming_dataset_name_and_listing_the_tiers() -> None:
    with pytest.raises(ValidationError) as caught:
        TrainerConfig.model_validate({"dataset": {"name": "dev-reasoning-v2-harder"}})
    error = caught.value.errors()[0]
    assert error["loc"] == ("dataset", "name")
    assert all(name in error["msg"] for name in data.TIERS)
    with pytest.raises(ValueError, match=r"dataset\.name 'x' .*dev-reasoning-v2-hard-worded"):
        data.generate(0, 1, 1, "x")


def sweep_manifest(trainer: dict[str, object]) -> dict[str, object]:
    return manifest(
        "Sweep",
        "tiers",
        {
            "trainer": trainer,
            "searchSpace": {"learningRate": {"type": "choice", "values": [0.003]}},
            "maxTrials": 1,
        },
    )


def test_a_sweep_manifest_naming_an_unknown_tier_is_refused_with_the_tiers_listed() -> None:
    with pytest.raises(ManifestError) as caught:
        parse_sweep(sweep_manifest({"dataset": {"name": "dev-reasoning-v9"}}))
    fields = dict(caught.value.errors)
    assert "spec.trainer.dataset.name" in fields
    assert all(name in fields["spec.trainer.dataset.name"] for name in data.TIERS)
    short = sweep_manifest({"dataset": {"name": "dev-reasoning-v2-hard-worded"}})
    assert [f for f, _ in check_document(short).errors] == ["spec.trainer.model.context"]
    fits = sweep_manifest(
        {"dataset": {"name": "dev-reasoning-v2-hard-worded"}, "model": {"context": 128}}
    )
    assert check_document(fits).errors == []


ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", list(data.TIERS))
def test_each_tier_names_an_example_config_that_fits_it(name: str) -> None:
    """The example a context error points to exists, trains this tier and validates."""
    config = load_trainer_config(ROOT / BUILTIN_DATASETS[name].example)
    assert config.dataset.name == name
    assert config.model.context >= BUILTIN_DATASETS[name].row_tokens
    assert config.eval.max_trace_tokens >= BUILTIN_DATASETS[name].trace_tokens
