"""run_manifest.json: what ran, from which code, config and data, on what, and when."""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from tunix_rt.contract.file_names import RUN_MANIFEST_JSON
from tunix_rt.evidence.validation import validate
from tunix_rt.storage import redact_uri, scrub
from tunix_rt.storage.redact import scrub_tree

MANIFEST_SCHEMA_VERSION = "tunix-rt/run_manifest/v1"

VERSIONED_PACKAGES = ("tunix-rt", "jax", "jaxlib", "flax", "optax", "ray", "numpy")
"""Distributions whose versions every manifest records (None when not installed)."""
BACKEND_PACKAGES: dict[str, tuple[str, ...]] = {
    "tunix-sft": ("google-tunix", "qwix", "orbax-checkpoint"),
    "tunix-grpo": ("google-tunix", "qwix", "orbax-checkpoint"),
    "tunix-dpo": ("google-tunix", "qwix", "orbax-checkpoint"),
}
"""Distributions a backend adds to the manifest's versions."""


@dataclass(frozen=True)
class CommitInfo:
    sha: str
    dirty: bool | None
    source: str  # "git" | "env" | "unknown"

    @property
    def short(self) -> str:
        """7 hex digits, with '-dirty' when the tree had changes; 'unknown' when unknown."""
        if self.sha == "unknown":
            return "unknown"
        return self.sha[:7] + ("-dirty" if self.dirty else "")


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def commit_info(cwd: Path | None = None, environ: dict[str, str] | None = None) -> CommitInfo:
    """``git rev-parse HEAD`` of the working dir (dirty if tracked files changed), else
    ``$TUNIX_RT_COMMIT_SHA`` (images set it), else 'unknown'."""
    env = os.environ if environ is None else environ
    where = cwd or Path.cwd()
    head = _git(["rev-parse", "HEAD"], where)
    if head and re.fullmatch(r"[0-9a-f]{40,64}", head.strip()):
        status = _git(["status", "--porcelain", "--untracked-files=no"], where)
        dirty = None if status is None else bool(status.strip())
        return CommitInfo(head.strip(), dirty, "git")
    from_env = env.get("TUNIX_RT_COMMIT_SHA", "").strip().lower()
    if re.fullmatch(r"[0-9a-f]{7,64}", from_env):
        return CommitInfo(from_env, None, "env")
    return CommitInfo("unknown", None, "unknown")


def package_versions(backend: str | None = None) -> dict[str, str | None]:
    """Versions of tunix-rt and the training stack, via importlib.metadata, plus Python;
    with ``backend``, the libraries it trains with too (google-tunix, qwix)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in (*VERSIONED_PACKAGES, *BACKEND_PACKAGES.get(backend or "", ())):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def canonical_json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def config_sha256(config: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of a config: anyone can recompute it from the manifest."""
    return hashlib.sha256(canonical_json(config)).hexdigest()


def iso(moment: datetime) -> str:
    """UTC ISO 8601 with a Z, millisecond precision."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def build_run_manifest(
    *,
    run_name: str,
    namespace: str,
    commit: CommitInfo,
    model_id: str,
    dataset: dict[str, Any],
    config: dict[str, Any],
    config_path: str,
    config_source_sha256: str | None = None,
    overrides: dict[str, Any] | None = None,
    command: list[str],
    seed: int,
    start_time: datetime,
    end_time: datetime,
    wall_seconds: float,
    steps: int,
    devices: list[str],
    source: dict[str, Any] | None = None,
    storage_uri: str,
    storage_prefix: str,
    versions: dict[str, str | None] | None = None,
    environ: dict[str, str] | None = None,
    kind: str = "rehearsal",
    backend: str | None = None,
    model_source: dict[str, Any] | None = None,
    numerics: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The manifest as a dict, validated against run_manifest.schema.json.

    Nothing from the environment goes in except TUNIX_RT_IMAGE; the command line, the
    storage URI and every string of the config, overrides, dataset and source are
    scrubbed of credentials (defence in depth: a valid spec holds none).
    ``config_source_sha256``, ``overrides`` and ``source`` are a rehearsal's (a sweep has
    no config file, overrides or source trial). ``backend``
    (trainer.backend) and ``model_source`` (where the model came from: config name,
    checkpoint URI and digest, ``random_init``, library versions) are written when given;
    manifests written before trainer backends existed have neither, and stay valid.
    ``numerics`` (:func:`tunix_rt.contract.numerics.numerics_record`: the pinned XLA flags,
    the CPU, whether the metrics are promised bit-identical elsewhere) is written when given.
    """
    env = os.environ if environ is None else environ
    manifest: dict[str, Any] = {
        "schema_version": MANIFEST_SCHEMA_VERSION,
        "kind": kind,
        "run_name": run_name,
        "namespace": namespace,
        "commit_sha": commit.sha,
        "commit_dirty": commit.dirty,
        "commit_source": commit.source,
        "model_id": model_id,
        "dataset": scrub_tree(dataset, env),
        "config_path": config_path,
        "config_sha256": config_sha256(config),
        "config_source_sha256": config_source_sha256,
        "config": scrub_tree(config, env),
        "overrides": scrub_tree(overrides, env),
        "command": [scrub(arg, env) for arg in command] or ["unknown"],
        "seed": seed,
        "start_time": iso(start_time),
        "end_time": iso(end_time),
        "wall_seconds": round(max(wall_seconds, 0.0), 3),
        "steps": steps,
        "versions": versions if versions is not None else package_versions(backend),
        "devices": devices,
        "image": env.get("TUNIX_RT_IMAGE") or "local",
        "platform": f"{platform.system()}-{platform.machine()}",
        "storage": {"uri": redact_uri(storage_uri), "prefix": storage_prefix},
        "source": scrub_tree(source, env),
    }
    if backend is not None:
        manifest["backend"] = backend
        manifest["model_source"] = _model_source(model_source, env)
    if numerics is not None:
        manifest["numerics"] = json_safe(numerics)
    validate("run_manifest", manifest, label=RUN_MANIFEST_JSON)
    return manifest


def _model_source(source: dict[str, Any] | None, env: Mapping[str, str]) -> dict[str, Any] | None:
    """``model_source`` as written: JSON-safe, the checkpoint URI without credentials."""
    if source is None:
        return None
    out: dict[str, Any] = json_safe(source)
    if isinstance(out.get("checkpoint"), str):
        out["checkpoint"] = scrub(redact_uri(out["checkpoint"]), env)
    return out


def json_safe(value: Any) -> Any:
    """``value`` as plain JSON: unknown types as their text, NaN and infinity as null
    (JSON has neither)."""
    value = json.loads(json.dumps(value, default=str))
    return _finite(value)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
