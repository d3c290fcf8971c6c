"""scripts/build_images.py (``make images``), loaded as a module, and the chart values it writes."""

from __future__ import annotations

import importlib.util
import sys
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "build_images.py"
REGISTRY = "registry.example.com/tunix-rt"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@cache
def script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("tunix_rt_images_script", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def registry_of(command: list[str]) -> str:
    """The REGISTRY of a ``make images REGISTRY=…`` command as the README writes it."""
    assert command[:2] == ["make", "images"], f"not make images: {command}"
    return next(a.partition("=")[2] for a in command[2:] if a.startswith("REGISTRY="))


def built_values(registry: str = REGISTRY, kinds: str = "operator,cpu,cuda,tpu") -> dict[str, Any]:
    """What ``make images REGISTRY=registry`` writes to images.values.yaml at COMMIT."""
    plan = script().plan(
        registry, version="0.1.0", commit=COMMIT, dirty=False, kinds=kinds.split(",")
    )
    values: dict[str, Any] = plan.values
    return values
