"""The one error for a manifest or spec that cannot run, whoever finds out (the file
reader, the CLI, the RayJob builder, the driver decoding its ``--spec-b64``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from tunix_rt.reading.limits import clip_message


class ManifestError(ValueError):
    """A manifest or spec that cannot run; each problem names its field (wire form).

    ``ManifestError("spec.cluster.pools[0].cpu", "…")`` for one field (the RayJob builder);
    ``ManifestError.of(source, [(field, message), …])`` for a file or flag with several.
    ``errors`` always holds the ``(field, message)`` pairs; ``field`` / ``reason`` the first.
    """

    def __init__(
        self,
        field: str,
        message: str,
        *,
        source: str | None = None,
        errors: Sequence[tuple[str, str]] | None = None,
    ) -> None:
        self.source = source
        given = list(errors) if errors else [(field, message)]
        self.errors: list[tuple[str, str]] = [(clip_message(p), clip_message(m)) for p, m in given]
        self.field, self.reason = self.errors[0]
        if source is not None:
            lines = "\n".join(f"  {p}: {m}" if p else f"  {m}" for p, m in self.errors)
            text = f"{source}: invalid\n{lines}"
        else:
            text = "; ".join(f"{p}: {m}" if p else m for p, m in self.errors)
        super().__init__(text)

    @classmethod
    def of(cls, source: str, errors: Sequence[tuple[str, str]]) -> ManifestError:
        """Every problem found in one file (or flag) ``source``."""
        field, message = errors[0] if errors else ("", "invalid")
        return cls(field, message, source=source, errors=errors or [(field, message)])


def error_path(loc: tuple[int | str, ...], prefix: str = "") -> str:
    """A pydantic error location as the wire field path: ``spec.pools[0].name``."""
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part == "[key]":
            out += " (key)"
        else:
            out += f".{part}" if out else str(part)
    return out


def shown(value: Any) -> str:
    """What the user wrote, named by its YAML kind: ``null``, ``the string 'x'``, ``a list``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return f"the string {value[:60]!r}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


_SHAPES = {
    "model_type": "a mapping of fields (key: value)",
    "model_attributes_type": "a mapping of fields (key: value)",
    "dict_type": "a mapping (key: value)",
    "list_type": "a list",
}


def _message(err: Any) -> str:
    """A pydantic error's message, without pydantic's noise or internal class names."""
    expected = _SHAPES.get(err["type"])
    if expected is not None:
        got = shown(err.get("input"))
        return f"expected {expected}, got {got}"
    text = str(err["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    return clip_message(text)


def validation_errors(exc: ValidationError, prefix: str = "") -> list[tuple[str, str]]:
    """``(field path, message)`` for each pydantic error; messages without pydantic noise."""
    return error_pairs(exc.errors(include_url=False), prefix)


def error_pairs(errors: Sequence[Any], prefix: str = "") -> list[tuple[str, str]]:
    """``(field path, message)`` of pydantic error dicts (``ValidationError.errors()``)."""
    return [(error_path(tuple(err["loc"]), prefix), _message(err)) for err in errors]


def describe(exc: ValidationError, prefix: str = "spec") -> str:
    """``spec.searchSpace.learningRate.low: …`` for each error, joined by ``; ``."""
    return describe_pairs(validation_errors(exc, prefix)) or f"{prefix}: invalid"


def describe_pairs(errors: Sequence[tuple[str, str]]) -> str:
    """``field: message`` for each ``(field, message)``, joined by ``; ``."""
    return "; ".join(f"{p}: {m}" if p else m for p, m in errors)
