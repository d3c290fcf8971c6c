"""The Gemma3 model a Tunix trial trains: its config by name, the mesh, its weights (or a
random init, which the ModelSource and the log say plainly), and LoRA adapters.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import Mesh

from tunix_rt.api.memory_estimate import GEMMA3, TINY
from tunix_rt.api.trainer import TrainerConfig
from tunix_rt.api.trainer_backends import DEFAULT_LORA_RANK, tunix_model_name
from tunix_rt.train.backends.tunix_tokenizer import Tokenizer, load_tokenizer
from tunix_rt.train.backends.tunix_weights import (
    base_weights,
    checkpoint_format,
    fetch,
    flatten,
    load_weights,
    sha256_of,
    unflatten,
)
from tunix_rt.train.result import Log, ModelSource

TINY_DIMS: dict[str, Any] = GEMMA3[TINY].tunix_dims()
"""gemma3-tiny: Gemma3's architecture at ~150k parameters (with the byte vocabulary); its
sizes are the admission estimate's (``tunix_rt.api.memory_estimate.GEMMA3``)."""


LORA_MODULES = (
    ".*q_einsum|.*kv_einsum|.*qkv_einsum|.*attn_vec_einsum|.*gate_proj|.*up_proj|.*down_proj"
)
"""Where LoRA adapters go: every attention and MLP projection."""
VERSION_PACKAGES = ("google-tunix", "qwix", "jax", "flax", "optax", "orbax-checkpoint")


def gemma_config(name: str, vocab_size: int) -> Any:
    """Tunix's ``gemma3 ModelConfig`` for ``model.name`` (gemma3-tiny: float32 params and
    the tokenizer's vocabulary; the named configs keep Gemma's 262144-token vocabulary)."""
    from tunix.models.gemma3 import model as gemma  # type: ignore[import-untyped]

    canonical = tunix_model_name(name)
    if canonical is None:
        raise ValueError(f"model.name {name!r} is not a Tunix model")
    if canonical == TINY:
        return gemma.ModelConfig(num_embed=vocab_size, param_dtype=jnp.float32, **TINY_DIMS)
    factory = canonical.replace("-", "_")
    if not hasattr(gemma.ModelConfig, factory):
        factory += "_pt"
    config = getattr(gemma.ModelConfig, factory)()
    if vocab_size > config.num_embed:
        raise ValueError(
            f"model.tokenizer has {vocab_size} tokens, more than {canonical}'s "
            f"{config.num_embed}; use the tokenizer the checkpoint was trained with"
        )
    return config


def config_record(config: Any) -> dict[str, Any]:
    """The model config as plain JSON values (for the run manifest)."""
    keys = (
        "num_layers",
        "num_embed",
        "embed_dim",
        "hidden_dim",
        "num_heads",
        "head_dim",
        "num_kv_heads",
        "sliding_window_size",
    )
    out: dict[str, Any] = {k: getattr(config, k) for k in keys}
    out["param_dtype"] = jnp.dtype(config.param_dtype).name
    return out


def make_mesh() -> Mesh:
    """Every local device on the ``fsdp`` axis (Tunix's Gemma shards over fsdp and tp)."""
    devices = jax.device_count()
    return jax.make_mesh((devices, 1), ("fsdp", "tp"), axis_types=(jax.sharding.AxisType.Auto,) * 2)


def param_count(model: Any) -> int:
    return int(sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param))))


def versions() -> dict[str, str]:
    """Installed versions of the libraries a Tunix trial ran on."""
    out: dict[str, str] = {}
    for name in VERSION_PACKAGES:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            out[name] = importlib.metadata.version(name)
    return out


@dataclass
class Built:
    """A Tunix trial's model pieces: the base model, the one to train, the tokenizer."""

    base: Any
    model: Any
    tokenizer: Tokenizer
    source: ModelSource
    mesh: Mesh
    lora_rank: int
    lora_alpha: float | None


def build(config: TrainerConfig, workdir: Path, say: Log) -> Built:
    """The Gemma3 model ``config.model`` names, its weights, LoRA when loraRank > 0."""
    name = tunix_model_name(config.model.name or "") or TINY
    tokenizer = load_tokenizer(config.model.tokenizer, workdir)
    gemma = gemma_config(name, tokenizer.vocab_size)
    mesh = make_mesh()
    checkpoint = config.model.checkpoint
    digest: str | None = None
    with mesh:
        base = _init_model(gemma, config.seed)
        if checkpoint is None:
            say(
                f"model {name}: RANDOM INIT (seed {config.seed}), no model.checkpoint given; "
                f"{param_count(base):,} params"
            )
        else:
            local = fetch(checkpoint, workdir / "checkpoint", "model.checkpoint")
            fmt = checkpoint_format(local)
            digest = sha256_of(local)
            base = load_weights(base, local, fmt, mesh)
            say(
                f"model {name}: {fmt} weights from {checkpoint} (sha256 {digest[:16]}), "
                f"{param_count(base):,} params"
            )
        say(f"tokenizer: {tokenizer.source} ({tokenizer.vocab_size} tokens)")
        rank = DEFAULT_LORA_RANK if config.lora_rank is None else config.lora_rank
        alpha = config.lora_alpha if config.lora_alpha is not None else 2.0 * rank
        model = apply_lora(base, rank, alpha, config.seed) if rank > 0 else base
    say(
        f"LoRA rank {rank} alpha {alpha:g}"
        if rank > 0
        else "full fine-tuning (loraRank 0): every weight is trained"
    )
    source = ModelSource(
        name=name,
        config=config_record(gemma) | {"lora_rank": rank, "lora_alpha": alpha if rank else None},
        checkpoint=checkpoint,
        checkpoint_sha256=digest,
        random_init=checkpoint is None,
        versions=versions(),
    )
    return Built(base, model, tokenizer, source, mesh, rank, alpha if rank else None)


@contextlib.contextmanager
def built_in_workdir(config: TrainerConfig, say: Log, prefix: str) -> Iterator[Built]:
    """:func:`build` with a temporary folder for what it fetches, removed afterwards."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield build(config, workdir, say)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _init_model(gemma: Any, seed: int) -> Any:
    from tunix.models.gemma3 import model as gemma_model

    return gemma_model.Gemma3(gemma, rngs=nnx.Rngs(seed))


def apply_lora(model: Any, rank: int, alpha: float, seed: int) -> Any:
    """``model`` with qwix LoRA adapters on every projection (only they are trained)."""
    import qwix  # type: ignore[import-untyped]

    provider = qwix.LoraProvider(module_path=LORA_MODULES, rank=rank, alpha=alpha)
    return qwix.apply_lora_to_model(
        model, provider, **model.get_model_input(), rngs=nnx.Rngs(seed + 1)
    )


LORA_INPUT_AXIS = {"qkv_einsum": 2, "kv_einsum": 2, "q_einsum": 1}
"""Where the input (embedding) axis sits in these einsum weights: a LoRA delta
``a ⊗ b`` has it first, the weight (e.g. qkv ``[3, heads, embed, head_dim]``) does not."""


def merged_weights(model: Any, rank: int, alpha: float) -> dict[tuple[Any, ...], Any]:
    """The base weights of a qwix LoRA model with ``a @ b * alpha / rank`` added: the
    plain model that computes what the adapted one does."""
    params = {
        k: np.asarray(v)
        for k, v in flatten(nnx.to_pure_dict(nnx.state(model, base_weights()))).items()
    }
    adapters = flatten(nnx.to_pure_dict(nnx.state(model, nnx.LoRAParam)))
    for path, a in adapters.items():
        name = str(path[-1])
        if not name.endswith("_lora_a"):
            continue
        weight = name.removesuffix("_lora_a")
        b = adapters[(*path[:-1], f"{weight}_lora_b")]
        delta = np.tensordot(np.asarray(a), np.asarray(b), axes=([-1], [0])) * (alpha / rank)
        delta = np.moveaxis(delta, 0, LORA_INPUT_AXIS.get(str(path[-2]), 0))
        key = (*path[:-1], weight)
        if delta.shape != params[key].shape:
            raise ValueError(f"LoRA delta {delta.shape} does not fit {'/'.join(map(str, key))}")
        params[key] = params[key] + delta.astype(params[key].dtype)
    return params


def merge_lora(model: Any, rank: int, alpha: float, seed: int = 0) -> Any:
    """A plain Gemma3 with the LoRA adapters folded into its weights."""
    plain = _init_model(model.config, seed)
    nnx.update(
        plain, unflatten({k: jnp.asarray(v) for k, v in merged_weights(model, rank, alpha).items()})
    )
    return plain


def clone_model(model: Any) -> Any:
    """An independent copy (the reference model for full fine-tuning)."""
    graphdef, state = nnx.split(model)
    return nnx.merge(graphdef, jax.tree.map(jnp.copy, state))


def reference_model(built: Built) -> Any:
    """The frozen start GRPO's KL term and DPO's log-ratios measure against: the base
    model under LoRA (only the adapters train), else a copy taken before training."""
    return built.base if built.lora_rank else clone_model(built.base)
