"""Shared pydantic base for everything that crosses a boundary (CRD spec, files, store)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel
from pydantic_core import InitErrorDetails, PydanticCustomError

CEL_KEY = "x-kubernetes-validations"
"""JSON-schema key under which a model carries its CEL rules (copied into the CRDs)."""


class ApiModel(BaseModel):
    """camelCase on the wire (Kubernetes convention), snake_case in Python; both accepted.

    Unknown fields are rejected so that a typo in a manifest is an error naming the
    field, not a silently ignored setting.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        validate_default=True,
    )

    def to_wire(self) -> dict[str, object]:
        """The JSON-ready camelCase form written to manifests, status and files."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def field_error(field: str, message: str, value: Any = None) -> ValidationError:
    """A validation error located at ``field`` (wire name, dotted for nesting).

    Raised from a model validator, pydantic prefixes the model's own location, so the
    user sees e.g. ``spec.searchSpace.learningRate.high: high (0.001) must be greater …``
    instead of an error on the whole object.
    """
    return ValidationError.from_exception_data(
        "ValueError",
        [
            InitErrorDetails(
                type=PydanticCustomError("value_error", message),
                loc=tuple(field.split(".")),
                input=value,
            )
        ],
    )


def cel(rule: str, message: str, field_path: str | None = None) -> dict[str, str]:
    """One CRD ``x-kubernetes-validations`` entry; keep it next to the pydantic check it mirrors."""
    out = {"rule": rule, "message": message}
    if field_path:
        out["fieldPath"] = field_path
    return out


def cel_rules(*rules: dict[str, str]) -> dict[str, Any]:
    """``json_schema_extra`` for a model whose CRD schema carries these CEL rules."""
    return {CEL_KEY: list(rules)}
