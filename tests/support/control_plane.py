"""A real Kubernetes control plane for the tests, as plain processes on loopback.

etcd, kube-apiserver and kube-controller-manager (and, when asked, kube-scheduler), built
from Go modules by ``scripts/control-plane/build.sh``, started the way controller-runtime's
envtest starts them: generated certificates, one client identity per component, RBAC
authorization and the admission plugins a GKE cluster enables. ``ControlPlane.start()``
waits until the API server is ready and its garbage collector and namespace controller run;
``stop()`` leaves no process behind.

A missing binary is an error, never a skip: the tests that use this must run everywhere
``make test`` runs.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import ipaddress
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from support import images
from support.net import free_port, free_ports
from support.readme import kubernetes_quick_path

REPO = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / "scripts" / "control-plane" / "build.sh"
BINARIES = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubectl",
    "helm",
)

# What GKE enables besides the API server's defaults (GKE's documented admission plugins).
ADMISSION_PLUGINS = ",".join(
    [
        "NamespaceLifecycle",
        "LimitRanger",
        "ServiceAccount",
        "DefaultTolerationSeconds",
        "DefaultStorageClass",
        "StorageObjectInUseProtection",
        "PersistentVolumeClaimResize",
        "RuntimeClass",
        "Priority",
        "PodSecurity",
        "NodeRestriction",
        "TaintNodesByCondition",
        "MutatingAdmissionWebhook",
        "ValidatingAdmissionWebhook",
        "ValidatingAdmissionPolicy",
        "ResourceQuota",
    ]
)


# Every request made with a ServiceAccount's token (the operator's among them), and every
# Sweep create by anyone, one JSON line each, so a test or benchmark can count what the
# operator asked of the server and time create -> RayJob on the server's own clock.
AUDIT_POLICY = """apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived, ResponseStarted]
rules:
  - level: Metadata
    userGroups: ["system:serviceaccounts"]
  - level: Metadata
    verbs: ["create"]
    resources: [{group: tunixrt.io, resources: [sweeps]}]
  - level: None
"""


PR_SET_PDEATHSIG = 1  # prctl(2)
KINDS = {
    "sweep": "/apis/tunixrt.io/v1alpha1/namespaces/{namespace}/sweeps",
    "rehearsal": "/apis/tunixrt.io/v1alpha1/namespaces/{namespace}/rehearsals",
    "rayjob": "/apis/ray.io/v1/namespaces/{namespace}/rayjobs",
    "raycluster": "/apis/ray.io/v1/namespaces/{namespace}/rayclusters",
    "pod": "/api/v1/namespaces/{namespace}/pods",
    "workload": "/apis/kueue.x-k8s.io/v1beta2/namespaces/{namespace}/workloads",
}
"""The API path of each kind the tests read (:meth:`ControlPlane.get_object`)."""


class ControlPlaneError(RuntimeError):
    """The control plane could not be built or started (its log tail is in the message)."""


def binaries_dir() -> Path:
    """The folder of built binaries: ``$TUNIX_RT_CONTROL_PLANE_BIN``, else the build script's
    cache (built now when missing; a second call returns at once)."""
    given = os.environ.get("TUNIX_RT_CONTROL_PLANE_BIN")
    folder = Path(given) if given else run_build_script()
    missing = [b for b in BINARIES if not os.access(folder / b, os.X_OK)]
    if missing:
        raise ControlPlaneError(
            f"missing control-plane binaries in {folder}: {', '.join(missing)}; "
            "run `make control-plane` (scripts/control-plane/build.sh)"
        )
    return folder


def run_build_script(script: Path = BUILD_SCRIPT) -> Path:
    """Run a build script of scripts/control-plane (a cache hit returns at once); the folder
    it prints last."""
    proc = subprocess.run(
        ["bash", str(script)], capture_output=True, text=True, check=False, timeout=3600
    )
    if proc.returncode != 0:
        raise ControlPlaneError(f"{script} failed:\n{proc.stderr[-4000:]}")
    return Path(proc.stdout.strip().splitlines()[-1])


# -- certificates ---------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyPair:
    cert: Path
    key: Path


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _write_key(key: rsa.RSAPrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


class Certificates:
    """A CA and the certificates signed by it, written under ``folder``."""

    def __init__(self, folder: Path, *, days: int = 2, ca_dns_names: tuple[str, ...] = ()) -> None:
        self.folder = folder
        self.days = days
        folder.mkdir(parents=True, exist_ok=True)
        self._ca_key = _key()
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tunix-rt-test-ca")])
        builder = self._builder(name, self._ca_key.public_key(), name).add_extension(
            x509.BasicConstraints(ca=True, path_length=None), critical=True
        )
        if ca_dns_names:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(n) for n in ca_dns_names]),
                critical=False,
            )
        self._ca = builder.sign(self._ca_key, hashes.SHA256())
        self.ca = folder / "ca.crt"
        self.ca.write_bytes(self._ca.public_bytes(serialization.Encoding.PEM))
        _write_key(self._ca_key, folder / "ca.key")
        self.ca_key = folder / "ca.key"

    def _builder(
        self, subject: x509.Name, public: Any, issuer: x509.Name
    ) -> x509.CertificateBuilder:
        now = dt.datetime.now(dt.UTC)
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=self.days))
        )

    def issue(
        self,
        stem: str,
        common_name: str,
        *,
        groups: tuple[str, ...] = (),
        dns_names: tuple[str, ...] = (),
    ) -> KeyPair:
        """A client and serving certificate for 127.0.0.1/localhost and ``dns_names``
        (``O=`` the groups)."""
        key = _key()
        attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
        attrs += [x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in groups]
        names = ("localhost", "kubernetes.default.svc", *dns_names)
        sans = x509.SubjectAlternativeName(
            [
                *(x509.DNSName(n) for n in names),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            ]
        )
        cert = (
            self._builder(x509.Name(attrs), key.public_key(), self._ca.subject)
            .add_extension(sans, critical=False)
            .sign(self._ca_key, hashes.SHA256())
        )
        pair = KeyPair(self.folder / f"{stem}.crt", self.folder / f"{stem}.key")
        pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(key, pair.key)
        return pair

    def signing_key(self, stem: str) -> tuple[Path, Path]:
        """A service-account signing key pair (private, public)."""
        key = _key()
        private, public = self.folder / f"{stem}.key", self.folder / f"{stem}.pub"
        _write_key(key, private)
        public.write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        return private, public


def kubeconfig(server: str, ca: Path, *, pair: KeyPair | None = None, token: str = "") -> str:
    """A kubeconfig for one identity: a client certificate or a bearer token."""
    user: dict[str, str] = (
        {"token": token}
        if token
        else {
            "client-certificate": str(pair.cert) if pair else "",
            "client-key": str(pair.key) if pair else "",
        }
    )
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "test", "cluster": {"server": server, "certificate-authority": str(ca)}}
        ],
        "users": [{"name": "test", "user": user}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}],
        "current-context": "test",
    }
    return yaml.safe_dump(config)


# -- processes ------------------------------------------------------------------------------


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def stop(self, timeout: float = 15.0) -> None:
        if self.popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout)


def die_with_parent() -> None:
    """In the child before exec: the kernel kills it when the test process dies, however
    it dies (a pytest timeout, kill -9), so no server outlives its test run."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def wait_until(
    what: str, probe: Callable[[], bool], *, timeout: float, alive: Sequence[Process] = ()
) -> None:
    """Poll ``probe`` until it holds; fail early, with its log, when a process dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in alive:
            if proc.popen.poll() is not None:
                raise ControlPlaneError(
                    f"{proc.name} exited while waiting for {what}:\n{proc.tail()}"
                )
        with contextlib.suppress(Exception):
            if probe():
                return
        time.sleep(0.2)
    logs = "\n".join(f"--- {p.name}\n{p.tail()}" for p in alive)
    raise ControlPlaneError(f"timed out after {timeout:.0f} s waiting for {what}\n{logs}")


@dataclass
class ControlPlane:
    """etcd + kube-apiserver + kube-controller-manager (+ kube-scheduler) on loopback."""

    bin: Path
    root: Path
    with_scheduler: bool = False
    processes: list[Process] = field(default_factory=list)
    server: str = ""
    certs: Certificates | None = None
    admin_kubeconfig: Path = Path()
    _tls: ssl.SSLContext | None = field(default=None, repr=False)

    # -- lifecycle --------------------------------------------------------------------------

    def start(self, timeout: float = 180.0) -> ControlPlane:
        certs = self.certs = Certificates(self.root / "pki")
        serving = certs.issue("apiserver", "kube-apiserver")
        admin = certs.issue("admin", "tunix-rt-test-admin", groups=("system:masters",))
        manager = certs.issue("controller-manager", "system:kube-controller-manager")
        scheduler = certs.issue("scheduler", "system:kube-scheduler")
        sa_private, sa_public = certs.signing_key("service-account")

        etcd_port, etcd_peer, api_port = free_ports(3)
        etcd_url = f"http://127.0.0.1:{etcd_port}"
        self.server = f"https://127.0.0.1:{api_port}"
        self.admin_kubeconfig = self._write(
            "admin.kubeconfig", kubeconfig(self.server, certs.ca, pair=admin)
        )
        manager_kc = self._write(
            "controller-manager.kubeconfig", kubeconfig(self.server, certs.ca, pair=manager)
        )
        scheduler_kc = self._write(
            "scheduler.kubeconfig", kubeconfig(self.server, certs.ca, pair=scheduler)
        )

        etcd = self.spawn(
            "etcd",
            [
                f"--data-dir={self.root / 'etcd'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls=http://127.0.0.1:{etcd_peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer}",
                f"--initial-cluster=default=http://127.0.0.1:{etcd_peer}",
                "--unsafe-no-fsync",  # a test store: durability is not what is tested here
                "--log-level=warn",
            ],
        )
        wait_until("etcd", lambda: _http_ok(f"{etcd_url}/health"), timeout=60, alive=[etcd])

        apiserver = self.spawn(
            "kube-apiserver",
            [
                f"--etcd-servers={etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={api_port}",
                f"--tls-cert-file={serving.cert}",
                f"--tls-private-key-file={serving.key}",
                f"--client-ca-file={certs.ca}",
                "--authorization-mode=RBAC",
                f"--enable-admission-plugins={ADMISSION_PLUGINS}",
                "--service-cluster-ip-range=10.96.0.0/16",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={sa_public}",
                f"--service-account-signing-key-file={sa_private}",
                "--allow-privileged=true",
                f"--cert-dir={self.root / 'apiserver-certs'}",
                f"--audit-policy-file={self._write('audit-policy.yaml', AUDIT_POLICY)}",
                f"--audit-log-path={self.audit_log}",
                "--audit-log-format=json",
                "--audit-log-maxsize=0",
                "--v=1",
            ],
        )
        wait_until(
            "kube-apiserver /readyz",
            lambda: self._readyz(),
            timeout=timeout,
            alive=[etcd, apiserver],
        )
        manager_proc = self.spawn(
            "kube-controller-manager",
            [
                f"--kubeconfig={manager_kc}",
                f"--authentication-kubeconfig={manager_kc}",
                f"--authorization-kubeconfig={manager_kc}",
                "--use-service-account-credentials=true",
                f"--service-account-private-key-file={sa_private}",
                f"--root-ca-file={certs.ca}",
                f"--cluster-signing-cert-file={certs.ca}",
                f"--cluster-signing-key-file={certs.ca_key}",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                f"--secure-port={free_port()}",
                "--controllers=*,-nodeipam,-nodelifecycle,-cloud-node-lifecycle,-service-lb-controller,-node-route-controller",
                "--concurrent-gc-syncs=5",
                "--v=1",
            ],
        )
        if self.with_scheduler:
            self.spawn(
                "kube-scheduler",
                [
                    f"--kubeconfig={scheduler_kc}",
                    f"--authentication-kubeconfig={scheduler_kc}",
                    f"--authorization-kubeconfig={scheduler_kc}",
                    "--leader-elect=false",
                    "--bind-address=127.0.0.1",
                    f"--secure-port={free_port()}",
                    "--v=1",
                ],
            )
        # The service-account controller creates each namespace's `default` ServiceAccount:
        # once it has, the controller manager's informers run.
        wait_until(
            "kube-controller-manager (the default ServiceAccount exists)",
            lambda: (
                self.kubectl(
                    "-n", "default", "get", "serviceaccount", "default", check=False
                ).returncode
                == 0
            ),
            timeout=timeout,
            alive=[etcd, apiserver, manager_proc],
        )
        return self

    def stop(self) -> None:
        for proc in reversed(self.processes):
            proc.stop()
        self.processes.clear()

    def assert_alive(self) -> None:
        dead = [p for p in self.processes if p.popen.poll() is not None]
        if dead:
            raise ControlPlaneError(
                "\n".join(f"{p.name} exited ({p.popen.returncode}):\n{p.tail()}" for p in dead)
            )

    @property
    def audit_log(self) -> Path:
        return self.root / "logs" / "audit.jsonl"

    def audit_events(self) -> list[dict[str, Any]]:
        """Every audited request (see AUDIT_POLICY), in order; a torn last line is skipped."""
        if not self.audit_log.exists():
            return []
        found = []
        for line in self.audit_log.read_text().splitlines():
            with contextlib.suppress(ValueError):
                found.append(json.loads(line))
        return found

    def requests_by(self, username: str) -> list[dict[str, Any]]:
        """The audited requests of one user (e.g. system:serviceaccount:NS:NAME), in order."""
        return [e for e in self.audit_events() if e.get("user", {}).get("username") == username]

    # -- clients ----------------------------------------------------------------------------

    def env(self, kubeconfig_path: Path | None = None) -> dict[str, str]:
        """The environment for kubectl/helm/the operator: PATH with the binaries first."""
        env = dict(os.environ)
        env["KUBECONFIG"] = str(kubeconfig_path or self.admin_kubeconfig)
        env["PATH"] = f"{self.bin}{os.pathsep}{env.get('PATH', '')}"
        env["HELM_CACHE_HOME"] = str(self.root / "helm" / "cache")
        env["HELM_CONFIG_HOME"] = str(self.root / "helm" / "config")
        env["HELM_DATA_HOME"] = str(self.root / "helm" / "data")
        env.pop("KUBERNETES_SERVICE_HOST", None)
        return env

    def run(
        self,
        tool: str,
        *args: str,
        check: bool = True,
        input: str | None = None,
        kubeconfig_path: Path | None = None,
        timeout: float = 180.0,
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(self.bin / tool), *args],
            env=self.env(kubeconfig_path),
            capture_output=True,
            text=True,
            input=input,
            check=False,
            timeout=timeout,
            cwd=REPO,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"{tool} {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    def kubectl(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return self.run("kubectl", *args, **kwargs)

    def helm(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return self.run("helm", *args, **kwargs)

    def images_values(self, registry: str = images.REGISTRY) -> str:
        """A values file as ``make images REGISTRY=registry`` writes it (nothing pulls the
        images here: no pod runs), for ``helm install -f``; the chart refuses to install
        without one."""
        path = self.root / f"images-{registry.replace('/', '_')}.values.yaml"
        path.write_text(yaml.safe_dump(images.built_values(registry)))
        return str(path)

    def install_as_readme(self) -> None:
        """The README's "Run on Kubernetes" block up to its first ``kubectl apply``: the
        images' values, namespaces, Secrets, ``helm install`` (the rest is the user's)."""
        written: dict[str, str] = {}
        for command in kubernetes_quick_path():
            if command[0] == "kubectl" and "apply" in command:
                return
            if command[0] == "make":
                registry = images.registry_of(command)
                written[images.script().VALUES_FILE] = self.images_values(registry)
                continue
            self.run(command[0], *[written.get(arg, arg) for arg in command[1:]])

    def get_json(self, *args: str, **kwargs: Any) -> Any:
        return json.loads(self.kubectl("get", *args, "-o", "json", **kwargs).stdout)

    def apply(
        self, manifest: str | dict[str, Any], *args: str, **kwargs: Any
    ) -> subprocess.CompletedProcess[str]:
        text = manifest if isinstance(manifest, str) else json.dumps(manifest)  # JSON is YAML
        return self.kubectl("apply", "-f", "-", *args, input=text, **kwargs)

    def wait_established(self, *crds: str, timeout: float = 120.0) -> None:
        """Wait until each CRD is Established (``kubectl wait`` fails on a CRD whose status
        the server has not written yet, so poll)."""

        def established(name: str) -> bool:
            crd = self.read(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
            conditions = (crd or {}).get("status", {}).get("conditions") or []
            return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)

        wait_until(f"CRDs {', '.join(crds)} Established",
                   lambda: all(established(c) for c in crds), timeout=timeout,
                   alive=self.processes)  # fmt: skip

    def token_kubeconfig(self, namespace: str, service_account: str, name: str) -> Path:
        """A kubeconfig that acts as a ServiceAccount (a token the API server issued)."""
        token = self.kubectl(
            "-n", namespace, "create", "token", service_account, "--duration=2h"
        ).stdout.strip()
        assert self.certs is not None
        return self._write(
            f"{name}.kubeconfig", kubeconfig(self.server, self.certs.ca, token=token)
        )

    def request(
        self, method: str, path: str, body: bytes = b"", content_type: str = "application/json"
    ) -> tuple[int, dict[str, Any]]:
        """One request as the admin (status code, decoded body): for checks a kubectl
        invocation each would make slow, such as hundreds of server-side dry runs."""
        req = urllib.request.Request(
            f"{self.server}{path}", data=body or None, method=method,
            headers={"Content-Type": content_type, "Accept": "application/json"},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(req, context=self._admin_tls(), timeout=30) as resp:
                return resp.status, json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    def read(self, path: str) -> Any:
        """GET an API ``path`` as the admin: the object (or list) as ``kubectl get -o json``
        prints it, None when there is none (404). For probes polled every 0.2 s: a kubectl
        process costs ~0.06 CPU-s, a request here ~0.002."""
        code, body = self.request("GET", path)
        if code == 404:
            return None
        if code != 200:
            raise ControlPlaneError(f"GET {path}: {code} {body.get('message')}")
        return body

    def get_object(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """One object of ``kind`` (a key of :data:`KINDS`) as ``kubectl get -o json`` prints
        it, None when there is none: :meth:`read`, for the probes the tests poll."""
        found = self.read(f"{KINDS[kind].format(namespace=namespace)}/{name}")
        return dict(found) if found is not None else None

    def list_items(self, kind: str, namespace: str, selector: str = "") -> list[dict[str, Any]]:
        """The objects of ``kind`` in ``namespace`` (those with labels ``selector``)."""
        query = f"?labelSelector={selector}" if selector else ""
        return list(self.read(KINDS[kind].format(namespace=namespace) + query)["items"])

    # -- internals --------------------------------------------------------------------------

    def _write(self, name: str, text: str) -> Path:
        path = self.root / name
        path.write_text(text)
        path.chmod(0o600)
        return path

    def spawn(
        self,
        name: str,
        args: list[str],
        *,
        executable: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> Process:
        """Start a component (``executable``, default ``bin/name``) that stops with the
        plane: logged to logs/NAME.log, killed by the kernel if the test process dies."""
        log = self.root / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            popen = subprocess.Popen(
                [str(executable or self.bin / name), *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        proc = Process(name, popen, log)
        self.processes.append(proc)
        return proc

    def _admin_tls(self) -> ssl.SSLContext:
        """TLS as the admin (the server checked against the CA), built once per plane."""
        if self._tls is None:
            assert self.certs is not None
            self._tls = ssl.create_default_context(cafile=str(self.certs.ca))
            self._tls.load_cert_chain(
                self.certs.folder / "admin.crt", self.certs.folder / "admin.key"
            )
        return self._tls

    def _readyz(self) -> bool:
        url = f"{self.server}/readyz"
        with urllib.request.urlopen(url, context=self._admin_tls(), timeout=5) as resp:
            return bool(resp.status == 200)


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as resp:
        return bool(resp.status == 200)


@contextlib.contextmanager
def control_plane(*, with_scheduler: bool = False) -> Iterator[ControlPlane]:
    """Start a control plane in a fresh folder; stop it and remove the folder afterwards."""
    root = Path(tempfile.mkdtemp(prefix="tunix-rt-cp-"))
    plane = ControlPlane(bin=binaries_dir(), root=root, with_scheduler=with_scheduler)
    try:
        yield plane.start()
    finally:
        plane.stop()
        shutil.rmtree(root, ignore_errors=True)


# -- the operator as the chart runs it ------------------------------------------------------


@dataclass
class ChartOperator:
    """``tunix-rt operator`` as a local process with the chart Deployment's arguments and
    environment, logged in as the chart's ServiceAccount (a token, not admin).

    Only what a pod has and a process here cannot is replaced: the liveness, metrics and
    web view ports (free loopback ports) and, where given, the store (``storage``).
    """

    plane: ControlPlane
    namespace: str = "tunix-rt-system"
    deployment: str = "tunix-rt"
    storage: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    popen: subprocess.Popen[bytes] | None = None
    log: Path = Path()
    ui_url: str | None = None
    """Where the web view listens, when the Deployment serves it (``ui.enabled``)."""

    def command(self) -> tuple[list[str], dict[str, str]]:
        deploy = self.plane.get_json("deployment", self.deployment, "-n", self.namespace)
        container = deploy["spec"]["template"]["spec"]["containers"][0]
        sa = deploy["spec"]["template"]["spec"]["serviceAccountName"]
        args = list(container["args"])
        live, metrics, ui = free_ports(3)
        for flag, value in (("--liveness", f"http://127.0.0.1:{live}/healthz"),
                            ("--metrics-port", str(metrics))):  # fmt: skip
            args[args.index(flag) + 1] = value
        if "--ui-port" in args:  # the web view (ui.enabled): a free port, on loopback
            args[args.index("--ui-port") + 1] = str(ui)
            args += ["--ui-host", "127.0.0.1"]
            self.ui_url = f"http://127.0.0.1:{ui}/"
        env = {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}
        if self.storage:
            env["TUNIX_RT_DEFAULT_STORAGE"] = self.storage
        kc = self.plane.token_kubeconfig(self.namespace, sa, f"operator-{sa}")
        full = self.plane.env(kc) | env | self.extra_env
        argv = [sys.executable, "-c", "from tunix_rt.cli import main; main()", "operator", *args]
        return argv, full

    def liveness_url(self, argv: list[str]) -> str:
        return argv[argv.index("--liveness") + 1]

    def start(self, timeout: float = 90.0) -> ChartOperator:
        argv, env = self.command()
        self.log = self.plane.root / "logs" / f"operator-{free_port()}.log"
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(
                argv, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=REPO, start_new_session=True,
            )  # fmt: skip
        proc = Process("operator", self.popen, self.log)
        wait_until("the operator's /healthz", lambda: _http_ok(self.liveness_url(argv)),
                   timeout=timeout, alive=[proc])  # fmt: skip
        return self

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the operator (default SIGKILL, as a node loss) and wait for it."""
        if self.popen is not None and self.popen.poll() is None:
            os.killpg(self.popen.pid, sig)
            self.popen.wait(60)
        self.popen = None


def wait_for_json(
    plane: ControlPlane, what: str, probe: Callable[[], Any], *, timeout: float = 60.0
) -> Any:
    """Poll ``probe`` (reads from the API server) until it returns something truthy."""
    found: list[Any] = []

    def check() -> bool:
        value = probe()
        if value:
            found.append(value)
        return bool(value)

    wait_until(what, check, timeout=timeout, alive=plane.processes)
    return found[-1]
