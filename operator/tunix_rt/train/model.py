"""A small decoder-only transformer in flax NNX that reads like the math.

    h_0     = E[x_t] + P[t]
    h'_l    = h_l + Attn(RMSNorm(h_l))            (causal, multi-head)
    h_{l+1} = h'_l + W_2 gelu(W_1 RMSNorm(h'_l))
    logits  = W_out RMSNorm(h_L)

Positions are learned absolute embeddings: dev-reasoning-v2 puts every digit in a fixed
column, and "read position p" is then the easiest attention pattern to learn (rotary
embeddings learned markedly slower here). The same weights serve training (whole
sequence at once) and decoding (one position at a time against a key/value cache), so
evaluation scores exactly the trained function.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from tunix_rt.api.trainer_sections import ModelConfig
from tunix_rt.train import tokenizer

_EMBED_INIT = nnx.initializers.normal(stddev=0.02)
_MASKED = float(np.finfo(np.float32).min)


class KVCache(NamedTuple):
    """Per-layer keys and values for a fixed-size buffer, each [batch, time, heads, head_dim]."""

    keys: tuple[jax.Array, ...]
    values: tuple[jax.Array, ...]


class CausalSelfAttention(nnx.Module):
    """softmax(Q K^T / sqrt(d_head) + causal mask) V, all heads at once."""

    def __init__(self, width: int, heads: int, *, rngs: nnx.Rngs) -> None:
        self.heads = heads
        self.head_dim = width // heads
        self.qkv = nnx.Linear(width, 3 * width, use_bias=False, rngs=rngs)
        self.out = nnx.Linear(width, width, use_bias=False, rngs=rngs)

    def project(self, x: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """x [b, t, width] -> q, k, v, each [b, t, heads, head_dim]."""
        b, t, _ = x.shape
        qkv = self.qkv(x).reshape(b, t, 3, self.heads, self.head_dim)
        return qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]

    def attend(self, q: jax.Array, k: jax.Array, v: jax.Array, allowed: jax.Array) -> jax.Array:
        """q [b, tq, h, d] against k, v [b, tk, h, d]; ``allowed`` [tq, tk] masks keys."""
        scores = jnp.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(self.head_dim)
        scores = jnp.where(allowed[None, None], scores, _MASKED)
        mixed = jnp.einsum("bhqk,bkhd->bqhd", jax.nn.softmax(scores, axis=-1), v)
        b, t = mixed.shape[:2]
        out: jax.Array = self.out(mixed.reshape(b, t, -1))
        return out

    def __call__(self, x: jax.Array) -> jax.Array:
        q, k, v = self.project(x)
        t = x.shape[1]
        return self.attend(q, k, v, jnp.tril(jnp.ones((t, t), dtype=bool)))


class MLP(nnx.Module):
    """W_2 gelu(W_1 x): the per-position lookup table where the digit arithmetic lives."""

    def __init__(self, width: int, ratio: int, *, rngs: nnx.Rngs) -> None:
        self.up = nnx.Linear(width, ratio * width, rngs=rngs)
        self.down = nnx.Linear(ratio * width, width, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        out: jax.Array = self.down(jax.nn.gelu(self.up(x)))
        return out


class Block(nnx.Module):
    """Pre-norm residual block: attention, then MLP."""

    def __init__(self, config: ModelConfig, *, rngs: nnx.Rngs) -> None:
        self.attn_norm = nnx.RMSNorm(config.width, rngs=rngs)
        self.attn = CausalSelfAttention(config.width, config.heads, rngs=rngs)
        self.mlp_norm = nnx.RMSNorm(config.width, rngs=rngs)
        self.mlp = MLP(config.width, config.mlp_ratio, rngs=rngs)

    def __call__(self, h: jax.Array) -> jax.Array:
        h = h + self.attn(self.attn_norm(h))
        return h + self.mlp(self.mlp_norm(h))

    def decode(
        self, h: jax.Array, position: jax.Array, keys: jax.Array, values: jax.Array
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        """One position h [b, 1, width]: store its key/value at ``position``, attend to <= it."""
        q, k, v = self.attn.project(self.attn_norm(h))
        keys = jax.lax.dynamic_update_slice_in_dim(keys, k, position, axis=1)
        values = jax.lax.dynamic_update_slice_in_dim(values, v, position, axis=1)
        visible = (jnp.arange(keys.shape[1]) <= position)[None, :]
        h = h + self.attn.attend(q, keys, values, visible)
        return h + self.mlp(self.mlp_norm(h)), keys, values


class Transformer(nnx.Module):
    """Token + position embeddings, ``layers`` blocks, final norm, vocabulary head."""

    def __init__(
        self, config: ModelConfig, *, rngs: nnx.Rngs, vocab: int = tokenizer.VOCAB_SIZE
    ) -> None:
        self.layers, self.heads, self.width = config.layers, config.heads, config.width
        self.embed = nnx.Embed(vocab, config.width, embedding_init=_EMBED_INIT, rngs=rngs)
        self.position = nnx.Embed(
            config.context, config.width, embedding_init=_EMBED_INIT, rngs=rngs
        )
        self.blocks = nnx.List([Block(config, rngs=rngs) for _ in range(config.layers)])
        self.final_norm = nnx.RMSNorm(config.width, rngs=rngs)
        self.head = nnx.Linear(config.width, vocab, use_bias=False, rngs=rngs)

    def __call__(self, tokens: jax.Array) -> jax.Array:
        """tokens [b, t] -> next-token logits [b, t, vocab]."""
        h = self.embed(tokens) + self.position(jnp.arange(tokens.shape[1]))[None]
        for block in self.blocks:
            h = block(h)
        logits: jax.Array = self.head(self.final_norm(h))
        return logits

    def init_cache(self, batch: int, length: int) -> KVCache:
        """An empty cache for ``batch`` rows of ``length`` positions."""
        shape = (batch, length, self.heads, self.width // self.heads)
        zeros = tuple(jnp.zeros(shape, jnp.float32) for _ in range(self.layers))
        return KVCache(zeros, zeros)

    def decode_step(
        self, token: jax.Array, position: jax.Array, cache: KVCache
    ) -> tuple[jax.Array, KVCache]:
        """token [b] at ``position`` -> next-token logits [b, vocab] and the updated cache."""
        h = self.embed(token[:, None]) + self.position(position)[None, None]
        keys, values = [], []
        for block, k, v in zip(self.blocks, cache.keys, cache.values, strict=True):
            h, k, v = block.decode(h, position, k, v)
            keys.append(k)
            values.append(v)
        logits: jax.Array = self.head(self.final_norm(h))[:, 0]
        return logits, KVCache(tuple(keys), tuple(values))


def param_count(params: Any) -> int:
    """Number of scalar parameters in a params pytree."""
    return sum(int(x.size) for x in jax.tree.leaves(params))


def train_flops_per_token(
    config: ModelConfig, sequence: int, vocab: int = tokenizer.VOCAB_SIZE
) -> float:
    """Analytic matmul FLOPs of one training token (forward + backward = 3 x forward).

    Forward per token: 2 x (weights touched) for the dense layers, plus the attention
    score and mixing products, 2 x 2 x sequence x width per layer (full, unmasked: what
    the dense einsums compute).
    """
    w, layers = config.width, config.layers
    dense = layers * (4 * w * w + 2 * config.mlp_ratio * w * w) + w * vocab
    attention = layers * 2 * sequence * w
    return 3.0 * 2.0 * (dense + attention)
