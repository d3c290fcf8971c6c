"""Shared pydantic base for everything that crosses a boundary (CRD spec, files, store)."""

from __future__ import annotations

import re
import types
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel
from pydantic_core import InitErrorDetails, PydanticCustomError, PydanticUndefined

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

    @model_validator(mode="before")
    @classmethod
    def _prune_nulls(cls, data: Any) -> Any:
        """``field: null`` for a field that cannot be null but has a default is dropped, so
        the default applies: what the API server does (``maxTrials: null`` is stored as
        the default; a null without a default it refuses, and so does the model)."""
        if isinstance(data, Mapping) and any(v is None for v in data.values()):
            drop = defaulted_keys(cls)
            return {k: v for k, v in data.items() if v is not None or k not in drop}
        return data

    @model_validator(mode="before")
    @classmethod
    def _strict_scalars(cls, data: Any) -> Any:
        """Numbers, booleans and strings as the CRD types them: ``maxTrials: '5'`` or
        ``learningRate: '0.01'`` are refused (the API server refuses them too), not
        converted; JSON integers for number fields stay fine."""
        if isinstance(data, Mapping):
            kinds = scalar_kinds(cls)
            problems = [
                (kinds[key][0], message)
                for key, value in data.items()
                if isinstance(key, str) and key in kinds
                for message in [scalar_problem(kinds[key][1], value)]
                if message
            ]
            if problems:
                raise field_errors(problems, data, kind="scalar_type")
        return data

    def to_wire(self) -> dict[str, object]:
        """The JSON-ready camelCase form written to manifests, status and files."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def unset(description: str, **bounds: Any) -> Any:
    """An optional field that stays None unless set (the backend's default then applies),
    with its bounds: a model's many such fields read as one table."""
    return Field(None, description=description, **bounds)


@cache
def defaulted_keys(model: type[BaseModel]) -> frozenset[str]:
    """Input keys of the fields that cannot be null (not ``X | None``) and have a default
    (the CRD's ``default``): a null there means the default, as on the API server."""
    out: set[str] = set()
    for name, info in model.model_fields.items():
        annotation = info.annotation
        options = get_args(annotation) if get_origin(annotation) in (Union, types.UnionType) else ()
        nullable = annotation is Any or type(None) in options or annotation is type(None)
        if not nullable and info.default is not PydanticUndefined and info.default is not None:
            out.update(k for k in (name, info.alias) if k)
    return frozenset(out)


_SCALARS: dict[type, str] = {bool: "boolean", int: "integer", float: "number", str: "string"}


@cache
def scalar_kinds(model: type[BaseModel]) -> dict[str, tuple[str, str]]:
    """Input key (field name and wire alias) -> (wire name, scalar kind) of the model's
    plain ``bool`` / ``int`` / ``float`` / ``str`` fields (``X | None`` included)."""
    out: dict[str, tuple[str, str]] = {}
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if get_origin(annotation) in (Union, types.UnionType):
            options = [a for a in get_args(annotation) if a is not type(None)]
            annotation = options[0] if len(options) == 1 else None
        kind = _SCALARS.get(annotation) if isinstance(annotation, type) else None
        if kind:
            wire = info.alias or name
            out[name] = out[wire] = (wire, kind)
    return out


def scalar_problem(kind: str, value: Any) -> str | None:
    """Why ``value`` is not of the CRD scalar ``kind`` (None: it is, or pydantic will say)."""
    if value is None:
        return None
    if kind in ("integer", "number"):
        article = "an" if kind == "integer" else "a"
        if isinstance(value, str):
            return f"expected {article} {kind}, got the string {value!r}; write it without quotes"
        if isinstance(value, bool):
            return f"expected {article} {kind}, got {str(value).lower()}"
    elif kind == "boolean" and not isinstance(value, bool):
        if isinstance(value, str):
            return f"expected true or false, got the string {value!r}; write it without quotes"
        return f"expected true or false, got {value!r}"
    elif kind == "string" and isinstance(value, bool | int | float):
        shown = str(value).lower() if isinstance(value, bool) else str(value)
        return f"expected a string, got {shown}; quote it: '{shown}'"
    return None


_INDEX = re.compile(r"^(.*?)\[(\d+)\]$")


def _loc(field: str) -> tuple[int | str, ...]:
    """``pools[0].cpu`` or ``values.2`` -> ``("pools", 0, "cpu")`` / ``("values", 2)``."""
    out: list[int | str] = []
    for part in field.split(".") if field else []:
        indexes: list[int] = []
        while (match := _INDEX.match(part)) is not None:
            part, index = match.group(1), int(match.group(2))
            indexes.insert(0, index)
        if part:
            out.append(int(part) if part.isdigit() else part)
        out.extend(indexes)
    return tuple(out)


def field_errors(
    errors: Sequence[tuple[str, str]], value: Any = None, kind: str = "value_error"
) -> ValidationError:
    """One validation error per ``(field, message)``, each located at its wire path
    (``pools[0].cpu``, relative to the model that raises it). ``kind`` is the pydantic
    error type (``unschedulable`` marks placement errors)."""
    return ValidationError.from_exception_data(
        "ValueError",
        [
            InitErrorDetails(type=PydanticCustomError(kind, message), loc=_loc(field), input=value)
            for field, message in errors
        ],
    )


def refuse(
    problems: Sequence[tuple[str, str]], value: Any = None, kind: str = "value_error"
) -> None:
    """Raises :func:`field_errors` of what a checker found, when it found anything: how a
    model's validators refuse a spec."""
    if problems:
        raise field_errors(problems, value, kind)


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
                loc=_loc(field),
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


def cel_list(values: Iterable[object]) -> str:
    """A CEL list literal of strings: ``['a', 'b']``."""
    return "[" + ", ".join(f"'{v}'" for v in values) + "]"


def cel_rules(*rules: dict[str, str]) -> dict[str, Any]:
    """``json_schema_extra`` for a model whose CRD schema carries these CEL rules."""
    return {CEL_KEY: list(rules)}


EXACTLY_ONE_OF = "x-tunix-rt-exactly-one-of"
"""Schema note for the CRD generator: exactly one of these fields is set (``oneOf`` of
``required``). For a field CEL cannot see: the API server drops a list of untyped values
(such as a search space's ``values``) from a CEL rule's view of the object."""
