"""JSON Schemas (draft 2020-12) of the evidence files, shipped as package data.

Every JSON evidence file is checked against its schema when written and when verified.
failure.schema.json is built from its model (:mod:`tunix_rt.evidence.schema_build`).
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator

SCHEMA_FILES = {
    "run_manifest": "run_manifest.schema.json",
    "eval_summary": "eval_summary.schema.json",
    "eval_row": "eval_row.schema.json",
    "failure": "failure.schema.json",
}
"""Schema name -> file under tunix_rt/evidence/schemas/."""


class EvidenceError(ValueError):
    """An evidence file is missing something, or does not match its schema."""


@functools.cache
def load_schema(name: str) -> dict[str, Any]:
    if name not in SCHEMA_FILES:
        raise KeyError(f"unknown evidence schema {name!r}; known: {sorted(SCHEMA_FILES)}")
    text = (resources.files("tunix_rt.evidence") / "schemas" / SCHEMA_FILES[name]).read_text()
    schema: dict[str, Any] = json.loads(text)
    Draft202012Validator.check_schema(schema)
    return schema


@functools.cache
def _validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(
        load_schema(name), format_checker=Draft202012Validator.FORMAT_CHECKER
    )


def schema_errors(name: str, document: Any) -> list[str]:
    """Every schema violation as ``<json path>: <message>``, sorted; empty when valid."""
    errors = []
    for error in _validator(name).iter_errors(document):
        errors.append(f"{error.json_path}: {error.message}")
    return sorted(errors)


def validate(name: str, document: Any, *, label: str | None = None) -> None:
    """Raise EvidenceError naming the file and every violation, unless valid."""
    errors = schema_errors(name, document)
    if errors:
        what = label or f"{name}.json"
        listed = "; ".join(errors[:20])
        more = f" (and {len(errors) - 20} more)" if len(errors) > 20 else ""
        raise EvidenceError(f"{what} does not match its schema: {listed}{more}")
