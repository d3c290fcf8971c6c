"""The Tunix backends' eval: greedy generation with Tunix's sampler, judged with the same
parser and trace-length guardrail as the built-in one."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from tunix_rt.api.trainer import TrainerConfig
from tunix_rt.scoring.judge import ANSWER_CLOSE
from tunix_rt.train.backends.tunix_tokenizer import Tokenizer
from tunix_rt.train.data import Example
from tunix_rt.train.eval_rows import EvalRow, score_row, summarize


class TunixEvaluator:
    """Greedy generation with Tunix's sampler, judged like the built-in eval: the text is
    cut at the first ``</answer>`` and a trace that has not closed its answer within
    ``eval.maxTraceTokens`` tokens hit the cap (``train/evaluate.py``'s ``score_row``)."""

    def __init__(
        self, examples: Sequence[Example], tokenizer: Tokenizer, config: TrainerConfig
    ) -> None:
        self.examples = list(examples)
        self.tokenizer = tokenizer
        self.cap = config.eval.max_trace_tokens
        self.batch = min(config.eval.batch_size, len(self.examples))
        adapter = tokenizer.adapter
        longest = max(len(adapter.encode(ex.prompt)) + 1 for ex in self.examples)
        self.prompt_length = 1 << max(longest - 1, 1).bit_length()  # a power of two

    def generate(self, model: Any, limit: int | None = None) -> list[list[int]]:
        """Generated token ids per row (up to ``cap`` each, EOS excluded)."""
        sampler = make_sampler(model, self.tokenizer, self.prompt_length + self.cap)
        count = len(self.examples) if limit is None else min(limit, len(self.examples))
        out: list[list[int]] = []
        for start in range(0, count, self.batch):
            prompts = [ex.prompt for ex in self.examples[start : min(start + self.batch, count)]]
            padded = prompts + [prompts[0]] * (self.batch - len(prompts))  # one shape
            result = sampler(
                padded,
                max_generation_steps=self.cap,
                max_prompt_length=self.prompt_length,
                temperature=0.0,
                echo=False,
            )
            out.extend([int(t) for t in tokens] for tokens in result.tokens[: len(prompts)])
        return out

    def row(self, index: int, tokens: list[int]) -> EvalRow:
        """Score one generation exactly as the built-in eval would."""
        stop = stop_index(tokens, self.tokenizer.adapter.decode)
        if stop is None:
            used, hit_cap = tokens, len(tokens) >= self.cap
        else:
            used, hit_cap = tokens[:stop], False
        return score_row(
            index, self.examples[index], self.tokenizer.adapter.decode(used), len(used), hit_cap
        )

    def __call__(
        self, model: Any, limit: int | None = None
    ) -> tuple[list[EvalRow], dict[str, float]]:
        rows = [self.row(i, tokens) for i, tokens in enumerate(self.generate(model, limit))]
        return rows, summarize(rows)


def make_sampler(model: Any, tokenizer: Tokenizer, cache_size: int) -> Any:
    """Tunix's ``Sampler`` over ``model`` with a KV cache of ``cache_size`` tokens (prompt
    buffer plus generation), as the eval and GRPO's vanilla rollout build it."""
    from tunix.generate import sampler as sampler_lib  # type: ignore[import-untyped]

    config = model.config
    return sampler_lib.Sampler(
        transformer=model,
        tokenizer=tokenizer.adapter,
        cache_config=sampler_lib.CacheConfig(
            cache_size=cache_size,
            num_layers=config.num_layers,
            num_kv_heads=config.num_kv_heads,
            head_dim=config.head_dim,
        ),
    )


def stop_index(tokens: Sequence[int], decode: Callable[[list[int]], str]) -> int | None:
    """The fewest leading tokens whose text holds ``</answer>`` (where the built-in
    decoder stops), or None. Binary search: holding it is monotone in the prefix."""
    if ANSWER_CLOSE not in decode(list(tokens)):
        return None
    low, high = 1, len(tokens)
    while low < high:
        middle = (low + high) // 2
        if ANSWER_CLOSE in decode(list(tokens[:middle])):
            high = middle
        else:
            low = middle + 1
    return low
