"""Eval parsing and scoring, the guardrail statistics, and the jitted greedy decoder."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from tunix_rt.api.trainer_sections import EvalConfig, ModelConfig
from tunix_rt.scoring.judge import parse_output
from tunix_rt.train import tokenizer
from tunix_rt.train.data import Example
from tunix_rt.train.eval_rows import score_row, summarize
from tunix_rt.train.evaluate import Evaluator, greedy_decode
from tunix_rt.train.model import Transformer
from tunix_rt.train.sharding import data_mesh

EXAMPLE = Example("05-60+30=", "051419 050709 -520", "-25")


def test_correct_output_scores_one() -> None:
    out = "<reasoning>051419 050709 -520</reasoning><answer>-25</answer>"
    row = score_row(0, EXAMPLE, out, trace_tokens=22, hit_cap=False)
    assert (row.answer_correctness, row.format_valid, row.answer) == (1, True, "-25")
    assert row.reasoning == "051419 050709 -520"


def test_wrong_answer_in_valid_format_scores_zero() -> None:
    row = score_row(0, EXAMPLE, "<reasoning>x</reasoning><answer>25</answer>", 8, False)
    assert (row.answer_correctness, row.format_valid, row.answer) == (0, True, "25")


@pytest.mark.parametrize(
    ("output", "answer"),
    [
        ("-25", None),  # no tags at all
        ("<reasoning>x<answer>-25</answer>", "-25"),  # reasoning never closed
        ("<answer>-25</answer><reasoning>x</reasoning>", "-25"),  # wrong order
        ("<reasoning>x</reasoning><answer>-25", None),  # answer never closed
        ("<reasoning>x</reasoning><answer>-25</answer> trailing", "-25"),
    ],
)
def test_malformed_output_is_not_format_valid(output: str, answer: str | None) -> None:
    parsed = parse_output(output)
    assert not parsed.format_valid
    assert parsed.answer == answer
    row = score_row(0, EXAMPLE, output, 9, False)
    assert row.format_valid is False
    assert row.answer_correctness == int(answer == "-25")


def test_unparsable_answer_scores_zero() -> None:
    row = score_row(0, EXAMPLE, "<reasoning>x</reasoning><answer>minus 25</answer>", 9, False)
    assert row.answer_correctness == 0


def test_over_long_trace_that_hit_the_cap_scores_zero_and_is_counted() -> None:
    row = score_row(0, EXAMPLE, "<reasoning>0000000000", trace_tokens=11, hit_cap=True)
    assert (row.answer_correctness, row.format_valid, row.hit_cap) == (0, False, True)


def test_summary_uses_compute_primary_score_and_reports_the_guardrails() -> None:
    good = "<reasoning>r</reasoning><answer>-25</answer>"
    rows = [
        score_row(0, EXAMPLE, good, 4, False),
        score_row(1, EXAMPLE, good, 6, False),
        score_row(2, EXAMPLE, "<reasoning>r</reasoning><answer>3</answer>", 8, False),
        score_row(3, EXAMPLE, "<reasoning>rrrr", 10, True),
    ]
    metrics = summarize(rows)
    assert metrics["primary_score"] == 0.5
    assert metrics["eval_rows"] == 4
    assert metrics["cap_hit_rate"] == 0.25
    assert metrics["format_valid_rate"] == 0.75
    assert metrics["trace_len_p50"] == 7.0
    assert metrics["trace_len_p95"] == pytest.approx(9.7)


def test_summary_of_no_rows_has_no_primary_score() -> None:
    assert "primary_score" not in summarize([])


def _model(context: int = 32) -> tuple[nnx.GraphDef[Any], Any]:
    model = Transformer(ModelConfig(layers=1, width=32, heads=2, context=context), rngs=nnx.Rngs(1))
    graphdef, state = nnx.split(model)
    return graphdef, nnx.to_pure_dict(state)


def test_greedy_decode_continues_each_prompt_with_the_argmax_of_a_full_forward() -> None:
    graphdef, params = _model()
    prompts = [[tokenizer.BOS, 20, 21, 22], [tokenizer.BOS, 30]]
    buffer = np.zeros((2, 16), np.int32)
    for row, prompt in enumerate(prompts):
        buffer[row, : len(prompt)] = prompt
    prompt_len = jnp.array([len(p) for p in prompts], jnp.int32)
    tokens, generated, stopped = jax.jit(greedy_decode, static_argnums=(0, 4))(
        graphdef, params, jnp.asarray(buffer), prompt_len, 6
    )
    logits = nnx.merge(graphdef, params)(tokens)  # causal: position p sees tokens <= p
    for row, prompt in enumerate(prompts):
        assert tokens[row, : len(prompt)].tolist() == prompt  # prompts untouched
        produced = int(generated[row])
        assert produced == 6 or bool(stopped[row])
        for position in range(len(prompt), len(prompt) + produced):
            assert int(tokens[row, position]) == int(jnp.argmax(logits[row, position - 1]))
        assert (tokens[row, len(prompt) + produced :] == 0).all()  # nothing written past


def test_evaluator_caps_generation_and_reports_hit_cap() -> None:
    graphdef, params = _model()
    examples = [EXAMPLE] * 3
    config = EvalConfig(max_trace_tokens=8, batch_size=2)
    evaluator = Evaluator(graphdef, data_mesh(2), examples, config, context=32)
    rows, metrics = evaluator(params)
    assert [r.index for r in rows] == [0, 1, 2]  # 2 chunks, the last one padded
    for row in rows:  # an untrained model never closes </answer>
        assert row.trace_tokens == 8 and row.hit_cap and row.answer_correctness == 0
    assert metrics["cap_hit_rate"] == 1.0
    assert metrics["trace_len_p95"] == 8.0
    limited, _ = evaluator(params, limit=1)
    assert len(limited) == 1


def test_evaluator_rejects_prompts_that_leave_no_room_to_generate() -> None:
    graphdef, _ = _model(context=32)
    long_prompt = Example("1+" * 20 + "1=", "", "21")
    with pytest.raises(ValueError, match=r"model\.context=32"):
        Evaluator(graphdef, data_mesh(1), [long_prompt], EvalConfig(), context=32)
