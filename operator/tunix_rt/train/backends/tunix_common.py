"""What the Tunix backends share: the Gemma3 model by name, its weights, the tokenizer,
the optimizer, the SFT data, and the eval (same parser and guardrail as the built-in one).

Weights come from ``model.checkpoint`` when given (a local path, or a ``gs://`` / ``s3://``
URI copied to local disk first; an orbax folder or safetensors, the format detected), and
their sha256 goes into :class:`~tunix_rt.train.loop.ModelSource`; without one the model is
randomly initialised, which the ModelSource and the log say plainly.

The tokenizer is the built-in byte tokenizer (``train/tokenizer.py``: its ids lie inside
every Gemma vocabulary, and gemma3-tiny's vocabulary is exactly its size) unless
``model.tokenizer`` names a SentencePiece model, as a real Gemma checkpoint needs.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import math
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh

from tunix_rt.api.trainer import TrainerConfig
from tunix_rt.api.trainer_backends import DEFAULT_LORA_RANK, tunix_model_name
from tunix_rt.evidence.checksums import sha256_file
from tunix_rt.scoring.judge import ANSWER_CLOSE
from tunix_rt.train import tokenizer as byte_tokenizer
from tunix_rt.train.data import Example
from tunix_rt.train.evaluate import EvalRow, score_row, summarize
from tunix_rt.train.loop import Log, ModelSource, TrainingTimeout
from tunix_rt.train.train_step import Hyperparams, learning_rate_at

TINY = "gemma3-tiny"
TINY_DIMS: dict[str, Any] = {
    "num_layers": 2,
    "embed_dim": 64,
    "hidden_dim": 256,
    "num_heads": 8,
    "head_dim": 8,
    "num_kv_heads": 8,
    "sliding_window_size": 64,
}
"""gemma3-tiny: Gemma3's architecture at ~140k parameters (with the byte vocabulary)."""
LORA_MODULES = (
    ".*q_einsum|.*kv_einsum|.*qkv_einsum|.*attn_vec_einsum|.*gate_proj|.*up_proj|.*down_proj"
)
"""Where LoRA adapters go: every attention and MLP projection."""
VERSION_PACKAGES = ("google-tunix", "qwix", "jax", "flax", "optax", "orbax-checkpoint")
SAFETENSORS_FILE = "model.safetensors"
ORBAX_MARKERS = ("_CHECKPOINT_METADATA", "_METADATA", "manifest.ocdbt", "checkpoint")


# ------------------------------------------------------------------ model config


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


def flatten(tree: dict[Any, Any], prefix: tuple[Any, ...] = ()) -> dict[tuple[Any, ...], Any]:
    """A nested dict as ``{path tuple: leaf}``."""
    out: dict[tuple[Any, ...], Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(flatten(value, (*prefix, key)))
        else:
            out[(*prefix, key)] = value
    return out


def unflatten(flat: dict[tuple[Any, ...], Any]) -> dict[Any, Any]:
    """The inverse of :func:`flatten`."""
    tree: dict[Any, Any] = {}
    for path, value in flat.items():
        node = tree
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    return tree


def base_weights() -> Any:
    """The nnx filter for a model's own weights (LoRA adapters excluded)."""
    return nnx.All(nnx.Param, nnx.Not(nnx.LoRAParam))


def param_count(model: Any) -> int:
    return int(sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param))))


def versions() -> dict[str, str]:
    """Installed versions of the libraries a Tunix trial ran on."""
    out: dict[str, str] = {}
    for name in VERSION_PACKAGES:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            out[name] = importlib.metadata.version(name)
    return out


# ------------------------------------------------------------------ tokenizer


class ByteTokenizer:
    """The built-in byte tokenizer with the interface Tunix's samplers expect."""

    vocab_size = byte_tokenizer.VOCAB_SIZE

    def encode(self, text: str, **_: Any) -> list[int]:
        return byte_tokenizer.encode(str(text))  # Tunix hands over numpy strings

    def decode(self, ids: Sequence[int], **_: Any) -> str:
        return byte_tokenizer.decode(ids)

    def bos_id(self) -> int:
        return byte_tokenizer.BOS

    def eos_id(self) -> int:
        return byte_tokenizer.EOS

    def pad_id(self) -> int:
        return byte_tokenizer.PAD


@dataclass(frozen=True)
class Tokenizer:
    """Tunix's adapter around the tokenizer in use, its vocabulary size, and its source."""

    adapter: Any
    vocab_size: int
    source: str

    def count(self, text: str) -> int:
        """Tokens ``text`` encodes to (what the trace-length guardrail counts)."""
        return len(self.adapter.encode(text))


def load_tokenizer(uri: str | None, workdir: Path) -> Tokenizer:
    """``model.tokenizer`` (a SentencePiece model) or the built-in byte tokenizer."""
    from tunix.generate.tokenizer_adapter import TokenizerAdapter  # type: ignore[import-untyped]

    if uri is None:
        return Tokenizer(TokenizerAdapter(ByteTokenizer()), ByteTokenizer.vocab_size, "byte")
    import sentencepiece as spm

    local = fetch(uri, workdir / "tokenizer", "model.tokenizer")
    processor = spm.SentencePieceProcessor(model_file=str(local))
    if processor.pad_id() < 0:
        raise ValueError(
            f"model.tokenizer {uri}: the SentencePiece model defines no pad id; "
            "train it with --pad_id (Gemma's tokenizer has one)"
        )
    return Tokenizer(TokenizerAdapter(processor), int(processor.get_piece_size()), uri)


# ------------------------------------------------------------------ checkpoints


def fetch(uri: str, workdir: Path, field: str) -> Path:
    """A local path for ``uri``: itself when local, else a copy of the object (or of
    every object under the prefix) made with the store's client and retry policy."""
    if "://" not in uri or uri.startswith("file://"):
        path = Path(uri.removeprefix("file://")).expanduser()
        if not path.exists():
            raise ValueError(f"{field} {uri}: no such file or folder")
        return path
    from tunix_rt.storage import Store

    store = Store(uri)
    keys = store.list("")
    target = workdir / "remote"
    if keys:
        for key in keys:
            store.download(key, target / key)
        return target
    parent, _, name = uri.rstrip("/").rpartition("/")
    try:
        return Store(parent).download(name, target / name)
    except FileNotFoundError:
        raise ValueError(f"{field} {uri}: no such object or prefix") from None


def sha256_of(path: Path) -> str:
    """sha256 of a file, or of a folder as the sorted ``<sha256>  <relative path>`` lines
    of its files (so a renamed or changed shard changes the digest)."""
    if path.is_file():
        return sha256_file(path)
    lines = [
        f"{sha256_file(p)}  {p.relative_to(path).as_posix()}\n"
        for p in sorted(path.rglob("*"))
        if p.is_file()
    ]
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def checkpoint_format(path: Path) -> str:
    """``safetensors`` (a .safetensors file, or a folder of them) or ``orbax``."""
    if path.is_file():
        if path.suffix == ".safetensors":
            return "safetensors"
        raise ValueError(
            f"model.checkpoint {path}: a file, but not .safetensors; give a safetensors "
            "file or folder, or an orbax checkpoint folder"
        )
    if any(path.glob("*.safetensors")):
        return "safetensors"
    if any((path / marker).exists() for marker in ORBAX_MARKERS):
        return "orbax"
    raise ValueError(
        f"model.checkpoint {path}: neither *.safetensors nor an orbax checkpoint "
        f"(none of {list(ORBAX_MARKERS)}) in this folder"
    )


def load_weights(model: Any, path: Path, fmt: str, mesh: Mesh) -> Any:
    """``model`` (an initialised Gemma3) with the checkpoint's weights, cast to its dtypes."""
    from tunix.models.gemma3 import params as gemma_params
    from tunix.models.gemma3 import params_safetensors

    config = model.config
    if fmt == "safetensors":
        folder = path
        if path.is_file():  # Tunix reads every *.safetensors in a folder
            folder = Path(tempfile.mkdtemp(prefix="tunix-rt-st-"))
            (folder / path.name).symlink_to(path.resolve())
        with mesh:
            loaded = params_safetensors.create_model_from_safe_tensors(
                str(folder), config, mesh, dtype=config.param_dtype
            )
        return loaded
    import orbax.checkpoint as ocp  # type: ignore[import-untyped]

    restored = ocp.StandardCheckpointer().restore(str(path.resolve()))
    if "transformer" in restored:  # Google's released Gemma checkpoints
        restored = gemma_params.map_from_upstream_checkpoint(
            restored, text_only=config.vision_config is None
        )
    current = flatten(nnx.to_pure_dict(nnx.state(model, base_weights())))
    update = matched_weights(current, flatten(restored), path)
    nnx.update(model, unflatten(update))
    return model


def matched_weights(
    want: dict[tuple[Any, ...], Any], got: dict[tuple[Any, ...], Any], path: Path
) -> dict[tuple[Any, ...], Any]:
    """The checkpoint's value for each of the model's weights (keys compared as text:
    orbax writes a layer index as a string), cast to the model's dtype; a missing weight
    or a shape the config does not have is an error naming the checkpoint."""
    by_text = {tuple(map(str, key)): value for key, value in got.items()}
    out: dict[tuple[Any, ...], Any] = {}
    missing: list[str] = []
    for key, old in want.items():
        text = tuple(map(str, key))
        if text not in by_text:
            missing.append("/".join(text))
            continue
        new = by_text[text]
        if tuple(np.shape(new)) != tuple(old.shape):
            raise ValueError(
                f"model.checkpoint {path}: {'/'.join(text)} has shape {tuple(np.shape(new))}, "
                f"the config needs {tuple(old.shape)}; check model.name and model.tokenizer"
            )
        out[key] = jnp.asarray(new, dtype=old.dtype)
    if missing:
        raise ValueError(
            f"model.checkpoint {path}: missing {len(missing)} weights of model.name's "
            f"config (first: {missing[:3]}); is it a checkpoint of that model?"
        )
    return out


def save_orbax(model: Any, folder: Path) -> Path:
    """The model's weights as an orbax checkpoint that ``model.checkpoint`` can load."""
    import orbax.checkpoint as ocp

    params = nnx.to_pure_dict(nnx.state(model, base_weights()))
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(str(folder.resolve()), params, force=True)
    checkpointer.wait_until_finished()
    return folder


def save_safetensors(model: Any, folder: Path) -> Path:
    """The model's weights in Hugging Face's Gemma3 layout (what Tunix's safetensors
    loader and released checkpoints use), as ``folder/model.safetensors``."""
    from safetensors.numpy import save_file

    config = model.config
    params = flatten(nnx.to_pure_dict(nnx.state(model, base_weights())))
    tensors: dict[str, np.ndarray] = {}
    d, n, h = config.embed_dim, config.num_heads, config.head_dim

    def put(name: str, value: Any) -> None:
        tensors[name] = np.ascontiguousarray(np.asarray(value, dtype=np.float32))

    put("model.embed_tokens.weight", params[("embedder", "input_embedding")])
    put("model.norm.weight", params[("final_norm", "scale")])
    for layer in range(config.num_layers):
        p = {key[2:]: v for key, v in params.items() if key[:2] == ("layers", layer)}
        pre = f"model.layers.{layer}"
        if ("attn", "qkv_einsum", "w") in p:
            q, key_w, value_w = np.asarray(p[("attn", "qkv_einsum", "w")])
        else:
            q = np.asarray(p[("attn", "q_einsum", "w")])
            key_w, value_w = np.asarray(p[("attn", "kv_einsum", "w")])
        put(f"{pre}.self_attn.q_proj.weight", q.transpose(1, 0, 2).reshape(d, n * h).T)
        put(f"{pre}.self_attn.k_proj.weight", key_w.transpose(1, 0, 2).reshape(d, -1).T)
        put(f"{pre}.self_attn.v_proj.weight", value_w.transpose(1, 0, 2).reshape(d, -1).T)
        vec = np.asarray(p[("attn", "attn_vec_einsum", "w")])
        put(f"{pre}.self_attn.o_proj.weight", vec.reshape(n * h, d).T)
        put(f"{pre}.self_attn.q_norm.weight", p[("attn", "_query_norm", "scale")])
        put(f"{pre}.self_attn.k_norm.weight", p[("attn", "_key_norm", "scale")])
        for proj in ("gate_proj", "up_proj", "down_proj"):
            put(f"{pre}.mlp.{proj}.weight", np.asarray(p[("mlp", proj, "kernel")]).T)
        for ours, theirs in (
            ("pre_attention_norm", "input_layernorm"),
            ("post_attention_norm", "post_attention_layernorm"),
            ("pre_ffw_norm", "pre_feedforward_layernorm"),
            ("post_ffw_norm", "post_feedforward_layernorm"),
        ):
            put(f"{pre}.{theirs}.weight", p[(ours, "scale")])
    folder.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(folder / SAFETENSORS_FILE))
    return folder / SAFETENSORS_FILE


# ------------------------------------------------------------------ building the model


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
    """An independent copy (the GRPO reference model for full fine-tuning)."""
    graphdef, state = nnx.split(model)
    return nnx.merge(graphdef, jax.tree.map(jnp.copy, state))


# ------------------------------------------------------------------ optimizer, data


def schedule(config: TrainerConfig) -> Callable[[Any], Any]:
    """The built-in trainer's learning-rate schedule (warmup, then cosine decay)."""
    hp = Hyperparams.from_config(config)
    return lambda step: learning_rate_at(jnp.asarray(step), hp)


def make_optimizer(config: TrainerConfig) -> optax.GradientTransformation:
    """Global-norm clip, then AdamW with the trainer's schedule and weight decay."""
    return optax.chain(
        optax.clip_by_global_norm(config.grad_clip),
        optax.adamw(schedule(config), weight_decay=config.weight_decay),
    )


def sft_rows(
    examples: Sequence[Example], tokenizer: Tokenizer, context: int
) -> tuple[np.ndarray, np.ndarray]:
    """``[BOS] prompt target [EOS]`` per row, right-padded to the longest row, and the
    loss mask (target and EOS: the model learns to stop after ``</answer>``)."""
    adapter = tokenizer.adapter
    rows = []
    for index, ex in enumerate(examples):
        prompt = [adapter.bos_id(), *adapter.encode(ex.prompt)]
        target = [
            *adapter.encode(byte_tokenizer.format_target(ex.reasoning, ex.answer)),
            adapter.eos_id(),
        ]
        if len(prompt) + len(target) > context:
            raise ValueError(
                f"train row {index} is {len(prompt) + len(target)} tokens, longer than "
                f"model.context={context}; raise model.context"
            )
        rows.append((prompt, target))
    length = max(len(p) + len(t) for p, t in rows)
    tokens = np.full((len(rows), length), adapter.pad_id(), np.int32)
    mask = np.zeros((len(rows), length), bool)
    for row, (prompt, target) in enumerate(rows):
        tokens[row, : len(prompt) + len(target)] = prompt + target
        mask[row, len(prompt) : len(prompt) + len(target)] = True
    return tokens, mask


def batch_rows(rows: int, batch_size: int, seed: int) -> Iterator[np.ndarray]:
    """Row indices per step: consecutive slices of per-epoch seeded permutations."""
    epoch = 0
    while True:
        order = np.random.default_rng([seed, epoch]).permutation(rows)
        for start in range(0, rows - batch_size + 1, batch_size):
            yield order[start : start + batch_size]
        epoch += 1


class Deadline:
    """The trial's deadline, checked before each batch is handed to Tunix's loop: past it
    the data ends (Tunix stops cleanly) and :meth:`raise_if_passed` raises afterwards."""

    def __init__(self, deadline: float | None, max_steps: int) -> None:
        self.deadline = deadline
        self.max_steps = max_steps
        self.started = time.perf_counter()
        self.passed_at: int | None = None

    def allows(self, step: int) -> bool:
        if self.deadline is not None and time.monotonic() >= self.deadline:
            if self.passed_at is None:
                self.passed_at = step
            return False
        return True

    def raise_if_passed(self, steps_done: int, *, before_eval: bool = False) -> None:
        late = self.deadline is not None and time.monotonic() >= self.deadline
        if self.passed_at is not None or (before_eval and late):
            raise TrainingTimeout(
                steps_done,
                self.max_steps,
                time.perf_counter() - self.started,
                before_eval=self.passed_at is None,
            )


class _StderrWithIsatty:
    """``sys.stderr`` as it is, plus the ``isatty`` Tunix's progress bar calls (Ray's
    log tee in a trial process has none)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def isatty(self) -> bool:
        return False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextlib.contextmanager
def tunix_stderr() -> Iterator[None]:
    """Run Tunix's loops with a ``sys.stderr`` that has ``isatty`` (its progress bar
    asks; it then stays off, as it should in a log)."""
    if callable(getattr(sys.stderr, "isatty", None)):
        yield
        return
    original = sys.stderr
    sys.stderr = _StderrWithIsatty(original)
    try:
        yield
    finally:
        sys.stderr = original


# ------------------------------------------------------------------ eval


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
        from tunix.generate import sampler as sampler_lib  # type: ignore[import-untyped]

        config = model.config
        sampler = sampler_lib.Sampler(
            transformer=model,
            tokenizer=self.tokenizer.adapter,
            cache_config=sampler_lib.CacheConfig(
                cache_size=self.prompt_length + self.cap,
                num_layers=config.num_layers,
                num_kv_heads=config.num_kv_heads,
                head_dim=config.head_dim,
            ),
        )
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


def finite(metrics: dict[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if math.isfinite(float(v))}
