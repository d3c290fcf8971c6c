"""GRPO's wiring on the committed SFT checkpoint (issue 25, item 1): the policy GRPO trains
is scored on the tokens SFT taught, and the rewards judge what the eval judges.

Had GRPO's log-probabilities been read one position off, or its prompts built without the
BOS that SFT put in front of every prompt, the policy gradient would push up tokens the
model never produced: the score falls while the reward stays flat, which is what the GRPO
examples showed. These checks rule that out on the real model (benchmarks/README.md,
"GRPO on gemma3-tiny").
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

pytest.importorskip("tunix", reason="the tunix extra is not installed")

from support.trainer import FULLSTOP_CHECKPOINT, full_from_sft
from tunix_rt.scoring.rewards import reward_fns
from tunix_rt.train import data
from tunix_rt.train import tokenizer as byte_tokenizer
from tunix_rt.train.backends import tunix_eval, tunix_grpo, tunix_model, tunix_sft

pytestmark = pytest.mark.slow

CONFIG = full_from_sft(
    "tunix-grpo",
    {"batchSize": 8, "dataset": {"trainSize": 64, "evalSize": 8}, "eval": {"maxTraceTokens": 32}},
)


def test_grpo_reads_the_log_probabilities_sft_trained(tmp_path: Path) -> None:
    """Tunix's RL path (left-padded prompt, right-padded completion) gives every gold
    completion token the log-probability the SFT path ([BOS] prompt target [EOS]) gives it,
    and the SFT start is confident on them (what SFT trained)."""
    import jax
    import jax.numpy as jnp
    from flax import nnx
    from tunix.rl import common

    examples = data.load_dataset(CONFIG.dataset).train[:16]
    built = tunix_model.build(CONFIG, tmp_path, lambda line: None)
    adapter = built.tokenizer.adapter

    # The SFT path: the rows and the model inputs the SFT trainer feeds.
    tokens, mask = tunix_sft.sft_rows(examples, built.tokenizer, context=64)
    inputs = tunix_sft.model_inputs(adapter.pad_id())(
        SimpleNamespace(input_tokens=tokens, input_mask=mask)
    )

    @nnx.jit  # one program (as the SFT trainer's step runs the model), not op by op
    def sft_logps(model: Any, tokens: jax.Array, positions: jax.Array, attention: jax.Array) -> Any:
        logits, _ = model(tokens, positions=positions, cache=None, attention_mask=attention)
        log_probs = jax.nn.log_softmax(logits[:, :-1], axis=-1)
        return jnp.take_along_axis(log_probs, tokens[:, 1:, None], axis=-1)[..., 0]

    logp = np.asarray(
        sft_logps(built.model, jnp.asarray(tokens), inputs["positions"], inputs["attention_mask"])
    )
    sft = [logp[row][mask[row, 1:]] for row in range(len(examples))]

    # The GRPO path: each prompt as the rollout's sampler tokenizes it (its BOS), left-padded
    # in the buffer GRPO sizes, and SFT's own target tokens as the completion, right-padded
    # as the learner pads them.
    prompt_len = tunix_grpo.prompt_length(examples, built.tokenizer)
    sampler = tunix_eval.make_sampler(built.model, built.tokenizer, prompt_len + 32)
    prompts = np.full((len(examples), prompt_len), adapter.pad_id(), np.int32)
    completions = np.full((len(examples), int(mask.sum(axis=1).max())), adapter.pad_id(), np.int32)
    for row, ex in enumerate(examples):
        start = int(np.argmax(mask[row]))  # the first target token
        prompt = [int(t) for t in sampler.tokenize(ex.prompt)]
        assert prompt == tokens[row, :start].tolist(), f"row {row}: the rollout's prompt differs"
        prompts[row, prompt_len - len(prompt) :] = prompt
        target = tokens[row][mask[row]]
        completions[row, : len(target)] = target
    graph, state = nnx.split(built.model)
    rl = np.asarray(
        common.compute_per_token_logps(
            graph,
            state,
            jnp.asarray(prompts),
            jnp.asarray(completions),
            pad_id=adapter.pad_id(),
            eos_id=adapter.eos_id(),
        )
    )
    for row in range(len(examples)):
        grpo = rl[row][completions[row] != adapter.pad_id()]
        np.testing.assert_allclose(grpo, sft[row], atol=1e-4, err_msg=f"row {row}")
    mean = float(np.mean(np.concatenate(sft)))
    assert mean > -0.5, f"the SFT start is not confident on its own targets: {mean:.3f}/token"


def test_rewards_of_gold_and_wrong_completions() -> None:
    """The text GRPO's rollout decodes (tags as text, cut at EOS) is judged as the eval
    judges it: the gold completion gets every reward, a wrong answer none for correctness."""
    examples = data.load_dataset(CONFIG.dataset).train[:4]
    fns = reward_fns(32, lambda text: len(byte_tokenizer.encode(text)))
    targets = [byte_tokenizer.format_target(e.reasoning, e.answer) for e in examples]
    gold = [byte_tokenizer.decode(byte_tokenizer.encode(text)) for text in targets]
    wrong = [
        text.replace(f"<answer>{e.answer}<", "<answer>1234<")
        for text, e in zip(gold, examples, strict=True)
    ]
    assert all(w != g for w, g in zip(wrong, gold, strict=True))
    answers = [e.answer for e in examples]
    for fn, on_gold, on_wrong in zip(fns, (1.0, 0.5, 0.0), (0.0, 0.5, 0.0), strict=True):
        assert fn(prompts=[], completions=gold, answer=answers) == [on_gold] * 4, fn.__name__
        assert fn(prompts=[], completions=wrong, answer=answers) == [on_wrong] * 4, fn.__name__


def test_grpo_repairs_the_full_stop_start_as_its_reward_says() -> None:
    """End to end, reward to score: from the SFT start that ends its answers with a full
    stop (examples/trainer-tunix-sft-tiny-fullstop.yaml), 40 GRPO steps of the repair
    sweep's best config drop the stop the answer reward does not pay for, and the score
    rises with it (benchmarks/README.md, "GRPO repairs a flawed SFT start": 0.047 -> 0.219).
    A reward misaligned with the score, or a gradient on the wrong tokens, keeps the stop."""
    from tunix_rt.train.backends import run_trial
    from tunix_rt.train.backends.tunix_loop import START_SCORE

    config = full_from_sft(
        "tunix-grpo",
        {
            "learningRate": 5.517e-5,
            "klBeta": 0.0,
            "temperature": 0.7,
            "numGenerations": 4,
            "batchSize": 16,
            "maxGenerationLength": 32,
            "warmupSteps": 0,
            "maxSteps": 40,
            "logEvery": 10,
            "dataset": {"trainSize": 2000, "evalSize": 64},
            "eval": {"maxTraceTokens": 32, "batchSize": 64},
        },
        checkpoint=FULLSTOP_CHECKPOINT,
    )
    lines: list[str] = []
    result = run_trial(config, log=lines.append)
    stops = sum(1 for row in result.eval_rows if (row.answer or "").endswith("."))
    assert result.metrics[START_SCORE] < 0.1, "the start should score near 0 (its stops)"
    assert result.primary_score is not None
    assert result.primary_score >= result.metrics[START_SCORE] + 0.05, lines[-3:]
    # the start ends 119 of its 128 SFT eval answers with a stop; 40 steps leave 15 of 64
    assert stops <= 16, f"{stops} of 64 answers still end with a stop"
