"""The trainer config: one model shared by Sweep trials, Rehearsals and the CLI.

Every field a sweep may search over is a top-level scalar here, so that a trial's
params are a flat ``{field_name: value}`` mapping applied with ``with_params``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple, get_args

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
}
"""The generated datasets by ``dataset.name``: the default and two harder tiers (the
same problems written compactly and as fixed-length sentences)."""
DEFAULT_DATASET = "dev-reasoning-v2"
DEFAULT_CONTEXT = 64
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


def _context_rule(name: str, need: BuiltinDataset) -> dict[str, str]:
    """The CEL twin of :func:`context_problem` for one built-in dataset."""
    return cel(
        "(has(self.dataset) && has(self.dataset.trainPath)) || "
        f"(has(self.dataset) && has(self.dataset.name) ? self.dataset.name : "
        f"'{DEFAULT_DATASET}') != '{name}' || "
        f"(has(self.model) && has(self.model.context) ? self.model.context : {DEFAULT_CONTEXT})"
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
        48, ge=8, le=8192, description="Guardrail: generation stops after this many tokens."
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
        ),
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
        return self

    def with_params(self, params: dict[str, Any]) -> TrainerConfig:
        """A copy with searched params applied (keys in either spelling), re-validated."""
        data = self.model_dump()
        for key, value in params.items():
            name = searchable_name(key)
            data[name] = value
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
        if name in {"model", "dataset", "eval"}:
            continue
        out[name] = info.alias or name
    return out


def searchable_name(key: str) -> str:
    """Canonical (snake_case) name of a searchable param, from either spelling."""
    fields = searchable_params()
    if key in fields:
        return key
    for name, alias in fields.items():
        if alias == key:
            return name
    raise ValueError(
        f"{key!r} is not a searchable trainer parameter; choose from {sorted(fields.values())}"
    )


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
        else:
            out[wire] = value
    return out
