"""Evaluation: batched, jitted greedy decoding with a KV cache and the trace guardrail.

One compiled ``lax.while_loop`` decodes a whole chunk of rows in lockstep over a fixed
buffer (fixed shapes: no recompiles) and exits as soon as every row has closed its
``</answer>`` or spent its ``max_trace_tokens`` budget.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import Mesh

from tunix_rt.api.trainer_sections import EvalConfig
from tunix_rt.train import sharding, tokenizer
from tunix_rt.train.data import Example, encode_prompt
from tunix_rt.train.eval_rows import EvalRow, score_row, summarize


class Decoded(NamedTuple):
    """Decoder output: the buffer with prompts and generations, per-row counts and stops."""

    tokens: jax.Array
    generated: jax.Array
    stopped: jax.Array


class _Carry(NamedTuple):
    """The while-loop state: next position, buffer, KV cache, per-row progress."""

    position: jax.Array
    buffer: jax.Array
    cache: Any
    generated: jax.Array
    stopped: jax.Array


def greedy_decode(
    graphdef: nnx.GraphDef[Any],
    params: Any,
    buffer: jax.Array,
    prompt_len: jax.Array,
    max_new: int,
) -> Decoded:
    """Greedy continuation of each row's prompt in ``buffer`` [b, length].

    All rows advance one position per iteration; while a row is still inside its prompt
    the prompt token is kept (teacher-forced prefill), afterwards the argmax is written.
    A row with ``prompt_len == 0`` is padding and counts as finished from the start.
    """
    model = nnx.merge(graphdef, params)
    batch, length = buffer.shape
    stop = jnp.asarray(tokenizer.STOP_TOKENS, jnp.int32)

    def finished(c: _Carry) -> jax.Array:
        return c.stopped | (c.generated >= max_new) | (prompt_len == 0)

    def cond(c: _Carry) -> jax.Array:
        return (c.position + 1 < length) & ~jnp.all(finished(c))

    def body(c: _Carry) -> _Carry:
        logits, cache = model.decode_step(c.buffer[:, c.position], c.position, c.cache)
        next_token = jnp.argmax(logits, axis=-1).astype(jnp.int32)
        writes = (c.position + 1 >= prompt_len) & ~finished(c)
        current = c.buffer[:, c.position + 1]
        column = jnp.where(writes, next_token, current)
        buffer = jax.lax.dynamic_update_slice_in_dim(c.buffer, column[:, None], c.position + 1, 1)
        stopped = c.stopped | (writes & jnp.isin(next_token, stop))
        return _Carry(c.position + 1, buffer, cache, c.generated + writes, stopped)

    start = _Carry(
        jnp.zeros((), jnp.int32),
        buffer,
        model.init_cache(batch, length),
        jnp.zeros((batch,), jnp.int32),
        jnp.zeros((batch,), bool),
    )
    end = jax.lax.while_loop(cond, body, start)
    return Decoded(end.buffer, end.generated, end.stopped)


@functools.cache
def jitted_decode(mesh: Mesh) -> Any:
    """``greedy_decode`` compiled for ``mesh``: rows split over 'data', params replicated."""
    replicated = sharding.replicated(mesh)
    rows = sharding.rows(mesh)
    return jax.jit(
        greedy_decode,
        static_argnums=(0, 4),
        in_shardings=(replicated, rows, rows),
        out_shardings=rows,
    )


class Evaluator:
    """Scores params on the eval split: prompts encoded once, decoded in fixed-size chunks.

    Every call uses the same chunk shape, so the decoder compiles once per run (and once
    per process across trials of the same model size).
    """

    def __init__(
        self,
        graphdef: nnx.GraphDef[Any],
        mesh: Mesh,
        examples: Sequence[Example],
        config: EvalConfig,
        context: int,
    ) -> None:
        self.graphdef, self.examples, self.config = graphdef, list(examples), config
        prompts = [encode_prompt(ex.prompt) for ex in self.examples]
        for index, prompt in enumerate(prompts):
            if len(prompt) >= context:
                raise ValueError(
                    f"eval row {index}: the prompt is {len(prompt)} tokens, which leaves no room "
                    f"to generate within model.context={context}; raise model.context"
                )
        self.length = min(context, max(map(len, prompts)) + config.max_trace_tokens)
        devices = mesh.devices.size
        rows = -(-min(config.batch_size, len(prompts)) // devices) * devices
        self.chunk = rows
        self.buffer = np.zeros((len(prompts), self.length), np.int32)
        self.prompt_len = np.array([len(p) for p in prompts], np.int32)
        for row, prompt in enumerate(prompts):
            self.buffer[row, : len(prompt)] = prompt
        self.row_sharding = sharding.rows(mesh)
        self.decode = jitted_decode(mesh)

    def generate(self, params: Any, limit: int | None = None) -> list[tuple[list[int], bool]]:
        """Greedy generations of the first ``limit`` rows: (tokens, hit_cap) per row."""
        count = len(self.examples) if limit is None else min(limit, len(self.examples))
        out: list[tuple[list[int], bool]] = []
        for start in range(0, count, self.chunk):
            stop = min(start + self.chunk, count)
            buffer = np.zeros((self.chunk, self.length), np.int32)
            prompt_len = np.zeros((self.chunk,), np.int32)  # 0 marks a padding row
            buffer[: stop - start] = self.buffer[start:stop]
            prompt_len[: stop - start] = self.prompt_len[start:stop]
            decoded = self.decode(
                self.graphdef,
                params,
                jax.device_put(buffer, self.row_sharding),
                jax.device_put(prompt_len, self.row_sharding),
                self.config.max_trace_tokens,
            )
            tokens, generated, stopped = sharding.fetch(decoded)
            for row in range(stop - start):
                begin = int(prompt_len[row])
                end = begin + int(generated[row])
                out.append((tokens[row, begin:end].tolist(), not bool(stopped[row])))
        return out

    def __call__(
        self, params: Any, limit: int | None = None
    ) -> tuple[list[EvalRow], dict[str, float]]:
        """Eval rows and their summary metrics (primary_score among them)."""
        rows = [
            score_row(index, self.examples[index], tokenizer.decode(tokens), len(tokens), hit_cap)
            for index, (tokens, hit_cap) in enumerate(self.generate(params, limit))
        ]
        return rows, summarize(rows)
