"""The RayJob builder: shape of CPU / GPU / TPU worker groups, each manifest checked against
KubeRay's real RayJob CRD schema (../shared/kuberay-crds)."""

from __future__ import annotations

import base64
import dataclasses
import json
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from support.rayjob_schema import validate_rayjob
from tunix_rt.api.errors import validation_errors
from tunix_rt.api.rehearsal import RehearsalSpec, SourceTrial
from tunix_rt.api.sweep import SweepSpec
from tunix_rt.api.trainer import TrainerConfig
from tunix_rt.kuberay import BuildOptions, ManifestError, Owner, build_rehearsal_rayjob
from tunix_rt.kuberay import build_sweep_rayjob as build
from tunix_rt.kuberay.metadata import spec_annotation
from tunix_rt.kuberay.raycluster import ray_resources_param
from tunix_rt.notice import RAY_HOOK, RAY_HOOK_ENV

OWNER = Owner("tunixrt.io/v1alpha1", "Sweep", "lr-search", "0b7c-uid")
OPTIONS = BuildOptions(
    image_cpu="registry.example/trainer:1.0-cpu",
    image_gpu="registry.example/trainer:1.0-cuda",
    image_tpu="registry.example/trainer:1.0-tpu",
    storage_secret="s3-creds",
)


def sweep(**overrides: Any) -> SweepSpec:
    wire: dict[str, Any] = {
        "searchSpace": {"learningRate": {"type": "loguniform", "low": 1e-4, "high": 1e-2}},
        "maxTrials": 4,
        "maxConcurrentTrials": 2,
        "storage": "s3://bucket/runs",
    }
    wire.update(overrides)
    return SweepSpec.model_validate(wire)


def rayjob(spec: SweepSpec) -> dict[str, Any]:
    manifest = build(name="lr-search", namespace="ml", spec=spec, owner=OWNER, options=OPTIONS)
    validate_rayjob(manifest)
    return manifest


def workers(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    groups = manifest["spec"]["rayClusterSpec"]["workerGroupSpecs"]
    return {g["groupName"]: g for g in groups}


def container(group: dict[str, Any]) -> dict[str, Any]:
    containers = group["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def test_cpu_pool_and_common_shape() -> None:
    manifest = rayjob(
        sweep(cluster={"pools": [{"name": "cpu", "replicas": 3, "cpu": "4", "memory": "16Gi"}]})
    )
    meta = manifest["metadata"]
    assert manifest["apiVersion"] == "ray.io/v1" and manifest["kind"] == "RayJob"
    assert meta["name"] == "sweep-lr-search" and meta["namespace"] == "ml"
    assert meta["labels"]["app.kubernetes.io/managed-by"] == "tunix-rt"
    assert meta["labels"]["tunixrt.io/sweep"] == "lr-search"
    assert meta["ownerReferences"] == [{
        "apiVersion": "tunixrt.io/v1alpha1", "kind": "Sweep", "name": "lr-search",
        "uid": "0b7c-uid", "controller": True, "blockOwnerDeletion": True,
    }]  # fmt: skip
    spec = manifest["spec"]
    assert spec["shutdownAfterJobFinishes"] is True
    assert spec["ttlSecondsAfterFinished"] == 600
    assert "activeDeadlineSeconds" not in spec  # no budget timeouts
    # The trials' workers checkpoint on SIGTERM (a node's preemption notice).
    assert yaml.safe_load(spec["runtimeEnvYAML"]) == {
        "env_vars": {"PYTHONUNBUFFERED": "1", RAY_HOOK_ENV: RAY_HOOK}
    }

    head = spec["rayClusterSpec"]["headGroupSpec"]
    assert head["rayStartParams"]["num-cpus"] == "0"  # the driver runs here, no trials
    head_c = container(head)
    assert head_c["image"] == "registry.example/trainer:1.0-cpu"
    assert head_c["envFrom"] == [{"secretRef": {"name": "s3-creds"}}]

    cpu = workers(manifest)["cpu"]
    assert (cpu["replicas"], cpu["minReplicas"], cpu["maxReplicas"]) == (3, 3, 3)
    assert "numOfHosts" not in cpu
    c = container(cpu)
    assert c["image"] == "registry.example/trainer:1.0-cpu"
    assert c["resources"]["limits"] == {"cpu": "4", "memory": "16Gi"}
    assert c["resources"]["requests"] == c["resources"]["limits"]
    assert c["envFrom"] == [{"secretRef": {"name": "s3-creds"}}]
    assert "tolerations" not in cpu["template"]["spec"]
    assert "enableInTreeAutoscaling" not in spec["rayClusterSpec"]


def test_entrypoint_runs_the_tune_driver_with_the_spec() -> None:
    spec = sweep()
    manifest = rayjob(spec)
    argv = shlex.split(manifest["spec"]["entrypoint"])
    assert argv[:3] == ["python", "-m", "tunix_rt.tune"]
    args = dict(zip(argv[3::2], argv[4::2], strict=True))
    assert args["--storage"] == "s3://bucket/runs"
    assert args["--namespace"] == "ml" and args["--name"] == "lr-search"
    assert args["--address"] == "auto"
    decoded = json.loads(base64.b64decode(args["--spec-b64"]))
    assert SweepSpec.model_validate(decoded) == spec
    assert SweepSpec.model_validate(spec_annotation(manifest)) == spec


def test_gpu_pool() -> None:
    manifest = rayjob(sweep(cluster={"pools": [{
        "name": "l4", "accelerator": "gpu", "gpusPerPod": 2, "gpuType": "nvidia-l4",
        "replicas": 2, "minReplicas": 1, "maxReplicas": 4, "nodeSelector": {"pool": "a"},
    }]}))  # fmt: skip
    gpu = workers(manifest)["l4"]
    c = container(gpu)
    assert c["image"] == "registry.example/trainer:1.0-cuda"
    assert c["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert c["resources"]["requests"]["nvidia.com/gpu"] == "2"
    pod = gpu["template"]["spec"]
    assert pod["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-l4", "pool": "a"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in (
        pod["tolerations"]
    )
    assert (gpu["replicas"], gpu["minReplicas"], gpu["maxReplicas"]) == (2, 1, 4)
    assert manifest["spec"]["rayClusterSpec"]["enableInTreeAutoscaling"] is True
    assert {"name": "JAX_PLATFORMS", "value": "cuda"} in c["env"]


def test_a_pool_without_an_image_anywhere_is_refused_by_field() -> None:
    """The chart installed without a GPU image sets it empty: a GPU pool then needs its own
    image, and is refused (InvalidSpec, the field named) instead of pulling a guess."""
    no_gpu = dataclasses.replace(OPTIONS, image_gpu="")
    pools = [{"name": "c", "replicas": 1}, {"name": "l4", "accelerator": "gpu", "gpusPerPod": 1}]
    spec = sweep(cluster={"pools": pools})
    with pytest.raises(ManifestError, match=r"spec\.cluster\.pools\[1\]\.image") as refused:
        build(name="x", namespace="ml", spec=spec, owner=OWNER, options=no_gpu)
    assert "trainerImages.gpu" in str(refused.value) and "make images" in str(refused.value)
    pools[1]["image"] = "registry.example/own:1-cuda"
    built = build(name="x", namespace="ml", spec=sweep(cluster={"pools": pools}), owner=OWNER,
                  options=no_gpu)  # fmt: skip
    assert container(workers(built)["l4"])["image"] == "registry.example/own:1-cuda"
    with pytest.raises(ManifestError, match=r"\.image: no cpu trainer image.*trainerImages\.cpu"):
        build(name="x", namespace="ml", spec=sweep(), owner=OWNER,
              options=dataclasses.replace(OPTIONS, image_cpu=""))  # fmt: skip


def test_tpu_single_host_pool() -> None:
    manifest = rayjob(sweep(cluster={"pools": [{
        "name": "v6e", "accelerator": "tpu", "tpuAccelerator": "tpu-v6e-slice",
        "tpuTopology": "2x2", "replicas": 2,
    }]}))  # fmt: skip
    tpu = workers(manifest)["v6e"]
    assert tpu["numOfHosts"] == 1
    assert tpu["replicas"] == 2  # slices
    c = container(tpu)
    assert c["image"] == "registry.example/trainer:1.0-tpu"
    assert c["resources"]["limits"]["google.com/tpu"] == "4"
    assert c["resources"]["requests"]["google.com/tpu"] == "4"
    pod = tpu["template"]["spec"]
    assert pod["nodeSelector"] == {
        "cloud.google.com/gke-tpu-accelerator": "tpu-v6e-slice",
        "cloud.google.com/gke-tpu-topology": "2x2",
    }
    assert {"key": "google.com/tpu", "operator": "Exists", "effect": "NoSchedule"} in (
        pod["tolerations"]
    )
    # ray start --resources='{"TPU": 4}' (quoted for the shell KubeRay runs it through)
    assert tpu["rayStartParams"]["resources"] == "'{\"TPU\":4}'"


def test_tpu_multi_host_pool_and_mixed_cluster() -> None:
    manifest = rayjob(sweep(cluster={"pools": [
        {"name": "cpu"},
        {"name": "gpu", "accelerator": "gpu", "gpusPerPod": 1},
        {"name": "v6e-16", "accelerator": "tpu", "tpuAccelerator": "tpu-v6e-slice",
         "tpuTopology": "4x4", "replicas": 1, "image": "registry.example/custom:tpu"},
        {"name": "v5p", "accelerator": "tpu", "tpuAccelerator": "tpu-v5p-slice",
         "tpuTopology": "2x2x2"},
    ]}))  # fmt: skip
    groups = workers(manifest)
    assert list(groups) == ["cpu", "gpu", "v6e-16", "v5p"]
    v6e = groups["v6e-16"]
    assert v6e["numOfHosts"] == 4  # a v6e 4x4 slice is 4 hosts of 4 chips
    assert container(v6e)["resources"]["limits"]["google.com/tpu"] == "4"
    assert container(v6e)["image"] == "registry.example/custom:tpu"
    assert v6e["template"]["spec"]["nodeSelector"]["cloud.google.com/gke-tpu-topology"] == "4x4"
    v5p = groups["v5p"]
    assert v5p["numOfHosts"] == 2
    assert v5p["template"]["spec"]["nodeSelector"] == {
        "cloud.google.com/gke-tpu-accelerator": "tpu-v5p-slice",
        "cloud.google.com/gke-tpu-topology": "2x2x2",
    }
    assert "nodeSelector" not in groups["gpu"]["template"]["spec"]  # no gpuType: any GPU node


def test_deadline_env_service_account_and_images() -> None:
    spec = sweep(
        budget={"sweepTimeoutSeconds": 3600},
        cluster={"image": "registry.example/head:2", "serviceAccount": "ray-wi",
                 "env": {"HF_HOME": "/tmp/hf"}, "ttlSecondsAfterFinished": 60},
    )  # fmt: skip
    manifest = rayjob(spec)
    assert manifest["spec"]["activeDeadlineSeconds"] == 3600 + OPTIONS.deadline_grace_seconds
    assert manifest["spec"]["ttlSecondsAfterFinished"] == 60
    env = yaml.safe_load(manifest["spec"]["runtimeEnvYAML"])["env_vars"]
    assert env["HF_HOME"] == "/tmp/hf"
    head = manifest["spec"]["rayClusterSpec"]["headGroupSpec"]
    assert container(head)["image"] == "registry.example/head:2"
    for group in [head, *workers(manifest).values()]:
        assert group["template"]["spec"]["serviceAccountName"] == "ray-wi"


def test_deadline_derived_from_the_trial_timeout() -> None:
    spec = sweep(budget={"trialTimeoutSeconds": 100}, maxTrials=5, maxConcurrentTrials=2)
    manifest = rayjob(spec)
    # 5 trials, 2 at a time: 3 waves of at most 100 s, plus the grace period
    assert manifest["spec"]["activeDeadlineSeconds"] == 300 + OPTIONS.deadline_grace_seconds


@pytest.mark.parametrize(
    ("pool", "field"),
    [
        ({"name": "w", "cpu": "two"}, "spec.cluster.pools[0].cpu"),
        ({"name": "w", "memory": "8 GB"}, "spec.cluster.pools[0].memory"),
        ({"name": "w", "replicas": 1, "minReplicas": 3}, "spec.cluster.pools[0].minReplicas"),
        ({"name": "w", "replicas": 4, "maxReplicas": 2}, "spec.cluster.pools[0].maxReplicas"),
        (
            {
                "name": "t",
                "accelerator": "tpu",
                "tpuAccelerator": "tpu-v6e-slice",
                "tpuTopology": "3x3",
            },
            "spec.cluster.pools[0].tpuTopology",
        ),
        (
            {"name": "t", "accelerator": "tpu", "tpuAccelerator": "tpu-v9", "tpuTopology": "2x2"},
            "spec.cluster.pools[0].tpuAccelerator",
        ),
        (
            {
                "name": "g",
                "accelerator": "gpu",
                "gpusPerPod": 1,
                "gpuType": "nvidia-l4",
                "nodeSelector": {"cloud.google.com/gke-accelerator": "nvidia-a100"},
            },
            "spec.cluster.pools[0].nodeSelector",
        ),
    ],
)
def test_unbuildable_pools_name_the_field(pool: dict[str, Any], field: str) -> None:
    """Refused at admission by the models (the TPU table and quantities live in api), or
    at the latest by the builder; either way the field is named."""
    try:
        spec = sweep(cluster={"pools": [pool]})
    except ValidationError as exc:
        assert field in [path for path, _ in validation_errors(exc, "spec")]
        return
    with pytest.raises(ManifestError) as info:
        build(name="s", namespace="ml", spec=spec, owner=OWNER)
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}: ")


def test_head_quantity_error_names_the_field() -> None:
    with pytest.raises(ValidationError) as info:
        sweep(cluster={"headMemory": "lots"})
    assert validation_errors(info.value, "spec")[0][0] == "spec.cluster.headMemory"


def test_rehearsal_rayjob() -> None:
    trainer = TrainerConfig.model_validate({"learningRate": 0.002, "maxSteps": 900})
    spec = RehearsalSpec.model_validate({
        "trainer": trainer.to_wire(), "storage": "gs://bucket/ev", "timeoutSeconds": 1200,
        "resources": {"cpu": 2, "tpu": 4},
        "cluster": {"pools": [{"name": "v6e", "accelerator": "tpu",
                               "tpuAccelerator": "tpu-v6e-slice", "tpuTopology": "2x2"}]},
    })  # fmt: skip
    owner = Owner("tunixrt.io/v1alpha1", "Rehearsal", "final", "r-uid")
    manifest = build_rehearsal_rayjob(
        name="final",
        namespace="ml",
        spec=spec,
        owner=owner,
        options=OPTIONS,
        source=SourceTrial("lr-search", "t_00003"),
        params={"learningRate": 0.002},
    )
    validate_rayjob(manifest)
    assert manifest["metadata"]["name"] == "rehearsal-final"
    assert manifest["metadata"]["labels"]["tunixrt.io/rehearsal"] == "final"
    assert manifest["metadata"]["ownerReferences"][0]["kind"] == "Rehearsal"
    s = manifest["spec"]
    assert s["activeDeadlineSeconds"] == 1200 + OPTIONS.deadline_grace_seconds
    assert s["entrypointNumCpus"] == 2
    assert json.loads(s["entrypointResources"]) == {"TPU": 4}  # the run lands on a TPU host
    argv = shlex.split(s["entrypoint"])
    assert argv[:3] == ["python", "-m", "tunix_rt.rehearsal"]
    args = dict(zip(argv[3::2], argv[4::2], strict=True))
    assert args["--source-sweep"] == "lr-search" and args["--source-trial"] == "t_00003"
    assert args["--storage"] == "gs://bucket/ev"
    decoded = RehearsalSpec.model_validate(json.loads(base64.b64decode(args["--spec-b64"])))
    assert decoded.trainer == trainer and decoded.from_sweep is None


def test_rehearsal_needs_a_resolved_trainer() -> None:
    spec = RehearsalSpec.model_validate({"fromSweep": "lr-search"})
    owner = Owner("tunixrt.io/v1alpha1", "Rehearsal", "final", "r-uid")
    with pytest.raises(ManifestError, match=r"spec\.trainer"):
        build_rehearsal_rayjob(name="final", namespace="ml", spec=spec, owner=owner)


def test_schema_check_catches_a_bad_manifest() -> None:
    """The validator is strict: a misspelt field or a wrong type is an error."""
    manifest = rayjob(sweep())
    bad = json.loads(json.dumps(manifest))
    bad["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["numOfHost"] = 2
    with pytest.raises(AssertionError, match="numOfHost"):
        validate_rayjob(bad)
    bad = json.loads(json.dumps(manifest))
    bad["spec"]["shutdownAfterJobFinishes"] = "yes"
    with pytest.raises(AssertionError, match="shutdownAfterJobFinishes"):
        validate_rayjob(bad)


EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("sweep-*.yaml")), ids=lambda p: p.name)
def test_example_sweeps_build_valid_rayjobs(path: Path) -> None:
    """The shipped examples become RayJobs that KubeRay accepts."""
    for doc in yaml.safe_load_all(path.read_text()):
        if not doc or doc.get("kind") != "Sweep":
            continue
        spec = SweepSpec.model_validate(doc["spec"])
        manifest = build(name=doc["metadata"]["name"], namespace="ml", spec=spec, owner=OWNER,
                         options=OPTIONS)  # fmt: skip
        validate_rayjob(manifest)
        pools = {p.name: p for p in spec.cluster.pools}
        for name, group in workers(manifest).items():
            limits = container(group)["resources"]["limits"]
            if pools[name].accelerator.value == "tpu":
                assert "google.com/tpu" in limits and group["numOfHosts"] >= 1
            if pools[name].accelerator.value == "gpu":
                assert limits["nvidia.com/gpu"] == str(pools[name].gpus_per_pod)


def test_queued_sweep_is_created_suspended_with_kueues_label() -> None:
    """spec.queueName: Kueue queues the RayJob (label) and admits it (unsuspends)."""
    manifest = rayjob(sweep(queueName="team-a"))
    assert manifest["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team-a"
    assert manifest["spec"]["suspend"] is True
    for group in [manifest["spec"]["rayClusterSpec"]["headGroupSpec"], *workers(manifest).values()]:
        assert "kueue.x-k8s.io/queue-name" not in group["template"]["metadata"]["labels"]
    plain = rayjob(sweep())
    assert "suspend" not in plain["spec"]
    assert "kueue.x-k8s.io/queue-name" not in plain["metadata"]["labels"]


@pytest.mark.parametrize("resources", [{"TPU": 4}, {"tunix_rt_trial_driver": 1000, "TPU": 0.5}])
def test_ray_start_resources_survive_kuberay_and_the_shell(resources: dict) -> None:
    """KubeRay 1.5 parses ``rayStartParams.resources`` (quotes trimmed, then JSON) before it
    puts it into the ``ray start`` shell command: the value must pass both."""
    value = ray_resources_param(resources)
    assert json.loads(value.strip("'\"` ")) == resources  # KubeRay's getResourcesMap
    (arg,) = shlex.split(f"--resources={value}")  # the shell running KUBERAY_GEN_RAY_START_CMD
    assert json.loads(arg.removeprefix("--resources=")) == resources
