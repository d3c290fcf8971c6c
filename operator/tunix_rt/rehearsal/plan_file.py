"""A rehearsal plan read from a file: a Rehearsal manifest, or a promoted trainer config
(``tunix-rt promote``) whose comments name the sweep and trial it came from."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from tunix_rt.api.common import DEFAULT_STORAGE
from tunix_rt.api.errors import ManifestError
from tunix_rt.api.manifests import decode_text, read_document
from tunix_rt.api.rehearsal import Rehearsal, RehearsalSpec, SourceTrial
from tunix_rt.api.trainer import TrainerConfig
from tunix_rt.contract.layout import LOCAL_NAMESPACE
from tunix_rt.reading import MANIFEST, ReadError, read_file
from tunix_rt.rehearsal.errors import RehearsalError
from tunix_rt.rehearsal.plan import RehearsalPlan, plan_from_spec

_COMMENT_SOURCE = re.compile(
    r"(?:tunixrt\.io/)?source[-_ ](sweep|trial)\s*[:=]\s*([A-Za-z0-9._-]+)", re.IGNORECASE
)
_COMMENT_PROSE = re.compile(
    r"\bsweep\s+['\"]?([a-z0-9][-a-z0-9./]*)['\"]?.{0,40}?\btrial\s+['\"]?([A-Za-z0-9._-]+)",
    re.IGNORECASE,
)


def source_from_comments(text: str) -> SourceTrial:
    """The sweep and trial named in the leading '#' comments of a promoted config file."""
    comments = "\n".join(
        line.lstrip()[1:] for line in text.splitlines() if line.lstrip().startswith("#")
    )
    found = {kind.lower(): value for kind, value in _COMMENT_SOURCE.findall(comments)}
    if "sweep" in found or "trial" in found:
        return SourceTrial(found.get("sweep"), found.get("trial"))
    prose = _COMMENT_PROSE.search(comments)
    if prose:
        # "sweep local/sweep-smoke" (namespace/name, as tunix-rt promote writes) -> the name
        sweep = prose.group(1).rstrip("./").rsplit("/", 1)[-1]
        return SourceTrial(sweep or None, prose.group(2).rstrip("."))
    return SourceTrial()


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return slug[:63].strip("-") or "rehearsal"


def plan_from_file(
    path: str | Path,
    *,
    storage: str | None = None,
    namespace: str | None = None,
    name: str | None = None,
    max_steps: int | None = None,
    source: SourceTrial = SourceTrial(),
    timeout_seconds: float | None = None,
) -> RehearsalPlan:
    """A plan from a Rehearsal manifest (YAML/JSON) or a promoted TrainerConfig file;
    ``source`` over what the file names, ``timeout_seconds`` over the manifest's
    ``spec.timeoutSeconds``."""
    file = Path(path)
    try:
        raw = read_file(file, MANIFEST)
    except ReadError as exc:
        raise RehearsalError(str(exc)) from None
    try:
        doc = read_document(raw, str(file))
    except ManifestError as exc:
        raise RehearsalError(f"{file} is not YAML/JSON: {exc.reason}") from None
    if not isinstance(doc, dict):
        raise RehearsalError(f"{file}: expected a Rehearsal manifest or a trainer config")
    if doc.get("kind") == "Rehearsal" or "spec" in doc:
        spec, default_name, named = _manifest_parts(file, doc)
    else:
        spec, default_name = _config_spec(file, doc, storage), _slug(file.stem)
        named = source_from_comments(decode_text(raw, str(file)))
    return plan_from_spec(
        spec,
        name=name or default_name,
        namespace=namespace or LOCAL_NAMESPACE,
        storage=storage,
        config_path=str(path),
        config_source_sha256=hashlib.sha256(raw).hexdigest(),
        source=source.or_else(named),
        max_steps=max_steps,
        timeout_seconds=timeout_seconds,
    )


def _manifest_parts(source: Path, doc: dict[str, Any]) -> tuple[RehearsalSpec, str, SourceTrial]:
    """(spec, name, source trial) of a Rehearsal manifest."""
    try:
        manifest = Rehearsal.model_validate(doc)
    except ValidationError as exc:
        raise RehearsalError(f"{source}: invalid Rehearsal: {_short(exc)}") from None
    metadata = manifest.metadata
    return manifest.spec, metadata.name, SourceTrial.annotated(metadata.annotations)


def _config_spec(source: Path, doc: dict[str, Any], storage: str | None) -> RehearsalSpec:
    """The spec of a promoted trainer config file (``tunix-rt promote``)."""
    try:
        config = TrainerConfig.model_validate(doc)
    except ValidationError as exc:
        raise RehearsalError(f"{source}: invalid trainer config: {_short(exc)}") from None
    return RehearsalSpec(trainer=config, storage=storage or DEFAULT_STORAGE)


def _short(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()[:10]
    )
