"""The Kubernetes examples: every Sweep/Rehearsal manifest passes `tunix-rt validate`, and
the GitOps layout (kustomization, Argo CD Application, Flux) points at real files."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from tunix_rt.api.cluster import Accelerator
from tunix_rt.api.placement import spanning_fit
from tunix_rt.api.rehearsal import Rehearsal
from tunix_rt.api.sweep import Sweep
from tunix_rt.cli import app

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
GITOPS = EXAMPLES / "gitops"

# The cluster examples this suite owns; sweep-smoke.yaml (local and kind) is checked too.
CLUSTER_EXAMPLES = [
    "sweep-gpu.yaml",
    "sweep-tpu-v6e.yaml",
    "sweep-tpu-v6e-multihost.yaml",
    "sweep-gpu-multiworker.yaml",
    "rehearsal.yaml",
    "rehearsal-smoke.yaml",
]


def load(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(path.read_text())
    return doc


def manifests() -> list[Path]:
    """Every tunixrt.io manifest under examples/ (trainer configs are not manifests)."""
    found = []
    for path in sorted(EXAMPLES.rglob("*.yaml")):
        docs = [d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict)]
        if any(str(d.get("apiVersion", "")).startswith("tunixrt.io/") for d in docs):
            assert len(docs) == 1, f"{path}: one manifest per file"
            found.append(path)
    return found


def validate_cli(path: Path) -> None:
    """`tunix-rt validate FILE` exits 0 and names the manifest as valid."""
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    doc = load(path)
    said = " ".join(result.output.split())  # the console wraps long paths at its width
    assert f"{doc['kind']}/{doc['metadata']['name']} is valid" in said


def test_the_examples_exist() -> None:
    names = {p.relative_to(EXAMPLES).as_posix() for p in manifests()}
    assert set(CLUSTER_EXAMPLES) <= names
    assert {"gitops/sweep.yaml", "gitops/rehearsal.yaml"} <= names


@pytest.mark.parametrize("path", manifests(), ids=lambda p: p.relative_to(EXAMPLES).as_posix())
def test_manifest_passes_tunix_rt_validate(path: Path) -> None:
    validate_cli(path)


@pytest.mark.parametrize("name", [*CLUSTER_EXAMPLES, "gitops/sweep.yaml", "gitops/rehearsal.yaml"])
def test_cluster_examples_take_the_charts_storage(name: str) -> None:
    """No spec.storage: the operator fills in the chart's storage.uri (an object store:
    trial pods and the operator share no filesystem). A hard-coded bucket would override
    it and send results where the user never looks."""
    doc = load(EXAMPLES / name)
    assert "storage" not in doc["spec"]
    assert "namespace" not in doc["metadata"], "examples are applied with -n"


def test_gpu_sweep_fits_its_pool() -> None:
    sweep = Sweep.model_validate(load(EXAMPLES / "sweep-gpu.yaml"))
    (pool,) = sweep.spec.cluster.pools
    assert pool.accelerator is Accelerator.GPU and pool.gpu_type
    assert 0 < sweep.spec.resources.gpu <= pool.gpus_per_pod
    # Every concurrent trial has a GPU.
    per_pod = math.floor(pool.gpus_per_pod / sweep.spec.resources.gpu)
    assert sweep.spec.max_concurrent_trials <= per_pod * pool.replicas


def test_tpu_sweep_uses_a_v6e_slice() -> None:
    sweep = Sweep.model_validate(load(EXAMPLES / "sweep-tpu-v6e.yaml"))
    (pool,) = sweep.spec.cluster.pools
    assert pool.accelerator is Accelerator.TPU
    assert pool.tpu_accelerator == "tpu-v6e-slice"
    assert pool.tpu_topology
    chips = math.prod(int(n) for n in pool.tpu_topology.split("x"))
    assert 0 < sweep.spec.resources.tpu <= chips
    assert sweep.spec.max_concurrent_trials * sweep.spec.resources.tpu <= chips * pool.replicas


def test_multihost_tpu_sweep_trials_take_a_v6e_4x4_slice() -> None:
    """Each trial is a whole 4x4 slice (4 hosts of 4 chips, one worker a host); the pool
    holds a slice per concurrent trial and the batch splits over the 16 chips."""
    sweep = Sweep.model_validate(load(EXAMPLES / "sweep-tpu-v6e-multihost.yaml"))
    res, (pool,) = sweep.spec.resources, sweep.spec.cluster.pools
    assert res.tpu_slice is not None and res.spans_hosts()
    shape = res.tpu_slice.shape()
    assert (shape.gke_accelerator, shape.topology, shape.hosts) == ("tpu-v6e-slice", "4x4", 4)
    assert pool.tpu_shape() == shape
    fit = spanning_fit(sweep.spec)
    assert fit is not None and fit.pods == sweep.spec.max_concurrent_trials <= pool.replicas
    assert sweep.spec.trainer.batch_size % shape.chips == 0


def test_multiworker_gpu_sweep_trials_take_two_pods_of_four_gpus() -> None:
    sweep = Sweep.model_validate(load(EXAMPLES / "sweep-gpu-multiworker.yaml"))
    res, (pool,) = sweep.spec.resources, sweep.spec.cluster.pools
    assert (res.worker_count(), res.gpus_per_worker) == (2, 4) == (2, pool.gpus_per_pod)
    fit = spanning_fit(sweep.spec)
    assert fit is not None and fit.workers_per_pod == 1
    assert fit.pods == 2 * sweep.spec.max_concurrent_trials <= pool.replicas
    assert sweep.spec.trainer.batch_size % 8 == 0


def test_smoke_rehearsal_rehearses_the_smoke_sweep() -> None:
    """The README's Kubernetes path applies sweep-smoke.yaml, then rehearsal-smoke.yaml."""
    rehearsal = Rehearsal.model_validate(load(EXAMPLES / "rehearsal-smoke.yaml"))
    sweep = Sweep.model_validate(load(EXAMPLES / "sweep-smoke.yaml"))
    assert rehearsal.spec.from_sweep == sweep.metadata.name


def test_rehearsal_rehearses_the_gpu_sweep() -> None:
    rehearsal = Rehearsal.model_validate(load(EXAMPLES / "rehearsal.yaml"))
    sweep = Sweep.model_validate(load(EXAMPLES / "sweep-gpu.yaml"))
    assert rehearsal.spec.from_sweep == sweep.metadata.name
    assert rehearsal.spec.storage == sweep.spec.storage


# --- GitOps ------------------------------------------------------------------------------


def test_kustomization_lists_the_manifests_in_its_folder() -> None:
    kustomization = load(GITOPS / "kustomization.yaml")
    assert kustomization["apiVersion"] == "kustomize.config.k8s.io/v1beta1"
    assert kustomization["kind"] == "Kustomization"
    resources = kustomization["resources"]
    assert resources and len(set(resources)) == len(resources)
    kinds = []
    for resource in resources:
        path = GITOPS / resource
        assert path.is_file(), f"kustomization resource {resource} is missing"
        doc = load(path)
        kinds.append(doc["kind"])
        # kustomize sets the namespace; a hard-coded one would fight it.
        assert "namespace" not in doc["metadata"]
        validate_cli(path)
    assert sorted(kinds) == ["Rehearsal", "Sweep"]
    # The Argo CD and Flux objects live next to it but are not part of the build.
    assert "argocd-application.yaml" not in resources
    assert "flux-kustomization.yaml" not in resources


def test_gitops_rehearsal_follows_the_gitops_sweep() -> None:
    sweep = Sweep.model_validate(load(GITOPS / "sweep.yaml"))
    rehearsal = Rehearsal.model_validate(load(GITOPS / "rehearsal.yaml"))
    assert rehearsal.spec.from_sweep == sweep.metadata.name


def test_argocd_application_syncs_the_folder_and_leaves_status_alone() -> None:
    app = load(GITOPS / "argocd-application.yaml")
    namespace = load(GITOPS / "kustomization.yaml")["namespace"]
    assert app["apiVersion"] == "argoproj.io/v1alpha1" and app["kind"] == "Application"
    source = app["spec"]["source"]
    assert (ROOT / source["path"] / "kustomization.yaml").is_file()
    assert source["repoURL"].startswith("https://") and source["targetRevision"]
    assert app["spec"]["destination"]["namespace"] == namespace
    ignored = {(d["group"], d["kind"]): d["jsonPointers"] for d in app["spec"]["ignoreDifferences"]}
    assert ignored == {
        ("tunixrt.io", "Sweep"): ["/status"],
        ("tunixrt.io", "Rehearsal"): ["/status"],
    }
    options = app["spec"]["syncPolicy"]["syncOptions"]
    assert "ServerSideApply=true" in options
    assert "RespectIgnoreDifferences=true" in options


def test_flux_kustomization_syncs_the_same_folder() -> None:
    docs = [d for d in yaml.safe_load_all((GITOPS / "flux-kustomization.yaml").read_text()) if d]
    by_kind = {d["kind"]: d for d in docs}
    repo, kustomization = by_kind["GitRepository"], by_kind["Kustomization"]
    assert kustomization["apiVersion"] == "kustomize.toolkit.fluxcd.io/v1"
    assert kustomization["spec"]["sourceRef"] == {
        "kind": "GitRepository",
        "name": repo["metadata"]["name"],
    }
    path = kustomization["spec"]["path"]
    assert (ROOT / path / "kustomization.yaml").is_file()
    assert (
        kustomization["spec"]["targetNamespace"] == load(GITOPS / "kustomization.yaml")["namespace"]
    )
    assert (
        repo["spec"]["url"] == load(GITOPS / "argocd-application.yaml")["spec"]["source"]["repoURL"]
    )


def test_validate_rejects_a_broken_example(tmp_path: Path) -> None:
    """The check above can fail: a broken copy of an example is refused, naming the field."""
    doc = load(EXAMPLES / "sweep-gpu.yaml")
    doc["spec"]["searchSpace"]["learningRate"]["low"] = 1.0  # above high
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(doc))
    result = CliRunner().invoke(app, ["validate", str(broken)])
    assert result.exit_code != 0
    assert "searchSpace.learningRate" in result.output
