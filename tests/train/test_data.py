from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from tunix_rt.api.trainer_sections import DatasetConfig
from tunix_rt.train import data, dataset_info, tokenizer

DEFAULT_SHA256 = "13813d57966f690d328f7befd762b755d2aa7176b85a385055651cbf644af8c9"
"""dev-reasoning-v2, seed 0, 20000 train + 512 eval rows. Pinned: if this changes, the
dataset changed for every machine and every recorded result; bump the dataset name."""


def test_default_dataset_sha256_is_pinned() -> None:
    info = dataset_info(DatasetConfig())
    assert info.name == "dev-reasoning-v2"
    assert (info.train_rows, info.eval_rows) == (20000, 512)
    assert info.sha256 == DEFAULT_SHA256


def test_generation_is_deterministic_and_seeded() -> None:
    assert data.generate(3, 50, 20) == data.generate(3, 50, 20)
    assert data.generate(3, 50, 20) != data.generate(4, 50, 20)


def test_eval_prompts_are_distinct_and_never_in_train() -> None:
    train, eval_rows = data.generate(0, 5000, 512)
    eval_prompts = {ex.prompt for ex in eval_rows}
    assert len(eval_prompts) == 512
    assert not eval_prompts & {ex.prompt for ex in train}


def test_problems_cover_the_specified_distribution() -> None:
    train, _ = data.generate(0, 2000, 8)
    counts = {2: 0, 3: 0}
    for ex in train:
        expr = ex.prompt.rstrip("=")
        operands = expr.replace("-", "+").split("+")
        counts[len(operands)] += 1
        assert all(len(x) == 2 and 0 <= int(x) <= 99 for x in operands)
        assert int(ex.answer) == sum(int(term) for term in re.findall(r"[+-]?\d+", expr))
    assert min(counts.values()) > 800  # both lengths, about half each
    assert any(int(ex.answer) < 0 for ex in train)


def _total_from_group(group: str) -> int:
    digits = group[1::2]  # carry, digit, carry, digit, ... units first
    return int(digits[::-1])


@pytest.mark.parametrize("seed", range(5))
def test_trace_groups_are_the_running_totals_mod_1000(seed: int) -> None:
    rnd = random.Random(seed)
    for _ in range(400):
        count = rnd.choice((2, 3))
        operands = [rnd.randrange(100) for _ in range(count)]
        ops = [rnd.choice("+-") for _ in range(count - 1)]
        reasoning, answer = data.solve(operands, ops)
        groups = reasoning.split(" ")
        total = operands[0]
        for op, x, group in zip(ops, operands[1:], groups, strict=False):
            total = total + x if op == "+" else total - x
            assert _total_from_group(group) == total % 1000
        assert int(answer) == total
        if total < 0:
            assert groups[-1] == "-" + f"{-total:03d}"[::-1]
        else:
            assert len(groups) == count - 1


def test_carry_is_written_before_its_digit() -> None:
    # 27+45: units 7+5=12 -> carry 1 digit 2; tens 2+4+1=7 -> carry 0 digit 7; hundreds 0
    assert data.column_step(27, 45, "+") == ("120700", 72)
    # 5-60 wraps to 945: borrows 0, 1, 1
    assert data.column_step(5, 60, "-") == ("051419", 945)
    assert data.make_example([5, 60, 30], ["-", "+"]) == data.Example(
        "05-60+30=", "051419 050709 -520", "-25"
    )


def write_jsonl(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


GOOD = json.dumps({"prompt": "1+1=", "reasoning": "1+1=2", "answer": "2"})


def test_jsonl_bad_rows_are_rejected_with_line_and_field_good_rows_kept(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "rows.jsonl",
        [
            GOOD,
            '{"prompt": "2+2=", "reasoning": "4"',  # line 2: broken JSON
            json.dumps({"prompt": "3+3=", "answer": "6"}),  # line 3: no reasoning
            "",  # blank lines are skipped, not errors
            json.dumps({"prompt": "4+4=", "reasoning": "8", "answer": 8}),  # int answer: fine
            json.dumps({"prompt": 5, "reasoning": "", "answer": "5"}),  # line 6: prompt type
            json.dumps(["not", "an", "object"]),  # line 7
            json.dumps({"prompt": "6+6=", "reasoning": "12", "answer": " "}),  # line 8: empty
        ],
    )
    rows, errors = data.load_jsonl(path)
    assert [r.prompt for r in rows] == ["1+1=", "4+4="]
    assert rows[1].answer == "8"
    assert [(e.line, e.field) for e in errors] == [
        (2, None),
        (3, "reasoning"),
        (6, "prompt"),
        (7, None),
        (8, "answer"),
    ]
    assert "not valid JSON" in errors[0].message
    assert str(errors[1]) == f"{path}:3: field 'reasoning': missing"


def test_user_jsonl_dataset_keeps_good_rows_and_reports_rejects(tmp_path: Path) -> None:
    train = write_jsonl(tmp_path / "train.jsonl", [GOOD, "{oops", GOOD])
    evals = write_jsonl(tmp_path / "eval.jsonl", [GOOD])
    config = DatasetConfig(name="mine", train_path=str(train), eval_path=str(evals))
    loaded = data.load_dataset(config)
    assert loaded.info.name == "mine"
    assert (loaded.info.train_rows, loaded.info.eval_rows) == (2, 1)
    assert [(e.path, e.line) for e in loaded.rejected] == [(str(train), 2)]
    assert loaded.info.sha256 == data.content_sha256(loaded.train, loaded.eval)


def test_user_jsonl_without_a_single_good_row_is_an_error(tmp_path: Path) -> None:
    bad = write_jsonl(tmp_path / "bad.jsonl", ["{oops"])
    good = write_jsonl(tmp_path / "good.jsonl", [GOOD])
    with pytest.raises(ValueError, match=r"trainPath .* no valid rows: .*bad.jsonl:1"):
        data.load_dataset(DatasetConfig(name="x", train_path=str(bad), eval_path=str(good)))
    with pytest.raises(ValueError, match=r"dataset\.evalPath .*: no such file"):
        data.load_dataset(DatasetConfig(name="x", train_path=str(good), eval_path="nope.jsonl"))


def test_an_edited_user_file_is_read_again(tmp_path: Path) -> None:
    train = write_jsonl(tmp_path / "train.jsonl", [GOOD])
    config = DatasetConfig(name="mine", train_path=str(train), eval_path=str(train))
    before = dataset_info(config)
    write_jsonl(train, [GOOD, GOOD])
    assert dataset_info(config).train_rows == before.train_rows + 1


def test_encode_train_masks_only_the_target_and_packs_tightly() -> None:
    rows = [data.Example("12+30=", "020300", "42"), data.Example("1-2=", "x", "-1")]
    encoded = data.encode_train(rows, context=64)
    assert encoded.tokens.shape == (2, 19)  # the longest row: 7 prompt + 12 target tokens
    first = encoded.tokens[0]
    prompt_len = 1 + len("12+30=")
    assert encoded.loss_mask[0, :prompt_len].sum() == 0
    target = encoded.loss_mask[0].astype(bool)
    assert tokenizer.decode(first[target]) == ("<reasoning>020300</reasoning><answer>42</answer>")


def test_encode_train_names_context_when_a_row_does_not_fit() -> None:
    with pytest.raises(ValueError, match=r"model\.context=8"):
        data.encode_train([data.Example("12+30=", "020300", "42")], context=8)
