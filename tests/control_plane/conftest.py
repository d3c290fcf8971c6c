"""One real control plane (etcd, kube-apiserver, kube-controller-manager) per test run,
with the chart installed the way the README installs it."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.cluster import NodePool, SimulatedCluster, start_simulated_cluster
from support.control_plane import ChartOperator, ControlPlane, control_plane

KUBERAY_CRDS = Path(__file__).resolve().parents[3] / "shared" / "kuberay-crds"


@pytest.fixture(scope="session")
def plane() -> Iterator[ControlPlane]:
    with control_plane() as started:
        yield started


@pytest.fixture(scope="session")
def kuberay_crds(plane: ControlPlane) -> None:
    """KubeRay's RayJob and RayCluster CRDs (the operator creates RayJobs)."""
    if not KUBERAY_CRDS.is_dir():
        pytest.skip(f"KubeRay CRDs not found at {KUBERAY_CRDS} (shared/ is beside the clone in CI)")
    files = [arg for crd in sorted(KUBERAY_CRDS.glob("ray.io_*.yaml")) for arg in ("-f", str(crd))]
    plane.kubectl("apply", "--server-side", *files)  # one kubectl for them all
    plane.wait_established("rayjobs.ray.io", "rayclusters.ray.io")


def install_chart(plane: ControlPlane) -> ControlPlane:
    """The README's "Run on Kubernetes" steps 0 and 1: namespaces, Secrets, helm install."""
    plane.install_as_readme()  # the rest is the user's work: test_readme_path.py
    plane.wait_established("sweeps.tunixrt.io", "rehearsals.tunixrt.io")
    return plane


@pytest.fixture(scope="session")
def installed(plane: ControlPlane, kuberay_crds: None) -> ControlPlane:
    return install_chart(plane)


@pytest.fixture(scope="module")
def ns(installed: ControlPlane, request: pytest.FixtureRequest) -> str:
    """The test module's own namespace (its ``NS``), created."""
    name: str = request.module.NS
    installed.kubectl("create", "namespace", name)
    return name


@pytest.fixture(scope="session")
def store_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The operator's store: a local folder stands in for the README's s3:// bucket (the
    operator reads results there; nothing here writes to S3)."""
    return f"file://{tmp_path_factory.mktemp('store')}"


FAST_POLL = {"TUNIX_RT_POLL_SECONDS": "1"}
"""The session operators read a running Sweep's or Rehearsal's RayJob and store every
second, not every 10 s (the operator's default; a user sets it with the chart's
``operator.extraEnv``): each end of a run is noticed within a second, so a test that waits
for a phase waits for the run, not for the timer. No test here depends on the interval."""


@pytest.fixture(scope="session")
def operator(installed: ControlPlane, store_uri: str) -> Iterator[ChartOperator]:
    """The chart's operator: its Deployment's args and env, its ServiceAccount's token."""
    running = ChartOperator(installed, storage=store_uri, extra_env=FAST_POLL).start()
    yield running
    running.kill(signal.SIGTERM)


# The simulated cluster's node pools: machine types of tunix_rt/api/gke_machines.yaml, sized
# so every accelerator example fits as written (one at a time): sweep-gpu's 4 pods of one L4
# each on g2-standard-8 (the machine the example names), sweep-gpu-multiworker's 4 pods of
# 4 A100s on a2-highgpu-4g, sweep-tpu-v6e-multihost's 2 concurrent trials two 4x4 slices
# (each its own node pool of 4 hosts).
CLUSTER_POOLS = [
    NodePool("cpu", "n2-standard-16", 2),
    NodePool("l4", "g2-standard-8", 4),  # examples/sweep-gpu.yaml names g2-standard-8
    NodePool("a100", "a2-highgpu-4g", 4),
    NodePool("v6e-2x2", "ct6e-standard-4t", 1, "2x2"),
    NodePool("v6e-4x4-a", "ct6e-standard-4t", 4, "4x4"),
    NodePool("v6e-4x4-b", "ct6e-standard-4t", 4, "4x4"),
]


@pytest.fixture(scope="session")
def cluster() -> Iterator[SimulatedCluster]:
    """A second control plane, with kube-scheduler, kwok's GKE-shaped nodes, the real
    KubeRay operator (its own CRDs) and Kueue, and the chart installed as the README does.
    Separate from ``plane``: there, tests write RayJob status by hand, which a running
    KubeRay operator would overwrite."""
    with start_simulated_cluster() as started:
        install_chart(started.plane)
        started.add_gke_nodes(CLUSTER_POOLS)
        yield started


@pytest.fixture(scope="session")
def cluster_operator(cluster: SimulatedCluster, store_uri: str) -> Iterator[ChartOperator]:
    """The chart's operator on the simulated cluster (its Deployment's args and env)."""
    running = ChartOperator(cluster.plane, storage=store_uri, extra_env=FAST_POLL).start()
    yield running
    running.kill(signal.SIGTERM)


@pytest.fixture(scope="session")
def trainer_sa(cluster: SimulatedCluster) -> None:
    """The TPU examples' Ray pods run as ``tunix-rt-trainer``: the ServiceAccount admission
    plugin refuses a pod whose ServiceAccount does not exist, so a user creates it first
    (docs/kubernetes.md)."""
    cluster.plane.kubectl("-n", "ml-sweeps", "create", "serviceaccount", "tunix-rt-trainer")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """With pytest-xdist (``--dist loadgroup``) every control-plane test runs in one worker,
    so the control plane starts once per test run."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.xdist_group("control_plane"))
