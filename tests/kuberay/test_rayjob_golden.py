"""The RayJobs built for the example manifests, byte for byte: a refactor of the builder,
the spec codec or the operator's defaults that changes what reaches the cluster fails here.

After an intended change, regenerate with ``TUNIX_RT_UPDATE_GOLDEN=1 pytest tests/kuberay``
and review the diff of ``tests/kuberay/golden/``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.rayjob_schema import validate_rayjob
from tunix_rt.api.rehearsal import RehearsalSpec, SourceTrial
from tunix_rt.api.sweep import SweepSpec
from tunix_rt.controller.config import OperatorConfig
from tunix_rt.kuberay import Owner, build_rehearsal_rayjob, build_sweep_rayjob

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).with_name("golden")
UPDATE = os.environ.get("TUNIX_RT_UPDATE_GOLDEN") == "1"

SWEEPS = [
    "sweep-smoke",
    "sweep-gpu",
    "sweep-tpu-v6e",
    "sweep-tpu-v6e-multihost",
    "sweep-gpu-multiworker",
    "gitops/sweep",
]
CONFIGS = {
    "default": OperatorConfig(),
    "chart": OperatorConfig(
        image_cpu="registry.example/trainer:1.0-cpu",
        image_gpu="registry.example/trainer:1.0-cuda",
        image_tpu="registry.example/trainer:1.0-tpu",
        image_pull_policy="IfNotPresent",
        storage_secret="s3-creds",
        default_storage="s3://chart-bucket/tunix-rt",
    ),
}


def _manifest(path: str) -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "examples" / f"{path}.yaml").read_text()))


def _text(manifest: dict[str, Any]) -> str:
    """Key order as built (not sorted): the bytes a client would send."""
    return json.dumps(manifest, indent=2) + "\n"


def _placement(doc: dict[str, Any], uid: str, operator: OperatorConfig) -> dict[str, Any]:
    """Where the RayJob of the manifest ``doc`` goes, whose it is, how it is built."""
    name = doc["metadata"]["name"]
    return {
        "name": name,
        "namespace": "ml-sweeps",
        "owner": Owner("tunixrt.io/v1alpha1", doc["kind"], name, uid),
        "options": operator.build_options(),
    }


def _check(name: str, manifest: dict[str, Any]) -> None:
    validate_rayjob(manifest)
    path = GOLDEN / f"{name}.json"
    text = _text(manifest)
    if UPDATE:
        path.write_text(text)
    assert path.exists(), f"{path} missing: run with TUNIX_RT_UPDATE_GOLDEN=1 once"
    assert text == path.read_text(), f"RayJob for {name} changed; see {path}"


@pytest.mark.parametrize("config", sorted(CONFIGS))
@pytest.mark.parametrize("example", SWEEPS)
def test_sweep_rayjob_is_unchanged(example: str, config: str) -> None:
    doc = _manifest(example)
    operator = CONFIGS[config]
    spec = SweepSpec.model_validate(operator.with_defaults(doc["spec"]))
    manifest = build_sweep_rayjob(spec=spec, **_placement(doc, "uid-0001", operator))
    _check(f"{example.replace('/', '-')}.{config}", manifest)


@pytest.mark.parametrize("config", sorted(CONFIGS))
@pytest.mark.parametrize("example", ["rehearsal", "gitops/rehearsal"])
def test_rehearsal_rayjob_is_unchanged(example: str, config: str) -> None:
    """A fromSweep Rehearsal as the operator runs it: the trainer resolved inline."""
    doc = _manifest(example)
    operator = CONFIGS[config]
    wire = operator.with_defaults(doc["spec"])
    trainer = yaml.safe_load((ROOT / "examples" / "trainer-smoke.yaml").read_text())
    trainer.update(wire.pop("overrides", None) or {})
    source = wire.pop("fromSweep")
    spec = RehearsalSpec.model_validate({**wire, "trainer": trainer})
    manifest = build_rehearsal_rayjob(
        spec=spec,
        **_placement(doc, "uid-0002", operator),
        source=SourceTrial(source, "abc123_00001"),
        params={"learningRate": 0.003, "warmupSteps": 10},
    )
    _check(f"{example.replace('/', '-')}.{config}", manifest)
