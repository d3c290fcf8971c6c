"""Load a TrainerConfig from a file or dict plus ``key=value`` overrides (no JAX import)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tunix_rt.api.manifests import read_document
from tunix_rt.api.overrides import assignments_to_overrides
from tunix_rt.api.trainer import TrainerConfig, apply_overrides
from tunix_rt.reading import MANIFEST, read_file


def read_config_file(path: str | Path) -> dict[str, Any]:
    """A YAML or JSON mapping from ``path`` (JSON is YAML, but its errors read better)."""
    path = Path(path)
    loaded = read_document(read_file(path, MANIFEST), str(path))
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ValueError(f"{path}: expected a mapping of TrainerConfig fields at the top level")
    return loaded


def load_trainer_config(
    source: str | Path | Mapping[str, Any] | None = None, overrides: Sequence[str] = ()
) -> TrainerConfig:
    """A validated TrainerConfig from a file path, a dict (either spelling) or defaults, with
    ``KEY=VALUE`` overrides applied the one way overrides apply (``api/overrides.py``); a
    :class:`~tunix_rt.api.errors.ManifestError` names the field."""
    if source is None:
        data: dict[str, Any] = {}
    elif isinstance(source, Mapping):
        data = dict(source)  # merged into a copy: the overrides never leak back
    else:
        data = read_config_file(source)
    return apply_overrides(data, assignments_to_overrides(overrides), "")
