"""RayJobs of sweeps whose trials span hosts: v6e 4x4 slices (1 and 2 trials at once),
v5p 2x2x2, and 2 pods x 4 GPUs. Each validates against KubeRay's RayJob CRD schema and
is compared field by field with the shape of KubeRay's own multi-host TPU sample
(``ray-operator/config/samples/ray-cluster.tpu-v6e-16-multihost.yaml``: a head without
TPUs; a worker group whose replica is one slice of ``numOfHosts`` pods, each requesting
and limiting the host's ``google.com/tpu`` chips, selected by the GKE TPU accelerator
and topology labels). The expected shape is written out here, not copied."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from support.rayjob_schema import validate_rayjob
from tunix_rt.api.placement import check_placement
from tunix_rt.api.sweep import SweepSpec
from tunix_rt.kuberay import ManifestError, Owner, build_sweep_rayjob

SEARCH = {"learningRate": {"type": "loguniform", "low": 1.0e-4, "high": 1.0e-2}}
OWNER = Owner("tunixrt.io/v1alpha1", "Sweep", "big", "uid-1")


def rayjob(resources: dict, pool: dict, concurrent: int = 1) -> dict[str, Any]:
    spec = SweepSpec.model_validate(
        {
            "searchSpace": SEARCH,
            "maxTrials": 4,
            "maxConcurrentTrials": concurrent,
            "resources": resources,
            "cluster": {"pools": [pool]},
        }
    )
    manifest = build_sweep_rayjob(name="big", namespace="ml", spec=spec, owner=OWNER)
    validate_rayjob(manifest)
    return manifest


def tpu_pool(accelerator: str, topology: str, **kw: Any) -> dict:
    return {"name": "slice", "accelerator": "tpu", "tpuAccelerator": accelerator,
            "tpuTopology": topology, "cpu": "24", "memory": "96Gi", **kw}  # fmt: skip


def kuberay_tpu_sample_shape(accelerator: str, topology: str, hosts: int, chips: int) -> dict:
    """The fields KubeRay's multi-host TPU sample sets, for one slice type."""
    return {
        "head_containers": ["ray-head"],
        "head_ports": {6379, 8265, 10001},
        "head_tpu": None,
        "worker_container": "ray-worker",
        "numOfHosts": hosts,
        "tpu_requests": str(chips),
        "tpu_limits": str(chips),
        "nodeSelector": {
            "cloud.google.com/gke-tpu-accelerator": accelerator,
            "cloud.google.com/gke-tpu-topology": topology,
        },
    }


def shape_of(manifest: dict[str, Any]) -> dict:
    cluster = manifest["spec"]["rayClusterSpec"]
    head = cluster["headGroupSpec"]["template"]["spec"]
    (group,) = cluster["workerGroupSpecs"]
    pod = group["template"]["spec"]
    (container,) = pod["containers"]
    return {
        "head_containers": [c["name"] for c in head["containers"]],
        "head_ports": {p["containerPort"] for p in head["containers"][0]["ports"]},
        "head_tpu": head["containers"][0]["resources"]["limits"].get("google.com/tpu"),
        "worker_container": container["name"],
        "numOfHosts": group["numOfHosts"],
        "tpu_requests": container["resources"]["requests"]["google.com/tpu"],
        "tpu_limits": container["resources"]["limits"]["google.com/tpu"],
        "nodeSelector": pod["nodeSelector"],
    }


def multihost_bits(manifest: dict[str, Any]) -> tuple[dict, dict]:
    """The head's custom resources and the job's environment."""
    cluster = manifest["spec"]["rayClusterSpec"]
    raw = cluster["headGroupSpec"]["rayStartParams"]["resources"]
    head = json.loads(raw.strip("'"))
    env = yaml.safe_load(manifest["spec"]["runtimeEnvYAML"])["env_vars"]
    return head, env


@pytest.mark.parametrize("concurrent", [1, 2])
def test_v6e_4x4_slices_one_per_concurrent_trial(concurrent: int) -> None:
    manifest = rayjob(
        {"tpuSlice": {"accelerator": "tpu-v6e-slice", "topology": "4x4"}, "cpu": 8},
        tpu_pool("tpu-v6e-slice", "4x4"),
        concurrent,
    )
    assert shape_of(manifest) == kuberay_tpu_sample_shape("tpu-v6e-slice", "4x4", 4, 4)
    (group,) = manifest["spec"]["rayClusterSpec"]["workerGroupSpecs"]
    # One replica is one slice of 4 hosts: 2 concurrent trials, 2 slices (8 pods).
    assert group["replicas"] == group["minReplicas"] == group["maxReplicas"] == concurrent
    assert group["rayStartParams"]["resources"] == "'{\"TPU\":4}'"
    head, env = multihost_bits(manifest)
    assert head == {"tunix_rt_trial_driver": 1000}
    assert env["RAY_TRAIN_V2_ENABLED"] == "1"
    # The spec the job runs is the user's (the pool's replicas are the builder's).
    annotation = json.loads(manifest["metadata"]["annotations"]["tunixrt.io/spec"])
    assert annotation["cluster"]["pools"][0]["replicas"] == 1


def test_v5p_2x2x2_is_two_hosts() -> None:
    manifest = rayjob(
        {"tpuSlice": {"accelerator": "v5p", "topology": "2x2x2"}, "cpu": 8},
        tpu_pool("tpu-v5p-slice", "2x2x2"),
    )
    assert shape_of(manifest) == kuberay_tpu_sample_shape("tpu-v5p-slice", "2x2x2", 2, 4)
    (group,) = manifest["spec"]["rayClusterSpec"]["workerGroupSpecs"]
    assert group["replicas"] == 1


@pytest.mark.parametrize(("concurrent", "pods"), [(1, 2), (2, 4)])
def test_two_pods_of_four_gpus(concurrent: int, pods: int) -> None:
    manifest = rayjob(
        {"workers": 2, "gpusPerWorker": 4, "cpu": 8, "memory": "32Gi"},
        {"name": "a100", "accelerator": "gpu", "gpusPerPod": 4, "gpuType": "nvidia-tesla-a100",
         "replicas": 2, "cpu": "12", "memory": "85Gi"},
        concurrent,
    )  # fmt: skip
    (group,) = manifest["spec"]["rayClusterSpec"]["workerGroupSpecs"]
    assert "numOfHosts" not in group
    assert group["replicas"] == pods  # 2 pods a trial
    pod = group["template"]["spec"]
    (container,) = pod["containers"]
    assert container["resources"]["requests"]["nvidia.com/gpu"] == "4"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "4"
    assert pod["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-tesla-a100"}
    head, env = multihost_bits(manifest)
    assert head == {"tunix_rt_trial_driver": 1000} and env["RAY_TRAIN_V2_ENABLED"] == "1"


def test_one_pod_trials_get_no_driver_slots() -> None:
    manifest = rayjob({"tpu": 4}, tpu_pool("tpu-v6e-slice", "2x2"))
    cluster = manifest["spec"]["rayClusterSpec"]
    assert "resources" not in cluster["headGroupSpec"]["rayStartParams"]
    assert "RAY_TRAIN_V2_ENABLED" not in manifest["spec"]["runtimeEnvYAML"]


def test_builder_refuses_a_pool_that_cannot_hold_the_slices() -> None:
    """Admission refuses it first; a spec that skipped placement fails in the builder too."""
    spec = SweepSpec.model_validate(
        {
            "searchSpace": SEARCH,
            "maxTrials": 2,
            "maxConcurrentTrials": 2,
            "resources": {"tpuSlice": {"accelerator": "v6e", "topology": "4x4"}},
            "cluster": {"pools": [tpu_pool("tpu-v6e-slice", "4x4", maxReplicas=1)]},
        },
        context={"placement": False},
    )
    # What the operator checks after filling in its defaults (then fails the Sweep with
    # reason Unschedulable):
    ((field, message),) = check_placement(spec)
    assert field == "spec.maxConcurrentTrials" and "needs 2 slices" in message
    with pytest.raises(ManifestError, match=r"spec\.resources"):
        build_sweep_rayjob(name="big", namespace="ml", spec=spec, owner=OWNER)


def affinity_terms(group: dict[str, Any]) -> tuple[list[dict], list[dict]]:
    affinity = group["template"]["spec"]["affinity"]
    return (
        affinity["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"],
        affinity["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"],
    )


@pytest.mark.parametrize("concurrent", [1, 2])
def test_a_slice_stays_on_one_node_pool(concurrent: int) -> None:
    """Without affinity the real kube-scheduler split each of two 4x4 trials over both
    slices (KubeRay adds none; GKE's Ray TPU webhook would): the template asks for it, keyed
    on KubeRay's own pod labels."""
    manifest = rayjob(
        {"tpuSlice": {"accelerator": "tpu-v6e-slice", "topology": "4x4"}, "cpu": 8},
        tpu_pool("tpu-v6e-slice", "4x4"),
        concurrent,
    )
    (group,) = manifest["spec"]["rayClusterSpec"]["workerGroupSpecs"]
    assert group["template"]["metadata"]["labels"]["tunixrt.io/tpu-slice"] == "slice"
    (together,), apart = affinity_terms(group)
    assert together == {
        "labelSelector": {"matchLabels": {"ray.io/group": "slice"}},
        "matchLabelKeys": ["ray.io/cluster", "ray.io/worker-group-replica-name"],
        "topologyKey": "cloud.google.com/gke-nodepool",
    }
    # Other RayClusters' slices keep off this node pool, in every namespace.
    assert apart[0]["mismatchLabelKeys"] == ["ray.io/cluster"]
    assert apart[0]["namespaceSelector"] == {}
    # With two slices, the group's replicas keep off each other's node pool.
    assert len(apart) == concurrent
    if concurrent == 2:
        assert apart[1]["mismatchLabelKeys"] == ["ray.io/worker-group-replica-name"]
        assert apart[1]["matchLabelKeys"] == ["ray.io/cluster"]


def test_single_host_slices_get_no_affinity() -> None:
    manifest = rayjob({"tpu": 4}, tpu_pool("tpu-v6e-slice", "2x2", replicas=2), 2)
    (group,) = manifest["spec"]["rayClusterSpec"]["workerGroupSpecs"]
    assert "affinity" not in group["template"]["spec"]
    assert "tunixrt.io/tpu-slice" not in group["template"]["metadata"]["labels"]
