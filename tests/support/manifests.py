"""Sweep and Rehearsal manifests as the tests build them: a document of a name and a
spec (and a namespace where one is given), a Sweep written to a YAML file, and what
validating a Sweep refuses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from tunix_rt.api.errors import validation_errors
from tunix_rt.api.sweep import Sweep

API_VERSION = "tunixrt.io/v1alpha1"


def manifest(kind: str, name: str, spec: Any, namespace: str | None = None) -> dict[str, Any]:
    """A ``kind`` object of ``spec`` named ``name`` (in ``namespace`` where given)."""
    metadata = {"name": name} if namespace is None else {"name": name, "namespace": namespace}
    return {"apiVersion": API_VERSION, "kind": kind, "metadata": metadata, "spec": spec}


def sweep_manifest(name: str, spec: Any, namespace: str | None = None) -> dict[str, Any]:
    return manifest("Sweep", name, spec, namespace)


def rehearsal_manifest(name: str, spec: Any, namespace: str | None = None) -> dict[str, Any]:
    return manifest("Rehearsal", name, spec, namespace)


def write_sweep(path: Path, name: str, spec: dict[str, Any]) -> Path:
    """``sweep_manifest(name, spec)`` as YAML at ``path``."""
    path.write_text(yaml.safe_dump(sweep_manifest(name, spec)))
    return path


def sweep_spec_errors(spec: dict[str, Any]) -> list[tuple[str, str]]:
    """The (field, message) pairs a Sweep named ``s`` of ``spec`` is refused with; none
    when it is valid."""
    try:
        Sweep.model_validate({"metadata": {"name": "s"}, "spec": spec})
    except ValidationError as exc:
        return validation_errors(exc)
    return []
