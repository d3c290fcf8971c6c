"""primary_score: the one definition (mean answer_correctness over rows that have one)."""

from __future__ import annotations

import json
import math

import pytest

from tunix_rt.scoring import PRIMARY_SCORE, compute_primary_score


def rows(*values: object) -> list[dict[str, object]]:
    return [{"answer_correctness": v} for v in values]


def test_all_correct_is_one() -> None:
    assert compute_primary_score(rows(1, 1, 1)) == 1.0


def test_mixed_is_the_mean() -> None:
    assert compute_primary_score(rows(1, 0, 0, 1, 1)) == pytest.approx(0.6)


def test_null_rows_are_ignored_not_counted_as_wrong() -> None:
    assert compute_primary_score(rows(1, None, 0, None)) == 0.5


def test_missing_key_counts_as_null() -> None:
    assert compute_primary_score([{"answer_correctness": 1}, {"other": 3}]) == 1.0


def test_empty_is_none() -> None:
    assert compute_primary_score([]) is None


def test_all_null_is_none() -> None:
    assert compute_primary_score(rows(None, None)) is None


def test_booleans_count_as_numbers() -> None:
    assert compute_primary_score(rows(True, False, False, False)) == 0.25


@pytest.mark.parametrize("bad", [1.5, -0.1, math.nan, "1"])
def test_out_of_range_or_non_numeric_fails_loudly(bad: object) -> None:
    with pytest.raises(ValueError, match="row 1"):
        compute_primary_score(rows(1, bad))


def test_not_rounded_and_json_round_trip_keeps_the_exact_value() -> None:
    score = compute_primary_score(rows(*([1] * 1) + [0] * 2))  # 1/3: no short decimal form
    assert score == 1 / 3
    assert json.loads(json.dumps({PRIMARY_SCORE: score}))[PRIMARY_SCORE] == score


def test_metric_name() -> None:
    assert PRIMARY_SCORE == "primary_score"
