""" "did you mean `maxConcurrentTrials`?" for a misspelt field or searchSpace parameter.

The field errors come from the API models as ``(path, message)`` pairs; this adds the
nearest name the model (or the trainer's searchable parameters) accepts at that place,
found with :mod:`difflib`. The models are walked by the error's path, so a new field
is suggested without an edit here.
"""

from __future__ import annotations

import difflib
import re
import types
from collections.abc import Iterable, Sequence
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel

from tunix_rt.api.rehearsal import Rehearsal
from tunix_rt.api.sweep import Sweep
from tunix_rt.api.trainer import TrainerConfig, searchable_params

EXTRA = "Extra inputs are not permitted"
"""pydantic's message for a field the model does not have."""

ROOTS: dict[str, type[BaseModel]] = {
    "Sweep": Sweep,
    "Rehearsal": Rehearsal,
    "TrainerConfig": TrainerConfig,  # a trainer config file (validate, promote -o)
}

_SEARCH_KEY = re.compile(r"^spec\.searchSpace\.(?P<name>[^.\[]+) \(key\)$")


def closest(name: str, choices: Iterable[str]) -> str | None:
    """The choice ``name`` most likely meant (None: none is close)."""
    options = sorted(set(choices))
    lowered = {c.lower(): c for c in options}
    if name.lower() in lowered and lowered[name.lower()] != name:
        return lowered[name.lower()]  # only the case differs
    found = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    return found[0] if found else None


def _models(annotation: Any) -> list[tuple[type[BaseModel], bool]]:
    """The models an annotation holds, each with whether a mapping key comes first."""
    origin = get_origin(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [(annotation, False)]
    if origin is Annotated:
        return _models(get_args(annotation)[0])
    if origin in (Union, types.UnionType, list, tuple, set, Sequence):
        return [m for arg in get_args(annotation) for m in _models(arg)]
    if origin is dict:
        args = get_args(annotation)
        return [(m, True) for m, _ in _models(args[1])] if len(args) == 2 else []
    return []


def _names(model: type[BaseModel]) -> set[str]:
    return {key for name, f in model.model_fields.items() for key in (f.alias or name,)}


def _model_at(root: type[BaseModel], parts: list[str]) -> type[BaseModel] | None:
    """The model that holds the field at ``parts`` (the field itself left out)."""
    model, skip_key = root, False
    for part in parts:
        if skip_key:
            skip_key = False
            continue
        field = next(
            (f for n, f in model.model_fields.items() if part in (n, f.alias)),
            None,
        )
        inner = _models(field.annotation) if field is not None else []
        if not inner:
            return None
        model, skip_key = inner[0]
    return model if not skip_key else None


def _path_parts(path: str) -> list[str]:
    return [re.sub(r"\[\d+\]$", "", p) for p in path.split(".") if p]


def _declared(doc: Any) -> list[str]:
    """The names a manifest declares in ``spec.trainer.parameters``."""
    try:
        params = doc["spec"]["trainer"]["parameters"]
    except (KeyError, TypeError):
        return []
    return [str(k) for k in params] if isinstance(params, dict) else []


def hint(path: str, message: str, kind: str | None = "Sweep", doc: Any = None) -> str | None:
    """The nearest accepted name for the field an error is about; None when none is near."""
    search = _SEARCH_KEY.match(path)
    if search is not None:
        choices = [*searchable_params().values(), *_declared(doc)]
        return closest(search.group("name"), choices)
    if message != EXTRA:
        return None
    parts = _path_parts(path)
    if not parts:
        return None
    root = ROOTS.get(kind or "Sweep", Sweep)
    model = _model_at(root, parts[:-1])
    return closest(parts[-1], _names(model)) if model is not None else None


def with_hints(
    errors: Sequence[tuple[str, str]], kind: str | None = "Sweep", doc: Any = None
) -> list[tuple[str, str]]:
    """The errors, each unknown name followed by ``; did you mean `name`?``."""
    out = []
    for path, message in errors:
        near = hint(path, message, kind, doc)
        out.append((path, f"{message}; did you mean `{near}`?" if near else message))
    return out
