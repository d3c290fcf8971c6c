"""What trains a trial: the backends, the fields each one reads, Tunix's model names and the
``python`` backend's own declared parameters."""

from __future__ import annotations

import math
import re
from typing import Any, Literal

from tunix_rt.api.base import field_error

TrainerBackend = Literal["builtin", "tunix-sft", "tunix-grpo", "tunix-dpo", "python"]
"""What trains a trial: the built-in char transformer, Tunix's PeftTrainer (LoRA or full
fine-tuning), Tunix's GRPOLearner, Tunix's DPOTrainer, or a user's own function
(``entrypoint``)."""
TUNIX_BACKENDS = ("tunix-sft", "tunix-grpo", "tunix-dpo")
DEFAULT_LORA_RANK = 8
"""loraRank when the spec leaves it out."""
TUNIX_ONLY = ("lora_rank", "lora_alpha")
GRPO_ONLY = ("kl_beta", "num_generations", "clip_epsilon", "temperature", "max_generation_length")
DPO_ONLY = ("dpo_beta",)
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


def tunix_model_name(name: str) -> str | None:
    """The canonical spelling of a Tunix model name (one of TUNIX_MODELS), or None:
    ``gemma3_1b_pt``, ``Gemma3-1B`` and ``gemma3-1b`` are all ``gemma3-1b``."""
    canonical = name.strip().lower().replace("_", "-").removesuffix("-pt")
    return canonical if canonical in TUNIX_MODELS else None


def check_tunix_model(name: str | None, backend: str) -> None:
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
