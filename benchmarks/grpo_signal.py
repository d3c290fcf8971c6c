"""How much signal GRPO gets from a starting checkpoint: sample groups, judge them with the
GRPO rewards, and count the groups whose rewards differ (issue 25, item 1).

GRPO's advantage is a reward minus its group's mean: a group whose completions all score
the same teaches nothing. Before blaming a recipe, measure how often the start samples a
right answer at the rollout temperature, and in how many groups correctness varies.

    uv run python benchmarks/grpo_signal.py [--prompts 64] [--generations 4 8] \
        [--temperatures 0.7 1.0] [--checkpoint PATH (default: the committed SFT start)]

Prints one JSON object per (temperature, generations) and the greedy score on the eval rows.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tunix_rt.api.trainer import TrainerConfig
from tunix_rt.scoring.rewards import reward_fns
from tunix_rt.train import data
from tunix_rt.train.backends import tunix_eval, tunix_model
from tunix_rt.train.backends.tunix_grpo import prompt_length
from tunix_rt.train.data import Example

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINT = ROOT / "examples" / "checkpoints" / "gemma3-tiny-sft" / "model.safetensors"


def sample_groups(
    built: Any,
    examples: Sequence[Example],
    generations: int,
    temperature: float,
    cap: int,
    seed: int,
) -> list[str]:
    """``generations`` completions per prompt (prompt-major, as Tunix's rollout orders them),
    in the prompt buffer GRPO's rollout uses."""
    plen = prompt_length(examples, built.tokenizer)
    sampler = tunix_eval.make_sampler(built.model, built.tokenizer, plen + cap)
    out = sampler(
        [ex.prompt for ex in examples for _ in range(generations)],
        max_generation_steps=cap,
        max_prompt_length=plen,
        temperature=temperature,
        top_p=1.0,
        echo=False,
        seed=seed,
    )
    return list(out.text)


def signal(rewards: dict[str, np.ndarray], generations: int) -> dict[str, float]:
    """Mean reward per function, and the share of groups in which each reward varies."""
    out: dict[str, float] = {}
    total = sum(rewards.values())
    for name, values in [*rewards.items(), ("total", total)]:
        groups = values.reshape(-1, generations)
        out[f"{name}_mean"] = float(values.mean())
        out[f"{name}_groups_varying"] = float((groups.std(axis=1) > 1e-9).mean())
    correct = rewards["answer_correct"].reshape(-1, generations)
    out["prompts_ever_right"] = float((correct.max(axis=1) > 0).mean())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=str(CHECKPOINT))
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--generations", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--temperatures", type=float, nargs="+", default=[0.7, 1.0])
    parser.add_argument("--cap", type=int, default=32, help="eval.maxTraceTokens")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    config = TrainerConfig.model_validate(
        {
            "backend": "tunix-grpo",
            "model": {"name": "gemma3-tiny", "checkpoint": args.checkpoint},
            "loraRank": 0,
            "dataset": {"trainSize": 2000, "evalSize": 64},
            "eval": {"maxTraceTokens": args.cap, "batchSize": 64},
        }
    )
    dataset = data.load_dataset(config.dataset)
    with tunix_model.built_in_workdir(config, lambda _: None, "grpo-signal-") as built:
        rows, summary = tunix_eval.TunixEvaluator(dataset.eval, built.tokenizer, config)(
            built.model
        )
        print(json.dumps({"greedy_eval": summary.get("primary_score"), "rows": len(rows)}))
        fns = reward_fns(args.cap, built.tokenizer.count)
        train = dataset.train[: args.prompts]
        answers = [ex.answer for ex in train]
        print(json.dumps({"prompt_length": prompt_length(train, built.tokenizer)}))
        for temperature in args.temperatures:
            for generations in args.generations:
                started = time.perf_counter()
                texts = sample_groups(built, train, generations, temperature, args.cap, args.seed)
                expected = [a for a in answers for _ in range(generations)]
                rewards = {
                    fn.__name__: np.array(fn(prompts=[], completions=texts, answer=expected))
                    for fn in fns
                }
                row: dict[str, Any] = {"temperature": temperature, "generations": generations}
                row |= signal(rewards, generations)
                row["seconds"] = round(time.perf_counter() - started, 1)
                row["example"] = texts[0]
                print(json.dumps(row))


if __name__ == "__main__":
    main()
