"""The trainer config: one model shared by Sweep trials, Rehearsals and the CLI.

Every field a sweep may search over is a top-level scalar here, so that a trial's
params are a flat ``{field_name: value}`` mapping applied with ``with_params``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ConfigDict, Field, ValidationError, model_validator

from tunix_rt.api.base import ApiModel, cel, cel_rules, field_error, refuse, unset
from tunix_rt.api.common import SEED_MAX
from tunix_rt.api.errors import ManifestError, error_pairs, validation_errors
from tunix_rt.api.overrides import merge_overrides
from tunix_rt.api.schedule import (
    MAX_SCHEDULE_STEPS,
    SCHEDULE_RULES,
    ScheduleStep,
    schedule_problems,
)
from tunix_rt.api.secrets import refuse_credentials
from tunix_rt.api.takes_effect import TRAINER_RULES, trainer_problems
from tunix_rt.api.trainer_backends import (
    DPO_ONLY,
    ENTRYPOINT,
    GRPO_ONLY,
    MAX_USER_PARAMS,
    PYTHON_ONLY,
    TUNIX_BACKENDS,
    TUNIX_ONLY,
    USER_PARAM_NAME,
    TrainerBackend,
    UserParamType,
    UserParamValue,
    check_tunix_model,
    user_param_value,
)
from tunix_rt.api.trainer_sections import (
    BUILTIN_DATASETS,
    DEFAULT_HEADS,
    DatasetConfig,
    EvalConfig,
    ModelConfig,
    context_problem,
    context_rule,
    trace_problem,
    trace_rule,
)


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
            *(context_rule(name, need) for name, need in BUILTIN_DATASETS.items()),
            *(trace_rule(name, need) for name, need in BUILTIN_DATASETS.items()),
            cel(
                "!has(self.backend) || self.backend != 'python' || has(self.entrypoint)",
                "backend python needs entrypoint ('package.module:function')",
                ".entrypoint",
            ),
            *TRAINER_RULES,
            *SCHEDULE_RULES,
        ),
    )

    backend: TrainerBackend = Field(
        "builtin",
        description="builtin, tunix-sft, tunix-grpo, tunix-dpo, or python (entrypoint).",
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
    layers: int | None = unset("Searchable override of model.layers.", ge=1, le=48)
    width: int | None = unset("Searchable override of model.width.", ge=16, le=8192)
    lora_rank: int | None = unset(
        "Tunix: LoRA rank (0: full fine-tuning; default 8).", ge=0, le=1024
    )
    lora_alpha: float | None = unset("Tunix: LoRA alpha (default 2 x loraRank).", gt=0, le=4096)
    kl_beta: float | None = unset("tunix-grpo: KL penalty weight (default 0.04).", ge=0, le=10)
    num_generations: int | None = unset(
        "tunix-grpo: completions per prompt (default 4).", ge=2, le=64
    )
    clip_epsilon: float | None = unset(
        "tunix-grpo: PPO-style ratio clip (default 0.2).", gt=0, le=1
    )
    temperature: float | None = unset("tunix-grpo: sampling temperature (default 0.9).", gt=0, le=5)
    max_generation_length: int | None = unset(
        "tunix-grpo: tokens generated per completion.", ge=1, le=8192
    )
    dpo_beta: float | None = unset(
        "tunix-dpo: how far the policy may move from its start (default 0.1).", gt=0, le=10
    )
    log_every: int = Field(25, ge=1, description="Steps between loss reports.")
    checkpoint_every: int = Field(0, ge=0, description="Steps between checkpoints (0: never).")
    schedule: list[ScheduleStep] | None = Field(
        None,
        max_length=MAX_SCHEDULE_STEPS,
        description="Params that change at given steps (a PBT trial's schedule, replayed "
        "by a Rehearsal; backends builtin and tunix-grpo): each entry applies from its step on.",
    )
    model: ModelConfig = Field(default_factory=ModelConfig)
    dataset: DatasetConfig = Field(default_factory=DatasetConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)

    @model_validator(mode="before")
    @classmethod
    def _no_credentials(cls, data: Any) -> Any:
        """Credentials anywhere in the spec are refused first (issue 23)."""
        return refuse_credentials(data)

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
        if problem and self.backend != "tunix-grpo":  # GRPO reads no model.context
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
            (DPO_ONLY, ("tunix-dpo",)),
            (PYTHON_ONLY, ("python",)),
        ):
            for name in names:
                if getattr(self, name) is not None and self.backend not in backends:
                    wire = TrainerConfig.model_fields[name].alias or name
                    raise field_error(
                        wire,
                        f"{wire} is read by backend {' or '.join(backends)} only; "
                        f"remove it or set backend (now {self.backend})",
                        getattr(self, name),
                    )
        if self.backend in TUNIX_BACKENDS:
            check_tunix_model(self.model.name, self.backend)
        for name in ("name", "checkpoint", "tokenizer"):
            if getattr(self.model, name) is not None and self.backend not in TUNIX_BACKENDS:
                raise field_error(
                    f"model.{name}",
                    f"model.{name} is read by the Tunix backends only; remove it or set "
                    f"backend {' or '.join(TUNIX_BACKENDS)} (now {self.backend})",
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

    @model_validator(mode="after")
    def _takes_effect(self) -> TrainerConfig:
        """A setting the backend would ignore or cap is refused (``takes_effect.py``)."""
        refuse(trainer_problems(self) + schedule_problems(self))
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
        return apply_overrides(self.to_wire(), overrides, field)


def apply_overrides(
    base: Mapping[str, Any], overrides: Mapping[str, Any], field: str
) -> TrainerConfig:
    """The TrainerConfig of ``base`` (its fields in either spelling, not yet validated, e.g.
    a file's) with ``overrides`` merged in (:func:`merge_overrides`), validated; a
    :class:`ManifestError` names ``<field>.<key>`` (``<key>`` for an empty ``field``)."""
    merged = merge_overrides(TrainerConfig, base, overrides, field)
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
        merged = merge_overrides(TrainerConfig, TrainerConfig().to_wire(), overrides, field)
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
        if name in {
            "model",
            "dataset",
            "eval",
            "backend",
            "entrypoint",
            "parameters",
            "schedule",
        } or (name == "user_params"):
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


def wire_param_name(key: str) -> str:
    """Canonical wire (camelCase) name of a searchable param, from either spelling.

    Sweep search spaces, trial params and status use this spelling, like the manifests.
    """
    return searchable_params()[searchable_name(key)]
