"""What a RayJob of ours carries to be found again: kind, labels, annotations, its owner.

The operator watches RayJobs by :data:`MANAGED_BY_LABEL`, checks the parent's label before
deleting one, follows the spec recorded in :data:`SPEC_ANNOTATION` (:func:`spec_annotation`)
and adopts a RayJob only when its ownerReference (:class:`Owner`) names the parent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tunix_rt.reading import RECORD, ReadError, load_json

RAY_API_VERSION = "ray.io/v1"
RAYJOB_KIND = "RayJob"

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "tunix-rt"
NAME_LABEL = "app.kubernetes.io/name"
COMPONENT_LABEL = "app.kubernetes.io/component"
SWEEP_LABEL = "tunixrt.io/sweep"
REHEARSAL_LABEL = "tunixrt.io/rehearsal"
SPEC_ANNOTATION = "tunixrt.io/spec"
"""The resolved spec the RayJob runs (wire JSON): what the operator follows, whatever the
parent's spec says later."""
SOURCE_ANNOTATION = "tunixrt.io/source"
"""Rehearsals: ``{"sweep": ..., "trial": ..., "params": ...}`` of a fromSweep run."""


@dataclass(frozen=True)
class Owner:
    """The parent the RayJob belongs to (ownerReference with controller=true)."""

    api_version: str
    kind: str
    name: str
    uid: str

    def reference(self) -> dict[str, Any]:
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


def spec_annotation(rayjob: Mapping[str, Any]) -> dict[str, Any] | None:
    """The resolved spec recorded on a RayJob by this builder, if readable."""
    raw = (rayjob.get("metadata") or {}).get("annotations", {}).get(SPEC_ANNOTATION)
    if not raw:
        return None
    try:
        value = load_json(str(raw), SPEC_ANNOTATION, RECORD)
    except ReadError:
        return None
    return value if isinstance(value, dict) else None
