"""Deterministic names of child resources (store keys: ``tunix_rt.contract.layout``)."""

from __future__ import annotations

import hashlib
import re


def child_name(kind: str, name: str, max_len: int = 47) -> str:
    """Deterministic, DNS-safe child name (RayJob) for a parent, adopted after restarts.

    RayJob names feed RayCluster and Service names, which KubeRay caps; keep room.
    """
    base = re.sub(r"[^a-z0-9-]", "-", f"{kind.lower()}-{name.lower()}").strip("-")
    if len(base) <= max_len:
        return base
    digest = hashlib.sha256(base.encode()).hexdigest()[:8]
    return f"{base[: max_len - 9].rstrip('-')}-{digest}"
