"""KubeRay's RayJob CRD schema as a strict JSON-schema validator (test helper)."""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

CRD_DIR = Path(__file__).resolve().parents[2] / ".." / "shared" / "kuberay-crds"
RAYJOB_CRD = CRD_DIR / "ray.io_rayjobs.yaml"


def strict_schema(schema: Any) -> Any:
    """OpenAPI (structural) -> JSON schema that rejects unknown fields, as kubectl's strict
    field validation does; int-or-string fields accept both."""
    if isinstance(schema, list):
        return [strict_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict_schema(v) for k, v in schema.items()}
    if out.get("x-kubernetes-int-or-string") and "anyOf" not in out:
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if (
        out.get("type") == "object"
        and "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


@cache
def rayjob_validator() -> jsonschema.Draft7Validator:
    crd = yaml.safe_load(RAYJOB_CRD.read_text())
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    schema = strict_schema(copy.deepcopy(version["schema"]["openAPIV3Schema"]))
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def require_crds() -> None:
    if not RAYJOB_CRD.is_file():
        pytest.skip(
            f"KubeRay CRDs not found at {CRD_DIR.resolve()} (../shared/kuberay-crds is "
            "checked out beside the repo in CI); cannot validate RayJobs against the schema"
        )


def validate_rayjob(manifest: dict[str, Any]) -> None:
    """Raise AssertionError listing every schema violation of a RayJob manifest."""
    require_crds()
    errors = sorted(rayjob_validator().iter_errors(manifest), key=lambda e: list(e.path))
    if errors:
        lines = [f"{'/'.join(map(str, e.path)) or '<root>'}: {e.message}" for e in errors[:20]]
        raise AssertionError("RayJob violates the KubeRay CRD schema:\n" + "\n".join(lines))
