"""The spec codec: how a validated spec travels to the RayJob's entrypoint and back.

The operator encodes the resolved spec (its wire JSON, compact and key-sorted, base64)
into ``--spec-b64``; the driver decodes it and validates it once, with the same models.
The same compact JSON is what the RayJob's ``tunixrt.io/spec`` annotation records.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from tunix_rt.api.base import ApiModel
from tunix_rt.api.errors import ManifestError
from tunix_rt.api.manifests import SweepDocument, parse_sweep
from tunix_rt.reading import RECORD, ReadError, load_json

SPEC_FLAG = "--spec-b64"


def compact_json(value: Any) -> str:
    """Compact, key-sorted JSON: stable bytes for equal values (annotations, the spec)."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def spec_json(spec: ApiModel) -> str:
    """The spec's wire JSON, compact and key-sorted: stable bytes for equal specs."""
    return compact_json(spec.to_wire())


def encode_spec(spec: ApiModel) -> str:
    """``--spec-b64``: base64 of :func:`spec_json`."""
    return base64.b64encode(spec_json(spec).encode()).decode()


def decode_document(value: str, flag: str = SPEC_FLAG) -> Any:
    """The JSON document inside ``--spec-b64`` (not yet validated)."""
    try:
        raw = base64.b64decode(value.encode(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ManifestError.of(flag, [("", f"not base64 of JSON: {exc}")]) from exc
    try:
        return load_json(raw, flag, RECORD)
    except ReadError as exc:
        raise ManifestError.of(flag, [("", f"not base64 of JSON: {exc.problem}")]) from None


def decode_sweep(value: str) -> SweepDocument:
    """A Sweep spec (bare, or a full manifest) from ``--spec-b64``, validated."""
    return parse_sweep(decode_document(value), SPEC_FLAG)
