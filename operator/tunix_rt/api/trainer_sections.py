"""The nested sections of a trainer config (dataset, model, eval) and the built-in datasets
they must fit: why ``model.context`` or ``eval.maxTraceTokens`` is too short, in Python and CEL."""

from __future__ import annotations

from typing import NamedTuple

from pydantic import ConfigDict, Field, PositiveInt, model_validator
from pydantic.alias_generators import to_snake

from tunix_rt.api.base import ApiModel, cel, cel_list, cel_rules, field_error
from tunix_rt.api.common import SEED_MAX
from tunix_rt.api.locations import (
    fetchable_problem,
    fetchable_rule,
    local_file_problem,
    local_file_rule,
    location,
)


class BuiltinDataset(NamedTuple):
    """What a built-in dataset needs from the config (``tests/train/test_tiers.py``
    checks these against the generator in ``train/data.py``)."""

    row_tokens: int
    """Longest row, prompt and target: the least ``model.context``."""
    trace_tokens: int
    """Longest target (reasoning and answer, tags included): what ``eval.maxTraceTokens``
    must allow for every row to be scorable."""
    example: str
    """A trainer config that fits it, for error messages."""


BUILTIN_DATASETS: dict[str, BuiltinDataset] = {
    "dev-reasoning-v2": BuiltinDataset(36, 26, "examples/trainer-smoke.yaml"),
    "dev-reasoning-v2-hard": BuiltinDataset(65, 48, "examples/trainer-hard.yaml"),
    "dev-reasoning-v2-hard-worded": BuiltinDataset(110, 48, "examples/trainer-hard-worded.yaml"),
    "dev-reasoning-v2-hardest": BuiltinDataset(85, 68, "examples/trainer-hardest.yaml"),
}
"""The generated datasets by ``dataset.name``: the default, two harder tiers (the
same problems written compactly and as fixed-length sentences) and the hardest (a
two-digit multiplier worked as partial products; its traces exceed the default
``eval.maxTraceTokens``, so its example config raises it)."""
DEFAULT_DATASET = "dev-reasoning-v2"
DEFAULT_CONTEXT = 64
DEFAULT_MAX_TRACE_TOKENS = 48
DEFAULT_WIDTH = 128
DEFAULT_HEADS = 8
DEFAULT_LAYERS = 2
DEFAULT_MLP_RATIO = 4
DEFAULT_TRAIN_SIZE = 20000
DEFAULT_EVAL_SIZE = 512
DEFAULT_INTERMEDIATE_ROWS = 128
GENERATED_ONLY = {"seed": 0, "trainSize": DEFAULT_TRAIN_SIZE, "evalSize": DEFAULT_EVAL_SIZE}
"""Dataset fields the generator reads, with their defaults: user files ignore them."""


class DatasetConfig(ApiModel):
    """Which examples to train and evaluate on."""

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            cel(
                "has(self.trainPath) == has(self.evalPath)",
                "set both trainPath and evalPath, or neither",
                ".evalPath",
            ),
            cel(
                "has(self.trainPath) || !has(self.name) || self.name in "
                + cel_list(BUILTIN_DATASETS),
                f"unknown built-in dataset; use one of {list(BUILTIN_DATASETS)} "
                "or give trainPath and evalPath",
                ".name",
            ),
            *(
                cel(
                    f"!has(self.trainPath) || !has(self.{key}) || self.{key} == {default}",
                    f"{key} shapes the generated dataset only, and trainPath/evalPath replace "
                    f"it; remove {key}",
                    f".{key}",
                )
                for key, default in GENERATED_ONLY.items()
            ),
            local_file_rule("trainPath"),
            local_file_rule("evalPath"),
        )
    )

    name: str = Field(
        DEFAULT_DATASET,
        description="Built-in generated dataset (" + ", ".join(BUILTIN_DATASETS) + "), "
        "or a label for user JSONL files.",
    )
    seed: int = Field(
        0, ge=0, le=SEED_MAX, description="Seed of the generated dataset (not the trainer)."
    )
    train_size: PositiveInt = Field(
        DEFAULT_TRAIN_SIZE, le=1_000_000, description="Generated train rows."
    )
    eval_size: PositiveInt = Field(
        DEFAULT_EVAL_SIZE, le=100_000, description="Generated eval rows."
    )
    train_path: str | None = location(
        "JSONL file (a path in the trial's pod, not a URI) with prompt, "
        "reasoning, answer per line; replaces the generator."
    )
    eval_path: str | None = location(
        "JSONL eval set (a path) with the same fields; required with trainPath."
    )

    @model_validator(mode="after")
    def _paths_together(self) -> DatasetConfig:
        if (self.train_path is None) != (self.eval_path is None):
            missing = "evalPath" if self.eval_path is None else "trainPath"
            raise field_error(missing, "set both trainPath and evalPath, or neither")
        if self.train_path is None and self.name not in BUILTIN_DATASETS:
            raise field_error(
                "name",
                f"unknown built-in dataset {self.name!r}; use one of {list(BUILTIN_DATASETS)} "
                "or give trainPath and evalPath",
                self.name,
            )
        for key in ("trainPath", "evalPath"):
            problem = local_file_problem(key, getattr(self, to_snake(key)))
            if problem:
                raise field_error(key, problem)
        if self.train_path is not None:
            for key, default in GENERATED_ONLY.items():
                value = getattr(self, to_snake(key))
                if value != default:
                    raise field_error(
                        key,
                        f"{key}={value} shapes the generated dataset only, and trainPath/"
                        f"evalPath replace it (their rows are all used); remove {key}",
                        value,
                    )
        return self


def context_problem(dataset: DatasetConfig, context: int) -> str | None:
    """Why ``model.context`` cannot hold the built-in dataset's longest row (None: it can,
    or the rows are the user's, checked when the files are read)."""
    need = BUILTIN_DATASETS.get(dataset.name)
    if dataset.train_path is not None or need is None or context >= need.row_tokens:
        return None
    return (
        f"model.context={context} is shorter than the longest row of dataset "
        f"{dataset.name!r} ({need.row_tokens} tokens); set model.context to at least "
        f"{need.row_tokens} (as {need.example} does)"
    )


def trace_problem(dataset: DatasetConfig, backend: str, max_trace_tokens: int) -> str | None:
    """Why ``eval.maxTraceTokens`` would cut the built-in trainer's longest gold trace of
    a built-in dataset (its rows could never be scored correct: primary_score lowered
    silently); None when it cannot. Other backends count tokens their own way."""
    need = BUILTIN_DATASETS.get(dataset.name)
    if backend != "builtin" or dataset.train_path is not None or need is None:
        return None
    if max_trace_tokens >= need.trace_tokens:
        return None
    return (
        f"eval.maxTraceTokens={max_trace_tokens} is shorter than the longest trace of dataset "
        f"{dataset.name!r} ({need.trace_tokens} tokens): those rows would be cut and scored "
        f"0; set eval.maxTraceTokens to at least {need.trace_tokens} (as {need.example} does)"
    )


def _not_this_builtin(name: str) -> str:
    """CEL: the trainer does not train built-in dataset ``name`` (user files, another name)."""
    return (
        "(has(self.dataset) && has(self.dataset.trainPath)) || "
        f"(has(self.dataset) && has(self.dataset.name) ? self.dataset.name : "
        f"'{DEFAULT_DATASET}') != '{name}' || "
    )


def trace_rule(name: str, need: BuiltinDataset) -> dict[str, str]:
    """The CEL twin of :func:`trace_problem` for one built-in dataset."""
    return cel(
        "(has(self.backend) && self.backend != 'builtin') || "
        + _not_this_builtin(name)
        + "(has(self.eval) && has(self.eval.maxTraceTokens) ? self.eval.maxTraceTokens : "
        f"{DEFAULT_MAX_TRACE_TOKENS}) >= {need.trace_tokens}",
        f"eval.maxTraceTokens is shorter than the longest trace of dataset {name!r} "
        f"({need.trace_tokens} tokens); set eval.maxTraceTokens to at least {need.trace_tokens}",
        ".eval.maxTraceTokens",
    )


def context_rule(name: str, need: BuiltinDataset) -> dict[str, str]:
    """The CEL twin of :func:`context_problem` for one built-in dataset."""
    return cel(
        "(has(self.backend) && self.backend == 'tunix-grpo') || "
        + _not_this_builtin(name)
        + f"(has(self.model) && has(self.model.context) ? self.model.context : {DEFAULT_CONTEXT})"
        f" >= {need.row_tokens}",
        f"model.context is shorter than the longest row of dataset {name!r} "
        f"({need.row_tokens} tokens); set model.context to at least {need.row_tokens}",
        ".model.context",
    )


class ModelConfig(ApiModel):
    """Decoder-only transformer size."""

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            cel(
                f"(has(self.width) ? self.width : {DEFAULT_WIDTH}) % "
                f"(has(self.heads) ? self.heads : {DEFAULT_HEADS}) == 0",
                "heads must divide width",
                ".heads",
            ),
            fetchable_rule("checkpoint"),
            fetchable_rule("tokenizer"),
        )
    )

    layers: int = Field(DEFAULT_LAYERS, ge=1, le=48, description="Transformer blocks.")
    width: int = Field(DEFAULT_WIDTH, ge=16, le=8192, description="Model (embedding) width.")
    heads: int = Field(
        DEFAULT_HEADS, ge=1, le=128, description="Attention heads; must divide width."
    )
    mlp_ratio: int = Field(
        DEFAULT_MLP_RATIO, ge=1, le=16, description="MLP hidden width / model width."
    )
    context: int = Field(
        DEFAULT_CONTEXT, ge=32, le=8192, description="Maximum sequence length in tokens."
    )
    name: str | None = Field(
        None,
        description="Tunix backends (required there): a Gemma3 config by name (gemma3-270m, "
        "gemma3-1b, gemma3-1b-it, ...) or gemma3-tiny for tests.",
    )
    checkpoint: str | None = location(
        "Tunix backends: weights to start from (a path or gs:// / s3:// URI, "
        "orbax or safetensors); random init when absent (the run manifest says so)."
    )
    tokenizer: str | None = location(
        "Tunix backends: a SentencePiece model (path or gs:// / s3:// URI) for a "
        "real Gemma checkpoint; absent: the built-in byte tokenizer."
    )

    @model_validator(mode="after")
    def _heads_divide_width(self) -> ModelConfig:
        if self.width % self.heads:
            raise field_error(
                "heads", f"heads ({self.heads}) must divide width ({self.width})", self.heads
            )
        for key in ("checkpoint", "tokenizer"):
            problem = fetchable_problem(f"model.{key}", getattr(self, key))
            if problem:
                raise field_error(key, problem)
        return self


class EvalConfig(ApiModel):
    """How and how often the model is scored."""

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            cel(
                "(has(self.evalEvery) && self.evalEvery > 0) || !has(self.intermediateRows) || "
                f"self.intermediateRows == {DEFAULT_INTERMEDIATE_ROWS}",
                "intermediateRows sizes the intermediate evals, and evalEvery 0 runs none; set "
                "evalEvery or remove intermediateRows",
                ".intermediateRows",
            )
        )
    )

    max_trace_tokens: int = Field(
        DEFAULT_MAX_TRACE_TOKENS,
        ge=8,
        le=8192,
        description="Guardrail: generation stops after this many tokens.",
    )
    eval_every: int = Field(
        0, ge=0, description="Steps between intermediate evals reported to the tuner (0: end only)."
    )
    intermediate_rows: int = Field(
        DEFAULT_INTERMEDIATE_ROWS,
        ge=1,
        description="Eval rows used at intermediate evals (the final eval uses all).",
    )
    batch_size: int = Field(256, ge=1, le=65536, description="Rows decoded per batch.")

    @model_validator(mode="after")
    def _intermediate_needs_evals(self) -> EvalConfig:
        if self.eval_every == 0 and self.intermediate_rows != DEFAULT_INTERMEDIATE_ROWS:
            raise field_error(
                "intermediateRows",
                f"intermediateRows={self.intermediate_rows} sizes the intermediate evals, and "
                "evalEvery is 0 (the final eval only, on every row); set evalEvery (e.g. 50) "
                "or remove intermediateRows",
                self.intermediate_rows,
            )
        return self
