"""The one override language of a trainer config: fields in either spelling, nested sections
merged key by key; ``--set a.b=value`` flags are the same overrides spelled on a command line."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, get_args

from pydantic import BaseModel

from tunix_rt.api.errors import ManifestError
from tunix_rt.reading import MANIFEST, ReadError, load_all


def merge_overrides(
    model: type[BaseModel], base: Mapping[str, Any], overrides: Mapping[str, Any], path: str
) -> dict[str, Any]:
    """``base`` with ``overrides`` merged in; nested models merge key by key.

    A key in either spelling replaces the base's value in either spelling (not both kept);
    an unknown key is a :class:`ManifestError` naming ``<path>.<key>`` (``<key>`` when
    ``path`` is empty). ``base`` is only read: the result is a new mapping.
    """
    out = dict(base)
    fields = {
        key: (info.alias or name, name, info.annotation)
        for name, info in model.model_fields.items()
        for key in (name, info.alias)
        if key
    }
    for key, value in overrides.items():
        where = f"{path}.{key}" if path else key
        if key not in fields:
            known = sorted({wire for wire, _, _ in fields.values()})
            raise ManifestError(where, f"unknown trainer field; use one of {known}")
        wire, name, annotation = fields[key]
        found = [out.pop(spelling) for spelling in dict.fromkeys((wire, name)) if spelling in out]
        previous = found[0] if found and isinstance(found[0], Mapping) else {}
        nested = next(
            (
                c
                for c in (annotation, *get_args(annotation))
                if isinstance(c, type) and issubclass(c, BaseModel)
            ),
            None,
        )
        if nested is not None and isinstance(value, Mapping):
            out[wire] = merge_overrides(nested, previous, value, where)
        elif wire == "userParams" and isinstance(value, Mapping):
            out[wire] = {**previous, **value}  # one value at a time
        else:
            out[wire] = value
    return out


def assignments_to_overrides(assignments: Sequence[str]) -> dict[str, Any]:
    """``KEY=VALUE`` flags (``--set``) as one overrides mapping: a dotted key names a nested
    field (``model.width=64``), the value is read as a YAML scalar (1e-3, true, 64), and a
    later flag wins over an earlier one in either spelling."""
    out: dict[str, Any] = {}
    for assignment in assignments:
        key, sep, raw = assignment.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set {assignment!r}: expected KEY=VALUE, e.g. learningRate=1e-3")
        value = _value(assignment, raw)
        *sections, leaf = key.strip().split(".")
        node = out
        for part in sections:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ValueError(f"--set {assignment!r}: {part!r} is not a section")
            node = child
        node.pop(leaf, None)  # last in order, so that it is merged last
        node[leaf] = value
    return out


def _value(assignment: str, raw: str) -> Any:
    """A ``--set`` value read as kubectl reads a YAML value (``1e-3`` a number, ``yes``
    true, ``{a: 1}`` a mapping), within the manifest limits."""
    try:
        docs = load_all(raw, "", MANIFEST)
    except ReadError as exc:
        raise ValueError(f"--set {assignment[:80]!r}: {exc.problem}") from None
    if len(docs) > 1:
        raise ValueError(f"--set {assignment[:80]!r}: one value, not several documents")
    return docs[0] if docs else None
