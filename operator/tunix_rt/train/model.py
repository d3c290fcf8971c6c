"""A small decoder-only transformer in flax NNX that reads like the math.

    h_0     = E[x] + P[pos]
    h'_l    = h_l + Attn(RMSNorm(h_l))          (causal, multi-head)
    h_{l+1} = h'_l + W_2 gelu(W_1 RMSNorm(h'_l))
    logits  = W_out RMSNorm(h_L)

The same weights serve training (whole sequence) and decoding (one position at a time
against a key/value cache), so evaluation measures exactly the trained function.
"""

from __future__ import annotations

import math
import os
from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from tunix_rt.api.trainer import ModelConfig
from tunix_rt.train import tokenizer

_EMBED_INIT = nnx.initializers.normal(stddev=0.02)

ROPE = os.environ.get("ROPE", "0") == "1"


def rotate(x: jax.Array, positions: jax.Array) -> jax.Array:
    """Rotary position embedding of x [b, t, h, d] at ``positions`` [t]."""
    half = x.shape[-1] // 2
    freqs = 10000.0 ** (-jnp.arange(half, dtype=jnp.float32) / half)
    angles = positions.astype(jnp.float32)[:, None] * freqs[None]
    cos, sin = jnp.cos(angles)[None, :, None], jnp.sin(angles)[None, :, None]
    x1, x2 = x[..., :half], x[..., half:]
    return jnp.concatenate([x1 * cos - x2 * sin, x1 * sin + x2 * cos], axis=-1)


class KVCache(NamedTuple):
    """Per-layer keys and values for a fixed-size buffer, each [batch, time, heads, head_dim]."""

    keys: tuple[jax.Array, ...]
    values: tuple[jax.Array, ...]


class CausalSelfAttention(nnx.Module):
    """softmax(Q K^T / sqrt(d_head) + causal mask) V, for all heads at once."""

    def __init__(self, width: int, heads: int, *, rngs: nnx.Rngs) -> None:
        self.heads = heads
        self.head_dim = width // heads
        self.qkv = nnx.Linear(width, 3 * width, use_bias=False, rngs=rngs)
        self.out = nnx.Linear(width, width, use_bias=False, rngs=rngs)

    def project(self, x: jax.Array, positions: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """x [b, t, width] -> q, k, v each [b, t, heads, head_dim]."""
        b, t, _ = x.shape
        qkv = self.qkv(x).reshape(b, t, 3, self.heads, self.head_dim)
        q, k = qkv[:, :, 0], qkv[:, :, 1]
        if ROPE:
            q, k = rotate(q, positions), rotate(k, positions)
        return q, k, qkv[:, :, 2]

    def attend(self, q: jax.Array, k: jax.Array, v: jax.Array, mask: jax.Array) -> jax.Array:
        """q [b, tq, h, d] against k, v [b, tk, h, d]; mask [tq, tk] or [b, tq, tk] is True where allowed."""
        scores = jnp.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(self.head_dim)
        mask = mask[:, None] if mask.ndim == 3 else mask[None, None]
        scores = jnp.where(mask, scores, jnp.finfo(scores.dtype).min)
        weights = jax.nn.softmax(scores, axis=-1)
        mixed = jnp.einsum("bhqk,bkhd->bqhd", weights, v)
        b, t = mixed.shape[:2]
        return self.out(mixed.reshape(b, t, -1))  # type: ignore[no-any-return]

    def __call__(self, x: jax.Array) -> jax.Array:
        t = x.shape[1]
        q, k, v = self.project(x, jnp.arange(t))
        causal = jnp.tril(jnp.ones((t, t), dtype=bool))
        return self.attend(q, k, v, causal)


class MLP(nnx.Module):
    """W_2 gelu(W_1 x): the per-position lookup table where the digit arithmetic lives."""

    def __init__(self, width: int, ratio: int, *, rngs: nnx.Rngs) -> None:
        self.up = nnx.Linear(width, ratio * width, rngs=rngs)
        self.down = nnx.Linear(ratio * width, width, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.down(jax.nn.gelu(self.up(x)))  # type: ignore[no-any-return]


class Block(nnx.Module):
    """Pre-norm residual block: attention then MLP."""

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
        """One position h [b, 1, width]: write its key/value at ``position``, attend to <= it."""
        q, k, v = self.attn.project(self.attn_norm(h), position[None])
        keys = jax.lax.dynamic_update_slice_in_dim(keys, k, position, axis=1)
        values = jax.lax.dynamic_update_slice_in_dim(values, v, position, axis=1)
        visible = (jnp.arange(keys.shape[1]) <= position)[None, :]
        h = h + self.attn.attend(q, keys, values, visible)
        return h + self.mlp(self.mlp_norm(h)), keys, values


class Transformer(nnx.Module):
    """Token + learned position embeddings, ``layers`` blocks, final norm, vocabulary head."""

    def __init__(self, config: ModelConfig, *, rngs: nnx.Rngs, vocab: int = tokenizer.VOCAB_SIZE):
        self.layers, self.heads, self.width = config.layers, config.heads, config.width
        self.embed = nnx.Embed(vocab, config.width, embedding_init=_EMBED_INIT, rngs=rngs)
        if os.environ.get("FOURIER", "0") != "0":
            scale = float(os.environ["FOURIER"])
            table = self.embed.embedding[...]
            digits = jnp.arange(10)
            feats = [f(2 * jnp.pi * k * digits / 10) for k in (1, 2, 5) for f in (jnp.cos, jnp.sin)]
            feats.append((digits - 4.5) / 4.5)
            f = jnp.stack(feats, -1)  # [10, 7]
            proj = jax.random.orthogonal(jax.random.key(123), config.width)[: f.shape[1]]
            ids = tokenizer.BYTE_OFFSET + ord("0") + digits
            table = table.at[ids].add(scale * 0.02 * (config.width / f.shape[1]) ** 0.5 * f @ proj)
            self.embed.embedding[...] = table
        self.position = nnx.Embed(config.context, config.width, embedding_init=nnx.initializers.normal(float(os.environ.get("POS_STD", "0.02"))), rngs=rngs)
        self.blocks = nnx.List([Block(config, rngs=rngs) for _ in range(config.layers)])
        self.final_norm = nnx.RMSNorm(config.width, rngs=rngs)
        self.head = nnx.Linear(config.width, vocab, use_bias=False, rngs=rngs)

    def __call__(self, tokens: jax.Array) -> jax.Array:
        """tokens [b, t] -> next-token logits [b, t, vocab]."""
        h = self.embed(tokens)
        if not ROPE:
            h = h + self.position(jnp.arange(tokens.shape[1]))[None]
        for block in self.blocks:
            h = block(h)
        return self.head(self.final_norm(h))  # type: ignore[no-any-return]

    def init_cache(self, batch: int, length: int) -> KVCache:
        """An empty cache for ``batch`` rows of ``length`` positions."""
        shape = (batch, length, self.heads, self.width // self.heads)
        zeros = tuple(jnp.zeros(shape, jnp.float32) for _ in range(self.layers))
        return KVCache(zeros, zeros)

    def decode_step(
        self, token: jax.Array, position: jax.Array, cache: KVCache
    ) -> tuple[jax.Array, KVCache]:
        """token [b] at ``position`` -> logits [b, vocab] for the next position, updated cache."""
        h = self.embed(token[:, None])
        if not ROPE:
            h = h + self.position(position)[None, None]
        keys, values = [], []
        for layer, block in enumerate(self.blocks):
            h, k, v = block.decode(h, position, cache.keys[layer], cache.values[layer])
            keys.append(k)
            values.append(v)
        logits = self.head(self.final_norm(h))[:, 0]
        return logits, KVCache(tuple(keys), tuple(values))


def param_count(params: object) -> int:
    """Number of scalar parameters in a params pytree."""
    return sum(int(x.size) for x in jax.tree.leaves(params))
