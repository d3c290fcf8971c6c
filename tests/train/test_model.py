from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from tunix_rt.api.trainer_sections import ModelConfig
from tunix_rt.train import tokenizer
from tunix_rt.train.model import Transformer, param_count, train_flops_per_token


@nnx.jit  # a model's forward as one program, not op by op
def forward(model: Transformer, tokens: jax.Array) -> jax.Array:
    return model(tokens)


def test_forward_shapes_and_causality() -> None:
    config = ModelConfig(layers=2, width=32, heads=4, context=32)
    model = Transformer(config, rngs=nnx.Rngs(0))
    tokens = jax.random.randint(jax.random.key(0), (3, 12), 0, tokenizer.VOCAB_SIZE)
    logits = forward(model, tokens)
    assert logits.shape == (3, 12, tokenizer.VOCAB_SIZE)
    changed = tokens.at[:, 8].set((tokens[:, 8] + 1) % tokenizer.VOCAB_SIZE)
    after = forward(model, changed)
    np.testing.assert_array_equal(logits[:, :8], after[:, :8])  # no peeking ahead
    assert not np.allclose(logits[:, 8:], after[:, 8:])


def test_cached_decoding_equals_the_full_forward() -> None:
    config = ModelConfig(layers=2, width=32, heads=2, context=32)
    model = Transformer(config, rngs=nnx.Rngs(0))
    tokens = jax.random.randint(jax.random.key(1), (2, 10), 0, tokenizer.VOCAB_SIZE)
    cache = model.init_cache(2, 16)
    decode_step = nnx.jit(Transformer.decode_step)  # one program for every position
    steps = []
    for position in range(10):
        logits, cache = decode_step(model, tokens[:, position], jnp.asarray(position), cache)
        steps.append(logits)
    np.testing.assert_allclose(jnp.stack(steps, 1), forward(model, tokens), atol=1e-4)


def test_size_follows_the_config() -> None:
    small = nnx.state(Transformer(ModelConfig(layers=1, width=32, heads=2), rngs=nnx.Rngs(0)))
    big = nnx.state(Transformer(ModelConfig(layers=2, width=64, heads=2), rngs=nnx.Rngs(0)))
    assert param_count(big) > 3 * param_count(small)
    flops = train_flops_per_token(ModelConfig(layers=2, width=64, heads=2), sequence=40)
    assert flops > 6 * param_count(big) * 0.5
