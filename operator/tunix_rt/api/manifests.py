"""Reading manifests from files: multi-document YAML, kinds, and errors that name the field.

Shared by ``tunix-rt validate``, ``tunix-rt sweep run`` and the Tune driver, so a bad
manifest reads the same everywhere: ``spec.searchSpace.learningRate.low: low (0.1) …``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from tunix_rt.api.common import API_VERSION
from tunix_rt.api.errors import ManifestError, validation_errors
from tunix_rt.api.rehearsal import Rehearsal
from tunix_rt.api.sweep import Sweep, SweepSpec

KINDS: dict[str, type[Sweep] | type[Rehearsal]] = {"Sweep": Sweep, "Rehearsal": Rehearsal}


class StrictLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping: YAML says the last
    wins, which silently drops what the user wrote first."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: the base loader says so
                continue
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {key!r} (first on line {first}); keep one",
                    key_node.start_mark,
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def decode_text(raw: bytes, source: str) -> str:
    """A manifest's bytes as text: UTF-8 (a BOM allowed) or UTF-16/32 with a BOM; anything
    else is refused with the encoding named, never a traceback."""
    for bom, codec in (
        (b"\xef\xbb\xbf", "utf-8-sig"),
        (b"\xff\xfe\x00\x00", "utf-32"),
        (b"\x00\x00\xfe\xff", "utf-32"),
        (b"\xff\xfe", "utf-16"),
        (b"\xfe\xff", "utf-16"),
    ):
        if raw.startswith(bom):
            try:
                return raw.decode(codec)
            except UnicodeDecodeError:
                break
    if b"\x00" in raw:
        raise ManifestError.of(
            source,
            [
                (
                    "",
                    "holds NUL bytes: UTF-16 or UTF-32 without a byte-order mark, or not text; "
                    "save the file as UTF-8",
                )
            ],
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ManifestError.of(
            source,
            [
                (
                    "",
                    f"not UTF-8 text (byte {exc.start}: {raw[exc.start : exc.start + 1]!r}); "
                    "save the file as UTF-8",
                )
            ],
        ) from None


def load_documents(path: str | Path) -> list[Any]:
    """Every YAML document in a file (empty documents skipped)."""
    source = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ManifestError.of(source, [("", f"cannot read: {exc.strerror or exc}")]) from exc
    return parse_documents(decode_text(raw, source), source)


def parse_documents(text: str, source: str = "<input>") -> list[Any]:
    try:
        docs = list(yaml.load_all(text, Loader=StrictLoader))  # a SafeLoader
    except yaml.YAMLError as exc:
        raise _not_yaml(exc, source) from exc
    return [doc for doc in docs if doc is not None]


def read_document(raw: bytes, source: str) -> Any:
    """The one YAML/JSON document in a file's bytes, read as ``validate`` reads manifests
    (any Unicode encoding with a BOM, duplicate keys refused); for the entrypoints and
    commands that take a single file (a Rehearsal manifest, a promoted config)."""
    text = decode_text(raw, source)
    try:
        return yaml.load(text, Loader=StrictLoader)  # a SafeLoader
    except yaml.YAMLError as exc:
        raise _not_yaml(exc, source) from exc


def _not_yaml(exc: yaml.YAMLError, source: str) -> ManifestError:
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}: " if mark is not None else ""
    problem = getattr(exc, "problem", None) or str(exc)
    return ManifestError.of(source, [("", f"not valid YAML: {where}{problem}")])


@dataclass
class Checked:
    """One document's verdict (``tunix-rt validate``)."""

    index: int
    kind: str | None
    name: str | None
    errors: list[tuple[str, str]]
    skipped: bool = False


def check_document(doc: Any, index: int = 0) -> Checked:
    """Validate one document by its kind; unknown kinds are skipped, not errors."""
    if not isinstance(doc, dict):
        return Checked(index, None, None, [("", "a manifest must be a mapping")])
    kind = doc.get("kind")
    metadata = doc.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    model = KINDS.get(kind) if isinstance(kind, str) else None
    if model is None:
        return Checked(index, str(kind) if kind else None, name, [], skipped=True)
    errors: list[tuple[str, str]] = []
    if doc.get("apiVersion") != API_VERSION:  # kubectl refuses it; say so here first
        found = doc.get("apiVersion")
        problem = "is missing" if found is None else f"is {found!r}"
        errors.append(("apiVersion", f"{problem}; a {kind} needs {API_VERSION}"))
    try:
        model.model_validate(doc)
    except ValidationError as exc:
        errors += validation_errors(exc)
    return Checked(index, kind, name, errors)


@dataclass
class SweepDocument:
    """A sweep to run: its spec, and the name/namespace when the file was a full manifest."""

    spec: SweepSpec
    name: str | None = None
    namespace: str | None = None


def parse_sweep(doc: Any, source: str = "<input>") -> SweepDocument:
    """A full Sweep manifest or a bare spec (what ``--spec`` and ``sweep run`` accept)."""
    if not isinstance(doc, dict):
        raise ManifestError.of(source, [("", "a sweep must be a mapping")])
    if "kind" in doc or "apiVersion" in doc:
        if doc.get("kind") != "Sweep":
            raise ManifestError.of(source, [("kind", f"expected Sweep, got {doc.get('kind')!r}")])
        try:
            sweep = Sweep.model_validate(doc)
        except ValidationError as exc:
            raise ManifestError.of(source, validation_errors(exc)) from exc
        return SweepDocument(sweep.spec, sweep.metadata.name, sweep.metadata.namespace)
    try:
        spec = SweepSpec.model_validate(doc)
    except ValidationError as exc:
        raise ManifestError.of(source, validation_errors(exc, "spec")) from exc
    return SweepDocument(spec)


def load_sweep(path: str | Path) -> SweepDocument:
    """The (first) Sweep in a file; other kinds in the same file are ignored."""
    docs = load_documents(path)
    sweeps = [d for d in docs if not isinstance(d, dict) or d.get("kind", "Sweep") == "Sweep"]
    if not sweeps:
        raise ManifestError.of(str(path), [("kind", "no Sweep in this file")])
    return parse_sweep(sweeps[0], str(path))
