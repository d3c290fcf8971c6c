"""The trainer config: one model shared by Sweep trials, Rehearsals and the CLI.

Every field a sweep may search over is a top-level scalar here, so that a trial's
params are a flat ``{field_name: value}`` mapping applied with ``with_params``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, Literal, NamedTuple, get_args

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationError, model_validator

from tunix_rt.api.base import ApiModel, cel, cel_rules, field_error
from tunix_rt.api.common import SEED_MAX
from tunix_rt.api.errors import ManifestError, error_pairs, validation_errors
from tunix_rt.scoring import PRIMARY_SCORE


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

TrainerBackend = Literal["builtin", "tunix-sft", "tunix-grpo", "python"]
"""What trains a trial: the built-in char transformer, Tunix's PeftTrainer (LoRA or full
fine-tuning), Tunix's GRPOLearner, or a user's own function (``entrypoint``)."""
TUNIX_BACKENDS = ("tunix-sft", "tunix-grpo")
DEFAULT_LORA_RANK = 8
"""loraRank when the spec leaves it out."""
TUNIX_ONLY = ("lora_rank", "lora_alpha")
GRPO_ONLY = ("kl_beta", "num_generations", "clip_epsilon", "temperature", "max_generation_length")
PYTHON_ONLY = ("entrypoint", "parameters", "user_params")
TUNIX_MODELS = (
    "gemma3-tiny",
    "gemma3-270m",
    "gemma3-270m-it",
    "gemma3-1b",
    "gemma3-1b-it",
    "gemma3-4b",
    "gemma3-4b-it",
    "gemma3-12b",
    "gemma3-12b-it",
    "gemma3-27b",
    "gemma3-27b-it",
)
"""``model.name`` for the Tunix backends: Tunix's Gemma3 configs (``gemma3-1b`` is its
``gemma3_1b_pt``; underscores and a ``-pt`` suffix are accepted too) and gemma3-tiny, a
2-layer random-init config (~140k params) for tests and CPU runs."""
UserParamType = Literal["float", "int", "str", "bool"]
"""The types a ``python`` backend may declare for its own searchable parameters."""
UserParamValue = float | int | str | bool
MAX_USER_PARAMS = 64
USER_PARAM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
"""A declared parameter's name: a Python identifier (it reaches the entrypoint as a key)."""
ENTRYPOINT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*")
"""``package.module:function``."""
DEFAULT_WIDTH = 128
DEFAULT_HEADS = 8

# What the built-in trainer reports (``train/loop.py``, ``train/evaluate.py``; a trial
# forwards every report to Ray Tune with the latest value of each metric seen so far):
TRAIN_METRICS = ("loss", "learning_rate", "steps_per_second")
"""Reported every ``logEvery`` steps while a trial trains (with ``step``, the time axis)."""
EVAL_METRICS = (
    PRIMARY_SCORE,
    "format_valid_rate",
    "cap_hit_rate",
    "trace_len_p50",
    "trace_len_p95",
    "eval_rows",
)
"""Reported at each eval: every ``eval.evalEvery`` steps (0: only the final eval)."""
FINAL_METRICS = ("compile_seconds", "train_seconds", "eval_seconds")
"""Reported once, when a trial ends."""
REPORTED_METRICS = (*EVAL_METRICS, *TRAIN_METRICS, *FINAL_METRICS)
"""Every metric a trial reports: what ``objective.metric`` may name."""
SCHEDULER_METRICS = (*TRAIN_METRICS, *EVAL_METRICS)
"""Metrics reported while a trial trains: what an early-stopping scheduler may compare
(the eval metrics only with ``eval.evalEvery`` > 0)."""


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
                + "["
                + ", ".join(f"'{d}'" for d in BUILTIN_DATASETS)
                + "]",
                f"unknown built-in dataset; use one of {list(BUILTIN_DATASETS)} "
                "or give trainPath and evalPath",
                ".name",
            ),
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
    train_size: PositiveInt = Field(20000, le=1_000_000, description="Generated train rows.")
    eval_size: PositiveInt = Field(512, le=100_000, description="Generated eval rows.")
    train_path: str | None = Field(
        None, description="JSONL with prompt, reasoning, answer per line; replaces the generator."
    )
    eval_path: str | None = Field(
        None, description="JSONL eval set with the same fields; required with trainPath."
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


def _trace_rule(name: str, need: BuiltinDataset) -> dict[str, str]:
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


def _context_rule(name: str, need: BuiltinDataset) -> dict[str, str]:
    """The CEL twin of :func:`context_problem` for one built-in dataset."""
    return cel(
        _not_this_builtin(name)
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
            )
        )
    )

    layers: int = Field(2, ge=1, le=48, description="Transformer blocks.")
    width: int = Field(DEFAULT_WIDTH, ge=16, le=8192, description="Model (embedding) width.")
    heads: int = Field(
        DEFAULT_HEADS, ge=1, le=128, description="Attention heads; must divide width."
    )
    mlp_ratio: int = Field(4, ge=1, le=16, description="MLP hidden width / model width.")
    context: int = Field(
        DEFAULT_CONTEXT, ge=32, le=8192, description="Maximum sequence length in tokens."
    )
    name: str | None = Field(
        None,
        description="Tunix backends (required there): a Gemma3 config by name (gemma3-270m, "
        "gemma3-1b, gemma3-1b-it, ...) or gemma3-tiny for tests.",
    )
    checkpoint: str | None = Field(
        None,
        description="Tunix backends: weights to start from (a path or gs:// / s3:// URI, "
        "orbax or safetensors); random init when absent (the run manifest says so).",
    )
    tokenizer: str | None = Field(
        None,
        description="Tunix backends: a SentencePiece model (path or gs:// / s3:// URI) for a "
        "real Gemma checkpoint; absent: the built-in byte tokenizer.",
    )

    @model_validator(mode="after")
    def _heads_divide_width(self) -> ModelConfig:
        if self.width % self.heads:
            raise field_error(
                "heads", f"heads ({self.heads}) must divide width ({self.width})", self.heads
            )
        return self


class EvalConfig(ApiModel):
    """How and how often the model is scored."""

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
        128, ge=1, description="Eval rows used at intermediate evals (the final eval uses all)."
    )
    batch_size: int = Field(256, ge=1, le=65536, description="Rows decoded per batch.")


class TrainerConfig(ApiModel):
    """One training + evaluation run. Searchable hyperparameters are top-level scalars."""

    model_config = ConfigDict(
        allow_inf_nan=False,
        json_schema_extra=cel_rules(
            cel(
                "!has(self.width) || self.width % "
                "(has(self.model) && has(self.model.heads) ? self.model.heads : "
                f"{DEFAULT_HEADS}) == 0",
                "model.heads must divide width",
                ".width",
            ),
            *(_context_rule(name, need) for name, need in BUILTIN_DATASETS.items()),
            *(_trace_rule(name, need) for name, need in BUILTIN_DATASETS.items()),
            cel(
                "!has(self.backend) || self.backend != 'python' || has(self.entrypoint)",
                "backend python needs entrypoint ('package.module:function')",
                ".entrypoint",
            ),
        ),
    )

    backend: TrainerBackend = Field(
        "builtin", description="builtin, tunix-sft, tunix-grpo, or python (entrypoint)."
    )
    entrypoint: str | None = Field(
        None, description="backend python: 'package.module:function' that trains one trial."
    )
    parameters: dict[str, UserParamType] | None = Field(
        None,
        max_length=MAX_USER_PARAMS,
        description="backend python: the entrypoint's own parameters (name: float, int, str "
        "or bool), which searchSpace may name.",
    )
    user_params: dict[str, Any] | None = Field(
        None, description="backend python: values of the declared parameters for this run."
    )
    learning_rate: float = Field(3e-3, gt=0, le=1.0, description="Peak AdamW learning rate.")
    weight_decay: float = Field(0.01, ge=0, le=1.0, description="AdamW decoupled weight decay.")
    warmup_steps: int = Field(30, ge=0, description="Linear warmup steps before cosine decay.")
    batch_size: int = Field(96, ge=1, le=65536, description="Global train batch size.")
    max_steps: int = Field(300, ge=1, le=10_000_000, description="Train steps (the smoke cap).")
    seed: int = Field(0, ge=0, le=SEED_MAX, description="Seed for init, shuffling and dropout.")
    grad_clip: float = Field(1.0, gt=0, description="Global gradient-norm clip.")
    layers: int | None = Field(
        None, ge=1, le=48, description="Searchable override of model.layers."
    )
    width: int | None = Field(
        None, ge=16, le=8192, description="Searchable override of model.width."
    )
    lora_rank: int | None = Field(
        None, ge=0, le=1024, description="Tunix: LoRA rank (0: full fine-tuning; default 8)."
    )
    lora_alpha: float | None = Field(
        None, gt=0, le=4096, description="Tunix: LoRA alpha (default 2 x loraRank)."
    )
    kl_beta: float | None = Field(
        None, ge=0, le=10, description="tunix-grpo: KL penalty weight (default 0.04)."
    )
    num_generations: int | None = Field(
        None, ge=2, le=64, description="tunix-grpo: completions per prompt (default 4)."
    )
    clip_epsilon: float | None = Field(
        None, gt=0, le=1, description="tunix-grpo: PPO-style ratio clip (default 0.2)."
    )
    temperature: float | None = Field(
        None, gt=0, le=5, description="tunix-grpo: sampling temperature (default 0.9)."
    )
    max_generation_length: int | None = Field(
        None, ge=1, le=8192, description="tunix-grpo: tokens generated per completion."
    )
    log_every: int = Field(25, ge=1, description="Steps between loss reports.")
    checkpoint_every: int = Field(0, ge=0, description="Steps between checkpoints (0: never).")
    model: ModelConfig = Field(default_factory=ModelConfig)
    dataset: DatasetConfig = Field(default_factory=DatasetConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)

    @model_validator(mode="after")
    def _apply_size_overrides(self) -> TrainerConfig:
        updates = {k: v for k, v in (("layers", self.layers), ("width", self.width)) if v}
        if updates:
            merged = self.model.model_dump() | updates
            try:
                model = ModelConfig.model_validate(merged)
            except ValidationError as exc:
                first = exc.errors()[0]
                raise field_error(
                    "width" if "width" in updates else "layers", str(first["msg"]), updates
                ) from exc
            object.__setattr__(self, "model", model)
        return self

    @model_validator(mode="after")
    def _context_fits_dataset(self) -> TrainerConfig:
        problem = context_problem(self.dataset, self.model.context)
        if problem:
            raise field_error("model.context", problem, self.model.context)
        problem = trace_problem(self.dataset, self.backend, self.eval.max_trace_tokens)
        if problem:
            raise field_error("eval.maxTraceTokens", problem, self.eval.max_trace_tokens)
        return self

    @model_validator(mode="after")
    def _backend_fields(self) -> TrainerConfig:
        """Each backend's fields only with that backend: a setting that would be ignored
        is refused, naming the field and the backend that reads it."""
        for names, backends in (
            (TUNIX_ONLY, TUNIX_BACKENDS),
            (GRPO_ONLY, ("tunix-grpo",)),
            (PYTHON_ONLY, ("python",)),
        ):
            for name in names:
                if getattr(self, name) is not None and self.backend not in backends:
                    wire = TrainerConfig.model_fields[name].alias or name
                    raise field_error(
                        wire,
                        f"{wire} is read by backend {' and '.join(backends)} only; "
                        f"remove it or set backend (now {self.backend})",
                        getattr(self, name),
                    )
        if self.backend in TUNIX_BACKENDS:
            _check_tunix_model(self.model.name, self.backend)
        for name in ("name", "checkpoint", "tokenizer"):
            if getattr(self.model, name) is not None and self.backend not in TUNIX_BACKENDS:
                raise field_error(
                    f"model.{name}",
                    f"model.{name} is read by the Tunix backends only; remove it or set "
                    f"backend tunix-sft or tunix-grpo (now {self.backend})",
                    getattr(self.model, name),
                )
        return self

    @model_validator(mode="after")
    def _user_params(self) -> TrainerConfig:
        """backend python: an entrypoint to call, declared parameters with names of their
        own, and userParams values of the declared types (normalised: 3 -> 3.0 for a
        float, 2.0 -> 2 for an int), as the entrypoint will receive them."""
        if self.backend != "python":
            return self
        if self.entrypoint is None:
            raise field_error(
                "entrypoint",
                "backend python needs entrypoint: the function that trains one trial, "
                "written 'package.module:function'",
            )
        if not ENTRYPOINT.fullmatch(self.entrypoint):
            raise field_error(
                "entrypoint",
                f"{self.entrypoint!r} is not 'package.module:function' (dotted module path, "
                "a colon, the function's name)",
                self.entrypoint,
            )
        declared = self.parameters or {}
        for name in declared:
            problem = user_param_name_problem(name)
            if problem:
                raise field_error("parameters", problem, name)
        values: dict[str, UserParamValue] = {}
        for name, value in (self.user_params or {}).items():
            if name not in declared:
                raise field_error(
                    "userParams",
                    f"{name!r} is not declared in trainer.parameters; declare it there "
                    f"(name: float, int, str or bool) or use one of {sorted(declared)}",
                    name,
                )
            try:
                values[name] = user_param_value(declared[name], value)
            except ValueError as exc:
                raise field_error("userParams", f"{name}: {exc}", value) from None
        if self.user_params is not None:
            object.__setattr__(self, "user_params", values)
        return self

    def with_params(self, params: dict[str, Any]) -> TrainerConfig:
        """A copy with searched params applied, re-validated: trainer fields (either
        spelling) replace their value, the user's declared ``parameters`` go into
        ``userParams`` (under the user's names)."""
        data = self.model_dump()
        declared = self.parameters or {}
        user = dict(self.user_params or {})
        for key, value in params.items():
            if key in declared:
                user[key] = value
                continue
            name = searchable_name(key, declared)
            data[name] = value
        if user:
            data["user_params"] = user
        return TrainerConfig.model_validate(data)

    def with_overrides(
        self, overrides: Mapping[str, Any] | None, field: str = "spec.overrides"
    ) -> TrainerConfig:
        """A copy with ``overrides`` applied: any field in either spelling, nested sections
        (model, dataset, eval) merged key by key, the result re-validated.

        The one way overrides apply, for admission and for the run alike; a
        :class:`ManifestError` names ``<field>.<key>`` for an unknown key or a bad value.
        """
        if not overrides:
            return self
        merged = _merge(TrainerConfig, self.to_wire(), overrides, field)
        try:
            return TrainerConfig.model_validate(merged)
        except ValidationError as exc:
            errors = validation_errors(exc, field)
            raise ManifestError(*errors[0], errors=errors) from None


def tunix_model_name(name: str) -> str | None:
    """The canonical spelling of a Tunix model name (one of TUNIX_MODELS), or None:
    ``gemma3_1b_pt``, ``Gemma3-1B`` and ``gemma3-1b`` are all ``gemma3-1b``."""
    canonical = name.strip().lower().replace("_", "-").removesuffix("-pt")
    return canonical if canonical in TUNIX_MODELS else None


def _check_tunix_model(name: str | None, backend: str) -> None:
    if name is None:
        raise field_error(
            "model.name",
            f"backend {backend} needs model.name, the Gemma3 config to build; use one of "
            f"{list(TUNIX_MODELS)}",
        )
    if tunix_model_name(name) is None:
        raise field_error(
            "model.name",
            f"unknown Tunix model {name!r}; use one of {list(TUNIX_MODELS)}",
            name,
        )


def check_overrides(
    overrides: Mapping[str, Any] | None,
    base: TrainerConfig | None = None,
    field: str = "overrides",
) -> list[tuple[str, str]]:
    """What is wrong with ``overrides``, as ``(field, message)`` pairs (empty: they apply).

    With ``base`` (an inline trainer) the overrides are applied to it exactly as the run
    applies them (:meth:`TrainerConfig.with_overrides`). Without (``fromSweep``: the
    trainer is known only once the Sweep has finished) they are applied to a default
    config and only what does not depend on the Sweep's config is kept: unknown keys,
    types and each field's bounds, not rules between fields (heads must divide width).
    """
    if not overrides:
        return []
    if not isinstance(overrides, Mapping):
        return [(field, "expected a mapping of trainer fields (key: value)")]
    try:
        if base is not None:
            base.with_overrides(overrides, field)
            return []
        merged = _merge(TrainerConfig, TrainerConfig().to_wire(), overrides, field)
        TrainerConfig.model_validate(merged)
    except ManifestError as exc:
        return exc.errors
    except ValidationError as exc:
        # value_error: a rule between fields, which the Sweep's own config may satisfy.
        return error_pairs([e for e in exc.errors() if e["type"] != "value_error"], field)
    return []


def integer_params() -> list[str]:
    """Searchable params that take integers (both spellings): uniform/loguniform would
    sample fractions that they refuse."""
    out: list[str] = []
    for name, alias in searchable_params().items():
        annotation = TrainerConfig.model_fields[name].annotation
        if annotation in (int, int | None):
            out += [alias] if alias == name else [alias, name]
    return out


def searchable_params() -> dict[str, str]:
    """Searchable field name -> wire alias (scalar top-level fields)."""
    out: dict[str, str] = {}
    for name, info in TrainerConfig.model_fields.items():
        if name in {"model", "dataset", "eval", "backend", "entrypoint", "parameters"} or (
            name == "user_params"
        ):
            continue
        out[name] = info.alias or name
    return out


def searchable_name(key: str, declared: Mapping[str, str] | None = None) -> str:
    """Canonical (snake_case) name of a searchable param, from either spelling.

    ``declared``: the user's own parameters (``trainer.parameters``), named in the error
    as choices too."""
    fields = searchable_params()
    if key in fields:
        return key
    for name, alias in fields.items():
        if alias == key:
            return name
    raise ValueError(unknown_param_message(key, declared))


def unknown_param_message(key: str, declared: Mapping[str, str] | None = None) -> str:
    """Why ``key`` cannot be searched: the trainer's parameters, and the user's own."""
    message = (
        f"{key!r} is not a searchable trainer parameter; choose from "
        f"{sorted(searchable_params().values())}"
    )
    if declared:
        return f"{message} or the declared trainer.parameters {sorted(declared)}"
    return (
        f"{message}, or declare it in trainer.parameters (name: float, int, str or bool) "
        "with backend python"
    )


def trainer_field_names() -> set[str]:
    """Every TrainerConfig field name, in both spellings."""
    return {
        key
        for name, info in TrainerConfig.model_fields.items()
        for key in (name, info.alias)
        if key
    }


def user_param_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a user parameter (None: it can)."""
    if not USER_PARAM_NAME.fullmatch(name):
        return (
            f"parameter name {name!r} must be a Python identifier of at most 63 characters "
            "(letters, digits, _; not starting with a digit)"
        )
    if name in trainer_field_names():
        return (
            f"parameter name {name!r} is a trainer field already (trainer.{name}); "
            "rename the parameter, e.g. user_" + name
        )
    return None


def user_param_value(kind: str, value: Any) -> UserParamValue:
    """``value`` as a parameter of type ``kind`` (float, int, str, bool); ValueError when
    it is not one. Like trainer fields: no strings for numbers, no bools for numbers, an
    integral float for an int (``randint`` bounds and YAML both give these)."""
    if kind == "bool":
        if isinstance(value, bool):
            return value
        raise ValueError(f"declared bool, got {value!r}; use true or false")
    if kind == "str":
        if isinstance(value, str):
            return value
        raise ValueError(f"declared str, got {value!r}; quote it")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"declared {kind}, got {value!r}; write a number without quotes")
    if not math.isfinite(value):
        raise ValueError(f"declared {kind}, got {value!r}; use a finite number")
    if kind == "int":
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(f"declared int, got {value!r}; use a whole number")
        return int(value)
    return float(value)


def wire_param_name(key: str) -> str:
    """Canonical wire (camelCase) name of a searchable param, from either spelling.

    Sweep search spaces, trial params and status use this spelling, like the manifests.
    """
    return searchable_params()[searchable_name(key)]


def _merge(
    model: type[BaseModel], base: dict[str, Any], overrides: Mapping[str, Any], path: str
) -> dict[str, Any]:
    """``base`` (wire form) with ``overrides`` merged in; nested models merge key by key."""
    out = dict(base)
    fields = {
        key: (info.alias or name, info.annotation)
        for name, info in model.model_fields.items()
        for key in (name, info.alias)
        if key
    }
    for key, value in overrides.items():
        if key not in fields:
            known = sorted({wire for wire, _ in fields.values()})
            raise ManifestError(f"{path}.{key}", f"unknown trainer field; use one of {known}")
        wire, annotation = fields[key]
        nested = next(
            (
                c
                for c in (annotation, *get_args(annotation))
                if isinstance(c, type) and issubclass(c, BaseModel)
            ),
            None,
        )
        if nested is not None and isinstance(value, Mapping):
            out[wire] = _merge(nested, dict(out.get(wire) or {}), value, f"{path}.{key}")
        elif wire == "userParams" and isinstance(value, Mapping):
            out[wire] = {**dict(out.get(wire) or {}), **value}  # one value at a time
        else:
            out[wire] = value
    return out
