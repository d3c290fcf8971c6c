"""Deterministic names of child resources (store keys: ``tunix_rt.contract.layout``)."""

from __future__ import annotations

import hashlib
import re

SOURCE_SWEEP_ANNOTATION = "tunixrt.io/source-sweep"
SOURCE_TRIAL_ANNOTATION = "tunixrt.io/source-trial"
"""Where a promoted Rehearsal manifest (``tunix-rt promote``) says its trainer came from:
the operator and the rehearsal run record them as the run's source."""


def child_name(kind: str, name: str, max_len: int = 47) -> str:
    """Deterministic, DNS-safe child name (RayJob) for a parent, adopted after restarts.

    RayJob names feed RayCluster and Service names, which KubeRay caps; keep room.
    """
    base = re.sub(r"[^a-z0-9-]", "-", f"{kind.lower()}-{name.lower()}").strip("-")
    if len(base) <= max_len:
        return base
    digest = hashlib.sha256(base.encode()).hexdigest()[:8]
    return f"{base[: max_len - 9].rstrip('-')}-{digest}"


LABEL_MAX = 63
"""Kubernetes label values are at most 63 characters."""


def label_value(name: str) -> str:
    """A parent's name as a label value (``tunixrt.io/sweep``): the name itself when it
    fits (at most 63 characters), else a deterministic truncated form with a hash, so that
    any valid name (up to 253 characters) labels its RayJob."""
    if len(name) <= LABEL_MAX:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: LABEL_MAX - 9].rstrip('-.')}-{digest}"
