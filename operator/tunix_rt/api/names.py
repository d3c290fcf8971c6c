"""Deterministic names: store keys and child resource names, defined once for every side."""

from __future__ import annotations

import hashlib
import re

LOCAL_NAMESPACE = "local"
"""Namespace used in store keys for runs without a cluster."""


def sweep_prefix(namespace: str, sweep: str) -> str:
    return f"{namespace}/{sweep}"


def trial_key(namespace: str, sweep: str, trial_id: str) -> str:
    """Where one trial's TrialResult lives, relative to the storage URI."""
    return f"{sweep_prefix(namespace, sweep)}/trials/{trial_id}.json"


def trials_prefix(namespace: str, sweep: str) -> str:
    return f"{sweep_prefix(namespace, sweep)}/trials/"


def summary_key(namespace: str, sweep: str) -> str:
    """Where the SweepResult (all trials, best) lives, relative to the storage URI."""
    return f"{sweep_prefix(namespace, sweep)}/summary.json"


EVIDENCE_FOLDER = "evidence"
"""Subfolder of a sweep's folder holding its evidence bundle."""


def sweep_evidence_prefix(namespace: str, sweep: str) -> str:
    """Evidence folder of a finished Sweep (manifest, summary, trials, report, zip)."""
    return f"{sweep_prefix(namespace, sweep)}/{EVIDENCE_FOLDER}"


def rehearsal_prefix(namespace: str, rehearsal: str) -> str:
    """Evidence bundle folder of a Rehearsal, relative to the storage URI."""
    return f"{namespace}/rehearsals/{rehearsal}"


def child_name(kind: str, name: str, max_len: int = 47) -> str:
    """Deterministic, DNS-safe child name (RayJob) for a parent, adopted after restarts.

    RayJob names feed RayCluster and Service names, which KubeRay caps; keep room.
    """
    base = re.sub(r"[^a-z0-9-]", "-", f"{kind.lower()}-{name.lower()}").strip("-")
    if len(base) <= max_len:
        return base
    digest = hashlib.sha256(base.encode()).hexdigest()[:8]
    return f"{base[: max_len - 9].rstrip('-')}-{digest}"
