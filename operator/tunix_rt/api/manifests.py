"""Reading manifests from files: multi-document YAML, kinds, and errors that name the field.

Shared by ``tunix-rt validate``, ``tunix-rt sweep run`` and the Tune driver, so a bad
manifest reads the same everywhere: ``spec.searchSpace.learningRate.low: low (0.1) …``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from tunix_rt.api.common import API_VERSION
from tunix_rt.api.errors import ManifestError, validation_errors
from tunix_rt.api.rehearsal import Rehearsal
from tunix_rt.api.sweep import Sweep, SweepSpec
from tunix_rt.api.trainer import TrainerConfig, apply_overrides
from tunix_rt.reading import MANIFEST, ReadError, load_all, read_file
from tunix_rt.reading.limits import too_big

KINDS: dict[str, type[Sweep] | type[Rehearsal]] = {"Sweep": Sweep, "Rehearsal": Rehearsal}


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
    """Every YAML document in a file (empty documents skipped), read within
    :data:`~tunix_rt.reading.MANIFEST`'s limits."""
    source = str(path)
    try:
        raw = read_file(path, MANIFEST)
    except ReadError as exc:
        raise ManifestError.of(source, [(exc.field, exc.problem)]) from None
    return parse_documents(decode_text(raw, source), source)


def parse_documents(text: str, source: str = "<input>") -> list[Any]:
    """The documents of ``text`` as kubectl sends them (:mod:`tunix_rt.reading.kube_yaml`):
    ``1e-4`` a number, ``1:30:00`` a string, aliases and nesting within limits."""
    if len(text) > MANIFEST.max_bytes:
        raise ManifestError.of(source, [("", too_big(len(text), MANIFEST))])
    try:
        docs = load_all(text, source, MANIFEST)
    except ReadError as exc:
        raise ManifestError.of(source, [(exc.field, exc.problem)]) from None
    return [doc for doc in docs if doc is not None]


def read_document(raw: bytes, source: str) -> Any:
    """The one YAML/JSON document in a file's bytes, read as ``validate`` reads manifests
    (any Unicode encoding with a BOM, duplicate keys refused, the same limits); for the
    entrypoints and commands that take a single file (a Rehearsal manifest, a promoted
    config)."""
    if len(raw) > MANIFEST.max_bytes:
        raise ManifestError.of(source, [("", too_big(len(raw), MANIFEST))])
    docs = parse_documents(decode_text(raw, source), source)
    if len(docs) > 1:
        raise ManifestError.of(
            source, [("", f"holds {len(docs)} documents; expected one (no '---' between)")]
        )
    return docs[0] if docs else None


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


TRAINER_CONFIG = "TrainerConfig"
"""What ``validate`` calls a trainer config file (``promote -o``, ``python -m
tunix_rt.train --config``): a mapping of trainer fields, no apiVersion or kind."""


@cache
def trainer_field_names() -> frozenset[str]:
    """Every key a trainer config accepts, in either spelling."""
    return frozenset(
        key for name, f in TrainerConfig.model_fields.items() for key in (name, f.alias) if key
    )


def is_trainer_config(doc: Any) -> bool:
    """A mapping without apiVersion and kind whose keys are mostly trainer fields (one
    misspelt key still counts, so it is reported rather than the file skipped)."""
    if not isinstance(doc, dict) or not doc or "apiVersion" in doc or "kind" in doc:
        return False
    known = sum(1 for key in doc if key in trainer_field_names())
    return known > 0 and known * 2 >= len(doc)


def check_trainer_config(doc: dict[str, Any], index: int = 0) -> Checked:
    """A trainer config file's verdict, reached the one way ``python -m tunix_rt.train
    --config`` reads the file (:func:`~tunix_rt.api.trainer.apply_overrides`)."""
    try:
        apply_overrides(doc, {}, "")
        errors: list[tuple[str, str]] = []
    except ManifestError as exc:
        errors = exc.errors
    return Checked(index, TRAINER_CONFIG, str(doc.get("backend") or "builtin"), errors)


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
