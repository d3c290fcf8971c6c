"""How params and scores read wherever a person sees them: the CLI's tables, the files
``promote`` writes, a promotion's commit message and pull request. One definition, so a
score reads the same in the terminal, the manifest annotation and the commit."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def format_params(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={format_value(v)}" for k, v in sorted(params.items()))


def format_score(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
