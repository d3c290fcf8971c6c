"""The evidence JSON Schemas built from a pydantic model (failure.json), as the CRDs are
built from theirs, so that the model and the schema shipped to users cannot drift.

``python -m tunix_rt.evidence.schema_build`` rewrites the shipped copies under
``tunix_rt/evidence/schemas/``; ``tests/evidence/test_evidence_schemas.py`` fails while
one is stale. run_manifest, eval_summary and eval_row stay hand-written there (their
documents have no model of their own).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from tunix_rt.evidence.failure import RehearsalFailure
from tunix_rt.evidence.validation import SCHEMA_FILES

SCHEMAS_DIR = Path(__file__).parent / "schemas"
KEY_ORDER = ("$schema", "$id", "title", "description", "type", "required")
"""Document keys first, in this order (then the rest, properties last), as published."""


class _PublishedStyle(GenerateJsonSchema):
    """pydantic's JSON Schema in the shipped files' style: no titles and no defaults,
    ``{"const": …}`` for a one-value Literal, ``"type": [t, "null"]`` for a nullable
    simple type."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        return self.generate_inner(schema["schema"])

    def literal_schema(self, schema: core_schema.LiteralSchema) -> JsonSchemaValue:
        generated = super().literal_schema(schema)
        if "const" in generated:
            generated.pop("type", None)
        return generated

    def nullable_schema(self, schema: core_schema.NullableSchema) -> JsonSchemaValue:
        inner = self.generate_inner(schema["schema"])
        if isinstance(inner.get("type"), str):
            return {**inner, "type": [inner["type"], "null"]}
        return super().nullable_schema(schema)


def model_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``model``'s JSON Schema as written (serialization mode), in the published style;
    the model's ``json_schema_extra`` carries what a type cannot say ($id, patterns)."""
    schema = model.model_json_schema(mode="serialization", schema_generator=_PublishedStyle)
    ordered = {key: schema.pop(key) for key in KEY_ORDER if key in schema}
    properties = schema.pop("properties")
    return {**ordered, **schema, "properties": properties}


BUILT: dict[str, Callable[[], dict[str, Any]]] = {
    "failure": lambda: model_schema(RehearsalFailure),
}
"""Schema name (as in :data:`tunix_rt.evidence.validation.SCHEMA_FILES`) -> its builder."""


def render(schema: dict[str, Any]) -> str:
    """A schema as the text of its shipped file (deterministic)."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    """Rewrite the shipped copies of the built schemas (``--check``: only say which are
    stale, exit 1 if any)."""
    stale = []
    for name, build in BUILT.items():
        path = SCHEMAS_DIR / SCHEMA_FILES[name]
        text = render(build())
        if path.read_text(encoding="utf-8") != text:
            stale.append(path)
            if "--check" not in argv:
                path.write_text(text, encoding="utf-8")
    for path in stale:
        print(f"{'stale' if '--check' in argv else 'rewrote'}: {path}")
    return 1 if stale and "--check" in argv else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
