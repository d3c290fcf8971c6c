"""Shared pydantic base for everything that crosses a boundary (CRD spec, files, store)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


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
