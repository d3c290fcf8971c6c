"""A simulated GKE cluster around the test control plane: kube-scheduler, kwok (fake nodes
and a pod lifecycle without containers), the KubeRay operator and Kueue, each the real
program built from its Go module by ``scripts/control-plane/build-cluster.sh``.

What is real: the API server, the scheduler's placement, KubeRay turning RayJobs into
RayClusters, Services and pods (and its submitter Jobs), Kueue's admission, its webhooks
and its quota. What is simulated: the nodes (kwok keeps them Ready and marks pods bound to
them Running and Ready at once) and so every container (nothing runs in a pod).

Kueue's webhooks are served on loopback, called by the API server through URL
``clientConfig``s: Kueue's own certificate manager needs a Secret it then keeps and
injects as the webhooks' and conversion CRDs' caBundle; the harness creates that Secret
with a serving certificate for ``127.0.0.1`` (and the Service name Kueue checks), signed
by a harness CA. KubeRay and Kueue log in as the admin (their RBAC is not under test).
A missing binary or manifest is an error, never a skip.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from support.control_plane import (
    REPO,
    Certificates,
    ControlPlane,
    ControlPlaneError,
    Process,
    control_plane,
    run_build_script,
    wait_until,
)
from support.net import free_port

BUILD_SCRIPT = REPO / "scripts" / "control-plane" / "build-cluster.sh"
BINARIES = ("kwok", "ray-operator", "kueue")
MANIFESTS = ("kuberay-crds", "kueue-crds", "kueue-webhooks", "kwok-stages")

KWOK_ANNOTATION = "kwok.x-k8s.io/node"
"""Nodes carrying ``kwok.x-k8s.io/node: fake`` are kept by kwok (and only those)."""
NOT_READY_TAINT = "node.kubernetes.io/not-ready"
KUEUE_NAMESPACE = "kueue-system"
KUEUE_WEBHOOK_SERVICE = "kueue-webhook-service"  # Kueue's default: names its webhook configs
KUEUE_WEBHOOK_SECRET = "kueue-webhook-server-cert"
KUEUE_CA_NAME = "kueue-ca"
# Kueue integrations started here; only their webhooks (and Kueue's own types') are
# registered with the API server.
KUEUE_FRAMEWORKS = ("ray.io/rayjob",)
KUEUE_WEBHOOK_RESOURCES = {("kueue.x-k8s.io", "*"), ("ray.io", "rayjobs")}


@dataclass(frozen=True)
class NodePool:
    """A GKE node pool: ``nodes`` machines of a type in the data file (a TPU pool: the hosts
    of whole ``topology`` slices; a multi-host slice is one node pool)."""

    name: str
    machine: str
    nodes: int
    topology: str | None = None


def cluster_home() -> Path:
    """The folder of bin/ and manifests/: ``$TUNIX_RT_CLUSTER_HOME``, else the build
    script's cache (built now when missing; a second call returns at once)."""
    given = os.environ.get("TUNIX_RT_CLUSTER_HOME")
    home = Path(given) if given else run_build_script(BUILD_SCRIPT)
    missing = [f"bin/{b}" for b in BINARIES if not os.access(home / "bin" / b, os.X_OK)]
    missing += [f"manifests/{m}" for m in MANIFESTS if not any((home / "manifests" / m).glob("*"))]
    if missing:
        raise ControlPlaneError(
            f"missing simulated-cluster parts in {home}: {', '.join(missing)}; run "
            "`make control-plane` (scripts/control-plane/build-cluster.sh)"
        )
    return home


def _yaml_docs(*paths: Path) -> list[dict[str, Any]]:
    """The documents of YAML files, read by libyaml when PyYAML has it (the same documents
    as ``yaml.safe_load_all``; KubeRay's and Kueue's CRDs are ~5 MB, which the pure-Python
    reader takes tens of seconds for on a loaded machine)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return [d for p in paths for d in yaml.load_all(p.read_text(), Loader=loader) if d]


def _webhook_wanted(hook: dict[str, Any]) -> bool:
    for rule in hook.get("rules", []):
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                name = resource.split("/")[0]
                if (group, name) in KUEUE_WEBHOOK_RESOURCES or (group, "*") in (
                    KUEUE_WEBHOOK_RESOURCES
                ):
                    return True
    return False


@dataclass
class SimulatedCluster:
    """The components above, started on a running :class:`ControlPlane` (which must
    have been started ``with_scheduler=True``)."""

    plane: ControlPlane
    home: Path
    kueue_webhook_port: int = 0
    components: dict[str, Any] = field(default_factory=dict)

    def start(self, timeout: float = 180.0) -> SimulatedCluster:
        if not any(p.name == "kube-scheduler" for p in self.plane.processes):
            raise ControlPlaneError("the simulated cluster needs ControlPlane(with_scheduler=True)")
        self.kueue_webhook_port = free_port()
        self._install_crds()
        self._start_kwok()
        self._start_kuberay(timeout)
        self._start_kueue(timeout)
        return self

    # -- what tests use ---------------------------------------------------------------------

    def add_gke_nodes(
        self, pools: list[NodePool] | None = None, timeout: float = 120.0
    ) -> list[str]:
        """GKE-shaped nodes kept by kwok (``support.gke_nodes``: the machine shapes of the
        data file ``tunix_rt/api/gke_machines.yaml``): ``pools``, else that file's own
        ``node_pools``. Returns their names once every one is Ready."""
        from support.gke_nodes import create_nodes, pool_nodes, simulated_cluster

        if pools is None:
            nodes = simulated_cluster()
        else:
            nodes = [
                n
                for p in pools
                for n in pool_nodes(p.name, p.machine, p.nodes, topology=p.topology)
            ]
        names = create_nodes(self.plane, nodes)
        self.wait_nodes_ready(names, timeout)
        # The TaintNodesByCondition admission plugin gives each new node this taint; the
        # node-lifecycle controller (off in this harness: kwok keeps no node lease) lifts it
        # once the node is Ready. One kubectl for every node (it fails if one lacks it).
        self.plane.kubectl("taint", "node", *names, f"{NOT_READY_TAINT}:NoSchedule-")
        return names

    def wait_nodes_ready(self, names: list[str], timeout: float = 120.0) -> None:
        """Wait until kwok has taken every node (its node-initialize stage stamps
        ``nodeInfo.kubeletVersion: kwok-<version>``) and it is Ready."""

        def taken(node: dict[str, Any]) -> bool:
            status = node.get("status", {})
            kubelet = str(status.get("nodeInfo", {}).get("kubeletVersion", ""))
            ready = any(
                c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", [])
            )
            return kubelet.startswith("kwok-") and ready

        def all_taken() -> bool:
            nodes = {n["metadata"]["name"]: n for n in self.plane.read("/api/v1/nodes")["items"]}
            return all(name in nodes and taken(nodes[name]) for name in names)

        wait_until(f"{len(names)} kwok nodes Ready", all_taken, timeout=timeout,
                   alive=self.plane.processes)  # fmt: skip

    def log(self, name: str) -> str:
        path = self.plane.root / "logs" / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # -- CRDs -------------------------------------------------------------------------------

    def _install_crds(self) -> None:
        manifests = self.home / "manifests"
        crds = _yaml_docs(*sorted((manifests / "kuberay-crds").glob("*.yaml")))
        webhooks = manifests / "kueue-webhooks"
        patches = _yaml_docs(webhooks / "kustomization.yaml")[0]["patches"]
        conversion = {
            d["metadata"]["name"]: d["spec"]["conversion"]
            for d in _yaml_docs(*(webhooks / Path(p["path"]).name for p in patches))
        }
        for crd in _yaml_docs(*sorted((manifests / "kueue-crds").glob("*.yaml"))):
            name = crd["metadata"]["name"]
            if name in conversion:  # Kueue converts v1beta1 <-> v1beta2 in its webhook
                webhook = dict(conversion[name]["webhook"])
                webhook["clientConfig"] = self._client_config("/convert")
                crd["spec"]["conversion"] = {"strategy": "Webhook", "webhook": webhook}
            crds.append(crd)
        # One server-side apply of them all (a JSON document each): a kubectl process per
        # CRD cost seconds each on a loaded machine.
        self.plane.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-",
                           input="\n---\n".join(json.dumps(c) for c in crds))  # fmt: skip
        self.plane.wait_established(*(c["metadata"]["name"] for c in crds))

    # -- kwok -------------------------------------------------------------------------------

    def _start_kwok(self) -> None:
        stages = self.plane.root / "kwok-stages.yaml"
        docs = _yaml_docs(*sorted((self.home / "manifests" / "kwok-stages").glob("*.yaml")))
        stages.write_text(yaml.safe_dump_all(docs))
        self.components["kwok"] = self.plane.spawn(
            "kwok",
            [
                f"--kubeconfig={self.plane.admin_kubeconfig}",
                f"--config={stages}",
                "--manage-all-nodes=false",
                f"--manage-nodes-with-annotation-selector={KWOK_ANNOTATION}=fake",
                "--cidr=10.0.0.1/16",
                "--node-ip=10.0.0.1",
                f"--server-address=127.0.0.1:{free_port()}",
                f"--node-port={free_port()}",
            ],
            executable=self.home / "bin" / "kwok",
        )

    # -- KubeRay ----------------------------------------------------------------------------

    def _start_kuberay(self, timeout: float) -> None:
        probe = free_port()
        self._start_controller(
            "ray-operator",
            "the KubeRay operator",
            probe,
            timeout,
            [
                "--metrics-addr=0",
                f"--health-probe-bind-address=127.0.0.1:{probe}",
                "--enable-leader-election=false",
                "--log-stdout-encoder=console",
                # Labels each multi-host replica's pods (ray.io/worker-group-replica-name),
                # which tunix-rt's slice affinity needs for more than one slice per group
                # (tunix_rt/kuberay/slices.py); off by default in KubeRay 1.5.
                "--feature-gates=RayMultiHostIndexing=true",
            ],
        )

    def _start_controller(
        self, binary: str, what: str, probe: int, timeout: float, args: list[str]
    ) -> Process:
        """A controller built into ``bin/``, logged in as the admin, once its health probe
        on ``probe`` answers /readyz."""
        proc = self.plane.spawn(
            binary, args, executable=self.home / "bin" / binary, env=self.plane.env()
        )
        self.components[binary] = proc
        wait_until(f"{what} /readyz", lambda: _http_ok(f"http://127.0.0.1:{probe}/readyz"),
                   timeout=timeout, alive=[proc])  # fmt: skip
        return proc

    # -- Kueue ------------------------------------------------------------------------------

    def _client_config(self, path: str) -> dict[str, str]:
        return {
            "url": f"https://127.0.0.1:{self.kueue_webhook_port}{path}",
            "caBundle": base64.b64encode(self._kueue_certs().ca.read_bytes()).decode(),
        }

    def _kueue_certs(self) -> Certificates:
        """A CA for Kueue's webhooks as Kueue's certificate manager (open-policy-agent's
        cert-controller) accepts one rather than replacing it: valid beyond its 90-day
        look-ahead, the CA named ``kueue-ca`` (it verifies the CA for that name)."""
        if "kueue-pki" not in self.components:
            self.components["kueue-pki"] = Certificates(
                self.plane.root / "kueue-pki", days=365, ca_dns_names=(KUEUE_CA_NAME,)
            )
        certs: Certificates = self.components["kueue-pki"]
        return certs

    def _kueue_secret(self, cert_dir: Path) -> dict[str, Any]:
        """The Secret Kueue keeps its webhook certificate in, and the files a pod would have
        from it mounted at ``cert_dir`` (Kueue waits for them there)."""
        certs = self._kueue_certs()
        service = f"{KUEUE_WEBHOOK_SERVICE}.{KUEUE_NAMESPACE}.svc"
        pair = certs.issue("kueue-webhook", service, dns_names=(service,))
        cert_dir.mkdir(parents=True, exist_ok=True)
        for name, source in (("ca.crt", certs.ca), ("tls.crt", pair.cert), ("tls.key", pair.key)):
            (cert_dir / name).write_bytes(source.read_bytes())

        def b64(path: Path) -> str:
            return base64.b64encode(path.read_bytes()).decode()

        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": KUEUE_WEBHOOK_SECRET, "namespace": KUEUE_NAMESPACE},
            "data": {
                "ca.crt": b64(certs.ca),
                "ca.key": b64(certs.ca_key),
                "tls.crt": b64(pair.cert),
                "tls.key": b64(pair.key),
            },
        }

    def _kueue_webhooks(self) -> list[dict[str, Any]]:
        configs = _yaml_docs(self.home / "manifests" / "kueue-webhooks" / "manifests.yaml")
        kinds = {"MutatingWebhookConfiguration": "mutating",
                 "ValidatingWebhookConfiguration": "validating"}  # fmt: skip
        base = KUEUE_WEBHOOK_SERVICE.removesuffix("-webhook-service")
        out = []
        for config in configs:
            hooks = []
            for hook in config["webhooks"]:
                if not _webhook_wanted(hook):
                    continue
                path = hook["clientConfig"]["service"]["path"]
                hooks.append({**hook, "clientConfig": self._client_config(path)})
            name = f"{base}-{kinds[config['kind']]}-webhook-configuration"
            out.append({**config, "metadata": {"name": name}, "webhooks": hooks})
        return out

    def _start_kueue(self, timeout: float) -> None:
        root = self.plane.root / "kueue"
        root.mkdir(parents=True, exist_ok=True)
        self.plane.kubectl("create", "namespace", KUEUE_NAMESPACE)
        self.plane.apply(self._kueue_secret(root / "serving-certs"))
        for config in self._kueue_webhooks():
            self.plane.apply(config)
        probe = free_port()
        config = {
            "apiVersion": "config.kueue.x-k8s.io/v1beta2",
            "kind": "Configuration",
            "namespace": KUEUE_NAMESPACE,
            "health": {"healthProbeBindAddress": f"127.0.0.1:{probe}"},
            "metrics": {"bindAddress": "0"},
            "webhook": {
                "port": self.kueue_webhook_port,
                "host": "127.0.0.1",
                "certDir": str(root / "serving-certs"),
            },
            "leaderElection": {"leaderElect": False},
            "internalCertManagement": {
                "enable": True,
                "webhookServiceName": KUEUE_WEBHOOK_SERVICE,
                "webhookSecretName": KUEUE_WEBHOOK_SECRET,
            },
            "integrations": {"frameworks": list(KUEUE_FRAMEWORKS)},
        }
        config_path = root / "config.yaml"
        config_path.write_text(yaml.safe_dump(config))
        proc = self._start_controller(
            "kueue",
            "Kueue",
            probe,
            timeout,
            [
                f"--config={config_path}",
                # The visibility API (pending workloads) needs an APIService and its own
                # serving port; nothing here reads it.
                "--feature-gates=VisibilityOnDemand=false",
            ],
        )
        # Its webhooks answer through the API server: a server-side dry run calls them.
        flavor = {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ResourceFlavor",
                  "metadata": {"name": "harness-probe"}}  # fmt: skip
        wait_until(
            "Kueue's webhooks, called by the API server",
            lambda: self.plane.apply(flavor, "--dry-run=server", check=False).returncode == 0,
            timeout=timeout,
            alive=[proc],
        )


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as resp:
        return bool(resp.status == 200)


@contextlib.contextmanager
def start_simulated_cluster() -> Iterator[SimulatedCluster]:
    """A control plane with kube-scheduler, plus kwok, KubeRay and Kueue; all stopped (and
    the folder removed) afterwards."""
    home = cluster_home()
    with control_plane(with_scheduler=True) as plane:
        yield SimulatedCluster(plane, home).start()
