"""THE train step: masked next-token cross entropy, AdamW with warmup + cosine decay.

Hyperparameters enter as traced scalars, not Python constants, so every trial of a
sweep that shares a model size and batch size also shares one compiled executable
(in-process, and across processes through JAX's persistent compilation cache).
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import nnx
from jax.sharding import Mesh

from tunix_rt.api.trainer import TrainerConfig
from tunix_rt.train import sharding

Params = dict[str, Any]
"""A pure pytree of arrays (``nnx.to_pure_dict`` of the model state)."""

ADAM_B1 = 0.9
ADAM_B2 = 0.99
FINAL_LR_FRACTION = 0.0


class Hyperparams(NamedTuple):
    """The searchable optimisation settings as float32 device scalars."""

    learning_rate: jax.Array
    weight_decay: jax.Array
    warmup_steps: jax.Array
    total_steps: jax.Array
    grad_clip: jax.Array

    @classmethod
    def from_config(cls, config: TrainerConfig) -> Hyperparams:
        values = (
            config.learning_rate,
            config.weight_decay,
            config.warmup_steps,
            config.max_steps,
            config.grad_clip,
        )
        return cls(*(jnp.asarray(v, jnp.float32) for v in values))


class TrainState(NamedTuple):
    """Everything a resumed run needs besides the config: step, params, optimizer moments."""

    step: jax.Array
    params: Params
    opt_state: optax.OptState


def learning_rate_at(step: jax.Array, hp: Hyperparams) -> jax.Array:
    """Linear warmup to the peak over ``warmup_steps``, then cosine decay to the end."""
    step = step.astype(jnp.float32)
    warmup = jnp.maximum(hp.warmup_steps, 1.0)
    decay_steps = jnp.maximum(hp.total_steps - hp.warmup_steps, 1.0)
    progress = jnp.clip((step - hp.warmup_steps) / decay_steps, 0.0, 1.0)
    cosine = FINAL_LR_FRACTION + (1 - FINAL_LR_FRACTION) * 0.5 * (1 + jnp.cos(math.pi * progress))
    warm = jnp.minimum((step + 1.0) / warmup, 1.0)
    return hp.learning_rate * jnp.where(step < hp.warmup_steps, warm, cosine)


def _decay_mask(params: Params) -> Any:
    """Decay matrices only; norm scales and biases are not regularised."""
    return jax.tree.map(lambda p: p.ndim >= 2, params)


def optimizer(
    learning_rate: Any, weight_decay: Any, grad_clip: Any
) -> optax.GradientTransformation:
    """Global-norm clipping, then optax AdamW (decoupled weight decay on matrices)."""
    return optax.chain(
        optax.clip_by_global_norm(grad_clip),
        optax.adamw(
            learning_rate, b1=ADAM_B1, b2=ADAM_B2, weight_decay=weight_decay, mask=_decay_mask
        ),
    )


def init_state(params: Params) -> TrainState:
    """Step 0 with zeroed Adam moments (the values given here only fix the state's structure)."""
    opt_state = optimizer(0.0, 0.0, 1.0).init(params)
    return TrainState(jnp.zeros((), jnp.int32), params, opt_state)


def loss_fn(
    params: Params, graphdef: nnx.GraphDef[Any], tokens: jax.Array, loss_mask: jax.Array
) -> jax.Array:
    """Mean cross entropy of predicting token t+1 from tokens <= t, over masked targets.

    ``loss_mask`` marks the reasoning + answer tokens (the prompt is context, not a target).
    """
    model = nnx.merge(graphdef, params)
    logits = model(tokens[:, :-1])
    targets = tokens[:, 1:]
    weights = loss_mask[:, 1:].astype(jnp.float32)
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, targets)
    return jnp.sum(ce * weights) / jnp.maximum(jnp.sum(weights), 1.0)


def train_step(
    graphdef: nnx.GraphDef[Any],
    state: TrainState,
    tokens: jax.Array,
    loss_mask: jax.Array,
    hp: Hyperparams,
) -> tuple[TrainState, jax.Array]:
    """One AdamW update on one batch; returns the new state and the batch loss."""
    loss, grads = jax.value_and_grad(loss_fn)(state.params, graphdef, tokens, loss_mask)
    lr = learning_rate_at(state.step, hp)
    tx = optimizer(lr, hp.weight_decay, hp.grad_clip)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    return TrainState(state.step + 1, params, opt_state), loss


@functools.cache
def jitted_train_step(mesh: Mesh) -> Any:
    """``train_step`` compiled for ``mesh``: batch split over 'data', state replicated.

    Cached per mesh so repeated trials in one process reuse the executable.
    """
    replicated = sharding.replicated(mesh)
    batch = sharding.rows(mesh)
    return jax.jit(
        train_step,
        static_argnums=0,
        in_shardings=(replicated, batch, batch, replicated),
        out_shardings=(replicated, replicated),
        donate_argnums=1,
    )
