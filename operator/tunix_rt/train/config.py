"""Load a TrainerConfig from a file or dict plus ``key=value`` overrides (no JAX import)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from tunix_rt.api.trainer import TrainerConfig

_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def read_config_file(path: str | Path) -> dict[str, Any]:
    """A YAML or JSON mapping from ``path`` (JSON is YAML, but its errors read better)."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    loaded = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ValueError(f"{path}: expected a mapping of TrainerConfig fields at the top level")
    return loaded


def apply_override(data: dict[str, Any], assignment: str) -> None:
    """Set ``a.b.c=value`` in ``data``; the value is parsed as a YAML scalar (1e-3, true, 64)."""
    key, sep, raw = assignment.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"--set {assignment!r}: expected KEY=VALUE, e.g. learningRate=1e-3")
    value = yaml.safe_load(raw)
    if isinstance(value, str) and _NUMBER.fullmatch(value):
        value = float(value)  # YAML 1.1 reads "1e-3" as a string
    parts = key.strip().split(".")
    node = data
    for part in parts[:-1]:
        match = [k for k in node if _same_name(k, part)]
        child = node[match[0]] if match else node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ValueError(f"--set {assignment!r}: {part!r} is not a section")
        node = child
    for existing in [k for k in node if _same_name(k, parts[-1])]:
        del node[existing]  # learning_rate replaces learningRate, not both
    node[parts[-1]] = value


def _same_name(a: str, b: str) -> bool:
    return a.replace("_", "").lower() == b.replace("_", "").lower()


def load_trainer_config(
    source: str | Path | Mapping[str, Any] | None = None, overrides: Sequence[str] = ()
) -> TrainerConfig:
    """A validated TrainerConfig from a file path, a dict (either spelling) or defaults."""
    if source is None:
        data: dict[str, Any] = {}
    elif isinstance(source, Mapping):
        data = json.loads(json.dumps(dict(source)))  # deep copy; overrides must not leak back
    else:
        data = read_config_file(source)
    for assignment in overrides:
        apply_override(data, assignment)
    return TrainerConfig.model_validate(data)
