"""Settings that could not take effect, refused at admission (and their CEL twins).

The project's rule: a field that another field makes meaningless, or a value the run would
ignore, cap or fail on later, is refused with the field, the bound and the fix named. The
checks of one section live next to it (``trainer_sections.py``, ``locations.py``); the ones
here span sections: the trainer's backend against the model fields it reads, LoRA against
the model's width (a Sweep's own fields: ``sweep_effect.py``). ``docs/refusals.md``
lists every field and its verdict.

Each ``*_problems`` function returns ``(field, message)`` pairs (wire names, relative to the
model that calls it); each ``*_RULES`` list mirrors them in CEL where CEL can see the fields.
A value equal to the default counts as unset: the API server fills defaults in before CEL
runs, and the models' own copies (``with_params``) carry every default.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tunix_rt.api.base import cel, cel_list
from tunix_rt.api.trainer_backends import TUNIX_BACKENDS, tunix_model_name
from tunix_rt.api.trainer_sections import (
    DEFAULT_CONTEXT,
    DEFAULT_EVAL_SIZE,
    DEFAULT_HEADS,
    DEFAULT_INTERMEDIATE_ROWS,
    DEFAULT_LAYERS,
    DEFAULT_MLP_RATIO,
    DEFAULT_TRAIN_SIZE,
    DEFAULT_WIDTH,
)

if TYPE_CHECKING:
    from tunix_rt.api.trainer import TrainerConfig

Problems = list[tuple[str, str]]

# ----------------------------------------------------------------------------- the trainer

TUNIX_MODEL_WIDTH = {
    "gemma3-tiny": 64,
    "gemma3-270m": 640,
    "gemma3-270m-it": 640,
    "gemma3-1b": 1152,
    "gemma3-1b-it": 1152,
    "gemma3-4b": 2560,
    "gemma3-4b-it": 2560,
    "gemma3-12b": 3840,
    "gemma3-12b-it": 3840,
    "gemma3-27b": 5376,
    "gemma3-27b-it": 5376,
}
"""Embedding width (Tunix's ``embed_dim``) of each Tunix model: a LoRA adapter of a higher
rank adds nothing a full-rank update of the projections would not (tests/tunix checks the
table against Tunix's configs)."""
BUILTIN_MODEL_FIELDS = {
    "layers": DEFAULT_LAYERS,
    "width": DEFAULT_WIDTH,
    "heads": DEFAULT_HEADS,
    "mlpRatio": DEFAULT_MLP_RATIO,
}
"""model.* fields that size the built-in transformer; a Tunix model has its own (by name)."""
_TUNIX_CEL = f"has(self.backend) && self.backend in {cel_list(TUNIX_BACKENDS)}"
_MODEL_NAME = "has(self.model) && has(self.model.name) && self.model.name"


def trainer_problems(config: TrainerConfig) -> Problems:
    """What in a trainer config no backend would read, or the backend would cap."""
    out: Problems = []
    if config.lora_alpha is not None and config.lora_rank == 0:
        out.append(
            (
                "loraAlpha",
                f"loraAlpha={config.lora_alpha:g} scales LoRA adapters, and loraRank 0 trains "
                "without them (full fine-tuning); remove loraAlpha or set loraRank >= 1",
            )
        )
    if config.backend in TUNIX_BACKENDS:
        out += _tunix_problems(config)
    rows, data = config.eval.intermediate_rows, config.dataset
    generated = config.backend != "python" and data.train_path is None
    if generated and config.eval.eval_every and rows > data.eval_size:
        out.append(
            (
                "eval.intermediateRows",
                f"eval.intermediateRows={rows} is more than dataset.evalSize "
                f"({data.eval_size}): an intermediate eval scores every row; set "
                f"intermediateRows to at most {data.eval_size}",
            )
        )
    return out


def _tunix_problems(config: TrainerConfig) -> Problems:
    out: Problems = []
    for key in ("layers", "width"):
        if getattr(config, key) is not None:
            out.append(
                (
                    key,
                    f"{key} sizes the built-in transformer; backend {config.backend} builds "
                    f"model.name ({config.model.name}) at its own size; remove {key}",
                )
            )
    model = config.model.to_wire()
    for key, default in BUILTIN_MODEL_FIELDS.items():
        if model.get(key, default) != default and getattr(config, key, None) is None:
            out.append(
                (
                    f"model.{key}",
                    f"model.{key}={model[key]} sizes the built-in transformer; backend "
                    f"{config.backend} builds model.name ({config.model.name}) at its own "
                    f"size; remove model.{key}",
                )
            )
    if config.backend == "tunix-grpo" and config.model.context != DEFAULT_CONTEXT:
        out.append(
            (
                "model.context",
                f"model.context={config.model.context} is not read by backend tunix-grpo "
                "(prompt and generation lengths come from the data and "
                "maxGenerationLength); remove model.context",
            )
        )
    width = TUNIX_MODEL_WIDTH.get(_canonical(config.model.name))
    if width is not None and config.lora_rank is not None and config.lora_rank > width:
        out.append(
            (
                "loraRank",
                f"loraRank={config.lora_rank} is above the width of {config.model.name} "
                f"({width}): a rank above it adds nothing; set loraRank to at most {width} "
                "(or 0 for full fine-tuning)",
            )
        )
    data = config.dataset
    if data.train_path is None and config.batch_size > data.train_size:
        out.append(
            (
                "batchSize",
                f"batchSize={config.batch_size} is more than dataset.trainSize "
                f"({data.train_size}), and backend {config.backend} caps a batch at the "
                f"train rows; set batchSize to at most {data.train_size} or raise "
                "dataset.trainSize",
            )
        )
    return out


def _canonical(name: str | None) -> str:
    return (tunix_model_name(name) if name else None) or ""


def _width_rule() -> dict[str, str]:
    """loraRank within the width of the model named with its canonical spelling (the other
    spellings Tunix accepts are checked by validate and the operator only)."""
    parts = [
        f"!({_MODEL_NAME} == '{name}') || self.loraRank <= {width}"
        for name, width in TUNIX_MODEL_WIDTH.items()
    ]
    return cel(
        "!has(self.loraRank) || (" + ") && (".join(parts) + ")",
        "loraRank is above the model's width (gemma3-tiny 64, gemma3-270m 640, gemma3-1b "
        "1152, ...); lower loraRank",
        ".loraRank",
    )


TRAINER_RULES = [
    cel(
        "(has(self.backend) && self.backend == 'python') || (has(self.dataset) && "
        "has(self.dataset.trainPath)) || !(has(self.eval) && has(self.eval.evalEvery) && "
        "self.eval.evalEvery > 0) || (has(self.eval) && has(self.eval.intermediateRows) ? "
        f"self.eval.intermediateRows : {DEFAULT_INTERMEDIATE_ROWS}) <= (has(self.dataset) && "
        f"has(self.dataset.evalSize) ? self.dataset.evalSize : {DEFAULT_EVAL_SIZE})",
        "eval.intermediateRows must not exceed dataset.evalSize",
        ".eval.intermediateRows",
    ),
    cel(
        "!has(self.loraAlpha) || !has(self.loraRank) || self.loraRank > 0",
        "loraAlpha has no effect with loraRank 0 (full fine-tuning); remove loraAlpha or set "
        "loraRank >= 1",
        ".loraAlpha",
    ),
    cel(
        f"!({_TUNIX_CEL}) || (!has(self.layers) && !has(self.width))",
        "layers and width size the built-in transformer; a Tunix backend builds model.name "
        "at its own size; remove them",
        ".backend",
    ),
    cel(
        f"!({_TUNIX_CEL}) || !has(self.model) || ("
        + " && ".join(
            f"(!has(self.model.{key}) || self.model.{key} == {default})"
            for key, default in BUILTIN_MODEL_FIELDS.items()
        )
        + ")",
        "model.layers, width, heads and mlpRatio size the built-in transformer; a Tunix "
        "backend builds model.name at its own size; remove them",
        ".model",
    ),
    cel(
        "!has(self.backend) || self.backend != 'tunix-grpo' || !has(self.model) || "
        f"!has(self.model.context) || self.model.context == {DEFAULT_CONTEXT}",
        "backend tunix-grpo does not read model.context; remove it",
        ".model.context",
    ),
    _width_rule(),
    cel(
        f"!({_TUNIX_CEL}) || (has(self.dataset) && has(self.dataset.trainPath)) || "
        "(has(self.batchSize) ? self.batchSize : 96) <= (has(self.dataset) && "
        f"has(self.dataset.trainSize) ? self.dataset.trainSize : {DEFAULT_TRAIN_SIZE})",
        "a Tunix backend caps a batch at the train rows: batchSize must not exceed "
        "dataset.trainSize",
        ".batchSize",
    ),
]
