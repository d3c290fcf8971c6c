"""What a Tunix trial holds on its first device, estimated from its config (no JAX here).

The sizes of Tunix's Gemma3 configs are copied into :data:`GEMMA3` (``tests/api`` checks
them against ``tunix.models.gemma3.model.ModelConfig``); parameters and LoRA adapters are
counted from them the way Tunix and qwix build them (the tests check gemma3-tiny's count
against a built model, 148,576, and gemma3-1b's against Tunix's "1B"). Weights and
activations are in the param dtype: bfloat16 for the named configs, float32 for gemma3-tiny
(``tunix_model.gemma_config``).

A trial's memory over its phases, on the first of its ``d`` devices (bytes; ``w`` the dtype's
size, ``P`` the model's parameters, ``T`` the trained ones: P, or the LoRA adapters):

* build: the model as ``tunix_model.build`` makes it, whole on the first device (flax's
  eager sharding does not act under the legacy ``with mesh:``), plus its full copy as the
  reference model of GRPO/DPO under full fine-tuning: ``P w`` or ``2 P w``.
* train (one optimizer step):
  - weights: ``whole x P w + sharded x P w / d`` (:data:`WEIGHT_COPIES`); the copies the
    trainers reshard go over the ``fsdp`` axis, the rest stay whole where they were built;
  - optimizer ``2 T w / d`` (optax's AdamW keeps both moments in the params' dtype),
    gradients ``T w / d``, and the step's output ``(P + adapters) w``: ``nnx.jit`` returns
    the model's whole state, frozen weights too, and Tunix donates only the optimizer, so
    old and new are held together (sharded over ``d`` when the model trains sharded: full
    fine-tuning, or GRPO's resharded actor);
  - activations kept for the backward pass: ``n s L (10 D + 4 F + 4 (N + 2 K) H) w / d``
    for ``n`` sequences of ``s`` tokens (``L`` layers, embed ``D``, MLP ``F``, ``N`` query
    and ``K`` key/value heads of ``H``): the residual stream and norms, the gated MLP's four
    ``F``-wide tensors, q/k/v through their norms and RoPE; under LoRA also each adapter's
    output, ``(2 D + 2 F + (N + 2 K) H)`` more (qwix adds it to the projection's);
    attention scores ``3 n N s^2 L w / d`` (logits, mask, softmax); the vocabulary logits
    ``n s V (3 w + 4) / d`` (logits, log-softmax and the logits' gradient, and a float32
    one-hot in SFT's loss), which dominate for Gemma's 262,144 tokens;
  - on several devices, one all-gathered layer and the embedding ``(P_layer + V D) w``.
    The batch-dependent parts are divided over the devices as Tunix's shardings intend
    (batch over ``fsdp``); XLA's CPU partitioner, measured, splits the attention but runs
    the MLP over the whole batch on every device (``benchmarks/README.md``).
* rollout (GRPO) and eval (every backend's evals): the weights and optimizer as in train,
  the sampler's KV cache ``n c L 2 K H w`` (``c``: prompt buffer + tokens generated) and
  the prefill's logits ``n p V w`` (``p``: prompt buffer), counted whole on every device.

``n`` is ``batchSize`` (SFT), ``2 x batchSize`` (DPO: chosen and rejected) or ``batchSize
x numGenerations`` (GRPO); ``s`` is the row (``model.context``, or the generated dataset's
longest row when shorter; DPO: ``model.context``; GRPO: prompt buffer + generation). The
prompt buffer is the next power of two above the longest prompt (``model.context`` bounds
it; a generated dataset's longest row when smaller). What the formula leaves out, the
admission headroom is for; ``benchmarks/memory_estimate.py`` measures its error.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from tunix_rt.api.trainer_backends import DEFAULT_LORA_RANK, tunix_model_name
from tunix_rt.api.trainer_sections import BUILTIN_DATASETS

if TYPE_CHECKING:
    from tunix_rt.api.trainer import TrainerConfig

TINY = "gemma3-tiny"
GEMMA_VOCAB = 262_144
BYTE_VOCAB = 264
"""gemma3-tiny's vocabulary with the byte tokenizer (no ``model.tokenizer``)."""
DEFAULT_GRPO_GENERATIONS = 4
"""``tunix_grpo.DEFAULT_NUM_GENERATIONS`` (the api cannot import the backend)."""


@dataclass(frozen=True)
class GemmaShape:
    """The sizes of one Gemma3 text config (Tunix's ``ModelConfig`` fields)."""

    layers: int
    embed: int
    hidden: int
    heads: int
    head_dim: int
    kv_heads: int
    window: int
    vocab: int = GEMMA_VOCAB

    def layer_params(self) -> int:
        """One decoder layer: attention projections, q/k norms, four RMSNorms, gated MLP."""
        d, h = self.embed, self.head_dim
        attention = (2 * self.heads + 2 * self.kv_heads) * d * h  # q, k, v and output
        return attention + 2 * h + 4 * d + 3 * d * self.hidden

    def params(self) -> int:
        """Every parameter: the (tied) embedding, the layers, the final norm."""
        return self.vocab * self.embed + self.layers * self.layer_params() + self.embed

    def lora_params(self, rank: int) -> int:
        """qwix adapters of ``rank`` on every projection (``tunix_model.LORA_MODULES``):
        ``rank x (inputs + outputs)`` each."""
        d, f, h = self.embed, self.hidden, self.head_dim
        per_layer = 5 * d + 3 * f + 2 * self.heads * h + 2 * self.kv_heads * h
        return rank * per_layer * self.layers

    def tunix_dims(self) -> dict[str, int]:
        """The ``ModelConfig`` keyword arguments of these sizes (not the vocabulary)."""
        return {
            "num_layers": self.layers,
            "embed_dim": self.embed,
            "hidden_dim": self.hidden,
            "num_heads": self.heads,
            "head_dim": self.head_dim,
            "num_kv_heads": self.kv_heads,
            "sliding_window_size": self.window,
        }


GEMMA3: dict[str, GemmaShape] = {
    TINY: GemmaShape(2, 64, 256, 8, 8, 8, 64, BYTE_VOCAB),
    "gemma3-270m": GemmaShape(18, 640, 2048, 4, 256, 1, 512),
    "gemma3-1b": GemmaShape(26, 1152, 6912, 4, 256, 1, 512),
    "gemma3-4b": GemmaShape(34, 2560, 10240, 8, 256, 4, 1024),
    "gemma3-12b": GemmaShape(48, 3840, 15360, 16, 256, 8, 1024),
    "gemma3-27b": GemmaShape(62, 5376, 21504, 32, 128, 16, 1024),
}
"""Tunix's Gemma3 text configs (``-it`` variants share their base's sizes) and gemma3-tiny,
tunix-rt's own 2-layer config (``tunix_model.TINY_DIMS`` is built from it)."""

WEIGHT_COPIES: dict[tuple[str, bool], tuple[int, int]] = {
    ("tunix-sft", True): (2, 0),
    ("tunix-sft", False): (1, 0),
    ("tunix-dpo", True): (2, 0),
    ("tunix-dpo", False): (2, 0),
    ("tunix-grpo", True): (1, 3),
    ("tunix-grpo", False): (1, 4),
}
"""(whole, sharded) copies of the base weights held during training, by backend and LoRA,
counted on gemma3-tiny (live arrays of the embedding's shape at each train step, on 1 and 4
devices): the model as built stays whole where it was built; under LoRA the trained model's
own copy (the previous step's output) sits beside it (SFT) or is the reference's (DPO);
full-fine-tuning SFT replaces the built copy by its sharded output after the first step,
during which both exist; DPO adds its reference; GRPO's RLCluster reshards its own actor,
reference and rollout copies."""


def shape_of(name: str | None, tokenizer: str | None = None) -> GemmaShape:
    """The sizes of ``model.name`` (gemma3-tiny with ``model.tokenizer``: Gemma's
    vocabulary, the largest one a Gemma tokenizer has)."""
    canonical = tunix_model_name(name or "") or TINY
    shape = GEMMA3[canonical.removesuffix("-it")]
    if canonical == TINY and tokenizer is not None:
        return replace(shape, vocab=GEMMA_VOCAB)
    return shape


def buffer(tokens: int) -> int:
    """The prompt buffer Tunix's samplers get: the power of two at or above ``tokens``
    (``tunix_grpo.prompt_length``, ``TunixEvaluator``)."""
    return 1 << max(tokens - 1, 1).bit_length()


@dataclass(frozen=True)
class Workload:
    """The shapes one Tunix trial runs at (what the estimate needs of its config)."""

    backend: str
    model: str
    shape: GemmaShape
    dtype_bytes: int
    lora_rank: int
    batch: int
    seq: int
    prompt: int
    generation: int = 0
    generations: int = 1
    eval_batch: int = 1
    eval_tokens: int = 0
    eval_prompt: int = 0
    """The eval's prompt buffer (0: ``prompt``; the eval split's prompts may differ)."""

    @property
    def sequences(self) -> int:
        """Sequences per train step: rows, chosen + rejected, or completions."""
        if self.backend == "tunix-dpo":
            return 2 * self.batch
        if self.backend == "tunix-grpo":
            return self.batch * self.generations
        return self.batch

    def with_batch(self, batch: int) -> Workload:
        return replace(self, batch=batch)

    def with_lora(self, rank: int) -> Workload:
        return replace(self, lora_rank=rank)

    def with_eval_batch(self, rows: int) -> Workload:
        return replace(self, eval_batch=rows)

    def training_only(self) -> Workload:
        """The same trial without its evals (to size what training alone needs)."""
        return replace(self, eval_tokens=0)


def workload(config: TrainerConfig) -> Workload:
    """The shapes of a Tunix trial of ``config`` (bounds where the data decides)."""
    model = config.model
    name = tunix_model_name(model.name or "") or TINY
    builtin = (
        BUILTIN_DATASETS.get(config.dataset.name) if config.dataset.train_path is None else None
    )
    row = min(model.context, builtin.row_tokens + 2) if builtin else model.context  # BOS, EOS
    prompt = buffer((min(model.context, builtin.row_tokens) if builtin else model.context) + 1)
    generation = config.max_generation_length or config.eval.max_trace_tokens
    grpo = config.backend == "tunix-grpo"
    seq = prompt + generation if grpo else model.context if config.backend == "tunix-dpo" else row
    return Workload(
        backend=config.backend,
        model=name,
        shape=shape_of(name, model.tokenizer),
        dtype_bytes=4 if name == TINY else 2,
        lora_rank=DEFAULT_LORA_RANK if config.lora_rank is None else config.lora_rank,
        batch=config.batch_size,
        seq=seq,
        prompt=prompt,
        generation=generation if grpo else 0,
        generations=(config.num_generations or DEFAULT_GRPO_GENERATIONS) if grpo else 1,
        eval_batch=min(config.eval.batch_size, config.dataset.eval_size),
        eval_tokens=config.eval.max_trace_tokens,
    )


@dataclass(frozen=True)
class Part:
    """One thing a phase holds on the first device. Names are short (admission quotes
    them): ``weights (1+3/4)`` is one whole copy and three copies sharded over 4 devices
    (``x4`` on one device);
    ``grads+update`` the gradients and the updated weights; ``gathered`` the all-gathered
    layer and embedding."""

    name: str
    bytes: int


@dataclass(frozen=True)
class Phase:
    name: str
    parts: tuple[Part, ...]

    @property
    def bytes(self) -> int:
        return sum(p.bytes for p in self.parts)


@dataclass(frozen=True)
class Estimate:
    """A trial's phases on the first of ``devices`` devices; its need is the largest."""

    work: Workload
    devices: int
    phases: tuple[Phase, ...] = field(default=())

    @property
    def peak(self) -> Phase:
        return max(self.phases, key=lambda p: p.bytes)

    @property
    def bytes(self) -> int:
        return self.peak.bytes

    def phase(self, name: str) -> Phase | None:
        return next((p for p in self.phases if p.name == name), None)


def estimate(work: Workload, devices: int = 1) -> Estimate:
    """The memory of ``work`` on the first of ``devices`` devices, phase by phase."""
    d = max(devices, 1)
    phases = [_build(work), _train(work, d)]
    if work.backend == "tunix-grpo":
        phases.append(_generate("rollout", work, d, work.sequences, work.prompt, work.generation))
    if work.eval_tokens:
        prompt = work.eval_prompt or work.prompt
        phases.append(_generate("eval", work, d, work.eval_batch, prompt, work.eval_tokens))
    return Estimate(work, d, tuple(p for p in phases if p.parts))


def _sizes(work: Workload) -> tuple[int, int, int]:
    """(weights, LoRA adapters, trained params) in bytes."""
    w = work.dtype_bytes
    weights = work.shape.params() * w
    adapters = work.shape.lora_params(work.lora_rank) * w
    return weights, adapters, adapters if work.lora_rank else weights


def _build(work: Workload) -> Phase:
    weights, adapters, _ = _sizes(work)
    copies = 2 if not work.lora_rank and work.backend != "tunix-sft" else 1
    return Phase("build", (Part("weights", copies * weights + adapters),))


def _held(work: Workload, d: int) -> list[Part]:
    """What every phase after the build holds: the weights' copies, the optimizer."""
    weights, adapters, trained = _sizes(work)
    whole, sharded = WEIGHT_COPIES[(work.backend, bool(work.lora_rank))]
    copies = f"{whole}+{sharded}/{d}" if d > 1 else f"x{whole + sharded}"
    parts = [Part(f"weights ({copies})", whole * weights + sharded * weights // d)]
    if adapters:
        parts.append(Part("LoRA", adapters))
    parts.append(Part("optimizer", 2 * trained // d))
    return parts


def _train(work: Workload, d: int) -> Phase:
    s, w, tokens = work.shape, work.dtype_bytes, work.sequences * work.seq
    weights, adapters, trained = _sizes(work)
    update = weights + adapters  # nnx.jit hands back the model's whole state, frozen too
    sharded_update = not work.lora_rank or work.backend == "tunix-grpo"
    per_token = 10 * s.embed + 4 * s.hidden + 4 * (s.heads + 2 * s.kv_heads) * s.head_dim
    if work.lora_rank:  # qwix adds each adapter's output to its projection's: kept too
        per_token += 2 * s.embed + 2 * s.hidden + (s.heads + 2 * s.kv_heads) * s.head_dim
    parts = [
        *_held(work, d),
        Part("grads+update", trained // d + update // (d if sharded_update else 1)),
        Part("activations", tokens * s.layers * per_token * w // d),
        Part("attention", 3 * tokens * s.heads * work.seq * s.layers * w // d),
        Part("logits", tokens * s.vocab * (3 * w + 4) // d),
    ]
    if d > 1:
        parts.append(Part("gathered", (s.layer_params() + s.vocab * s.embed) * w))
    return Phase("train", tuple(parts))


def _generate(name: str, work: Workload, d: int, rows: int, prompt: int, tokens: int) -> Phase:
    s, w = work.shape, work.dtype_bytes
    cache = rows * (prompt + tokens) * s.layers * 2 * s.kv_heads * s.head_dim * w
    return Phase(
        name,
        (
            *_held(work, d),
            Part("KV cache", cache),
            Part("prefill logits", rows * prompt * s.vocab * w),
        ),
    )
