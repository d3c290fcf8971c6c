"""Runs the simulated cluster's RayJobs as local processes, in place of the pods KubeRay made.

Nothing runs in a pod here (kwok marks pods Running). For each RayJob the real KubeRay
operator has taken to ``jobDeploymentStatus: Running`` (its RayCluster's pods placed, its
submitter Job made), the runner does what those pods would:

- the head pod's ``ray start --head --block``: one local Ray node offering the RayCluster's
  resources, every pod's CPUs, GPUs and custom resources added up as its ``rayStartParams``
  (else its container limits) state them;
- the submitter pod's ``ray job submit``: the RayJob's own ``spec.entrypoint``, unchanged,
  with ``spec.runtimeEnvYAML``'s env_vars and ``RAY_ADDRESS`` of that node;
- KubeRay's job-status loop. KubeRay asks the head's dashboard for the job's state and
  cannot reach it here (no cluster DNS, no pod network), so its Running branch returns at
  GetJobInfo each time and writes nothing. The runner writes through the status
  subresource what that branch writes from the dashboard's answer (rayjob_controller.go,
  KubeRay v1.5.0): ``jobStatus: RUNNING`` with ``rayJobInfo.startTime``; at the driver's
  exit ``SUCCEEDED`` or ``FAILED``, ``jobDeploymentStatus`` Complete or Failed (reason
  ``AppFailed``), Ray's job message and ``rayJobInfo.endTime``. KubeRay's own Complete and
  Failed branch takes over from there.

The head pod deleted: its containers die with it, so the local node and the driver are
killed (SIGKILL). KubeRay v1.5.0 does not make a new head for a RayJob's RayCluster
("Found 0 head Pods for a RayJob-managed RayCluster; skipping head creation to let RayJob
controller handle the failure", raycluster_controller.go). The submitter's ``ray job logs
--follow`` has lost its head, and each retry of its Job finds no head to ask
(``ray job status || ray job submit``, common/job.go): the runner marks every submitter pod
that runs without a head Failed (exit code 1), the Job controller retries it up to its
backoffLimit (2, KubeRay's default) and fails the Job, and KubeRay fails the RayJob
(SubmissionFailed). Were a new head to come up, the next submitter pod would submit the job
again: the runner then runs the entrypoint again on a new local node.

With ``per_pod=True`` the head's node offers only the head pod's resources (tunix-rt's head
takes no trials) and every running worker pod is its own local node joined to it, started
when the pod runs and killed (SIGKILL) when the pod goes: a worker pod deleted mid-trial
loses its node as a preempted GKE node would, and the pod KubeRay makes in its place joins
as a new node. Off by default: one node per cluster starts faster on 2 cores.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from support.control_plane import ControlPlane
from support.net import free_ports

RAY_LOG_TAIL = 20_000
"""Ray's job message carries the driver's last 20,000 characters of output on failure."""
SUBMITTER_EXIT = 1
"""``ray job logs --follow`` exits 1 when its head goes away."""
TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")
NODE_START_TIMEOUT = 180.0
"""A loaded machine can take a minute to start a Ray node."""
NODE_START_ATTEMPTS = 3
"""``ray start`` gives up when its raylet has not registered within a fixed 30 s
(ray/_private/node.py, "timed out during startup"), which a loaded machine can take: such
a node is started again, as the pod's container would be restarted."""
NODE_ENV = {
    "RAY_AUTH_MODE": "disabled",
    "RAY_worker_niceness": "0",
    # A node whose processes were killed refuses the head's health checks at once: it is
    # declared dead after 5 refused checks 1 s apart (Ray's default: 3 s apart, ~15 s
    # or more), so Ray Tune retries its trial elsewhere that much sooner. A live node
    # still has 5 s to answer each check, 5 times in a row.
    "RAY_health_check_period_ms": "1000",
    "RAY_health_check_timeout_ms": "5000",
    "RAY_health_check_failure_threshold": "5",
}
"""Ray 2.60's ``ray start --head`` turns token authentication on when ``~/.ray/auth_token``
exists, which any local ``ray.init()`` on this machine (a local sweep, other tests) writes;
a driver given ``RAY_ADDRESS`` never turns it on, so it could not connect. A head pod's
home has no token, so there the cluster runs without it, as here. Workers at nice 0, as
tunix-rt's own local Ray starts them (tune/driver.py): a pod has its CPUs to itself, this
machine does not."""


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _quantity(value: Any) -> float:
    text = str(value)
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


def pod_resources(group: dict[str, Any]) -> tuple[float, float, dict[str, float]]:
    """(CPUs, GPUs, custom resources) one pod of a head or worker group gives Ray, as
    ``ray start`` in that pod would count them."""
    params = group.get("rayStartParams") or {}
    limits = group["template"]["spec"]["containers"][0].get("resources", {}).get("limits", {})
    cpus = _quantity(params.get("num-cpus", limits.get("cpu", 0)))
    gpus = _quantity(params.get("num-gpus", limits.get("nvidia.com/gpu", 0)))
    custom = {k: float(v) for k, v in json.loads(params.get("resources") or "{}").items()}
    if "google.com/tpu" in limits and "TPU" not in custom:
        custom["TPU"] = _quantity(limits["google.com/tpu"])
    return cpus, gpus, custom


def cluster_resources(spec: dict[str, Any]) -> tuple[int, int, dict[str, float]]:
    """What a Ray cluster of ``rayClusterSpec``'s pods offers, added up over every pod."""
    groups = [(spec["headGroupSpec"], 1)]
    groups += [(g, g.get("replicas", 0) * g.get("numOfHosts", 1)) for g in spec["workerGroupSpecs"]]
    cpus = gpus = 0.0
    custom: dict[str, float] = {}
    for group, pods in groups:
        c, g, r = pod_resources(group)
        cpus, gpus = cpus + c * pods, gpus + g * pods
        for key, value in r.items():
            custom[key] = custom.get(key, 0.0) + value * pods
    return int(cpus), int(gpus), custom


@dataclass
class JobRun:
    """One RayJob's local run: its submissions (one each time the job was submitted)."""

    name: str
    uid: str
    folder: Path
    head_uid: str = ""
    failed_submitters: set[str] = field(default_factory=set)
    submissions: int = 0
    node: subprocess.Popen[bytes] | None = None
    driver: subprocess.Popen[bytes] | None = None
    exit_codes: list[int] = field(default_factory=list)
    finished: bool = False
    ray_temp: list[Path] = field(default_factory=list)
    head_address: str = ""
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    """Worker pod uid → its local node (``per_pod`` runs only)."""
    worker_pods: list[str] = field(default_factory=list)
    """Every worker pod that got a node, in order (a replaced pod adds its successor)."""

    @property
    def log(self) -> Path:
        return self.folder / f"driver-{self.submissions}.log"

    def kill(self) -> None:
        """Every process group at once, as a pod's containers die with it."""
        for proc in (self.driver, *self.workers.values(), self.node):
            kill_group(proc)
        self.driver = self.node = None
        self.workers.clear()
        for temp in self.ray_temp:
            shutil.rmtree(temp, ignore_errors=True)


def kill_group(proc: subprocess.Popen[bytes] | None) -> None:
    """SIGKILL a node's or driver's whole process group (its Ray workers too)."""
    if proc is not None and proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)


@dataclass
class RayJobRunner:
    """Polls ``namespace``'s RayJobs and runs them (module docstring); a thread."""

    plane: ControlPlane
    namespace: str
    per_pod: bool = False
    runs: dict[str, JobRun] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> RayJobRunner:
        self._thread = threading.Thread(target=self._loop, name="rayjob-runner", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(60)
        for run in self.runs.values():
            run.kill()

    def run_of(self, rayjob: str) -> JobRun | None:
        """The latest run of the RayJob named ``rayjob``."""
        found = [r for r in self.runs.values() if r.name == rayjob]
        return found[-1] if found else None

    # -- the loop ---------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._tick()
            except Exception as exc:  # one bad poll (a server hiccup) is retried
                self.errors.append(repr(exc))
            self._stop.wait(0.5)

    def _get(self, path: str) -> dict[str, Any]:
        """:meth:`ControlPlane.read`; an object gone is an error here (the poll is retried)."""
        found = self.plane.read(path)
        if found is None:
            raise RuntimeError(f"GET {path}: 404, not found")
        return dict(found)

    def _running_pods(self, selector: str) -> list[dict[str, Any]]:
        """The pods of ``selector`` that run now (bound, Running, not being deleted)."""
        path = f"/api/v1/namespaces/{self.namespace}/pods?labelSelector={selector}"
        return [p for p in self._get(path)["items"] if p["status"].get("phase") == "Running"
                and not p["metadata"].get("deletionTimestamp")]  # fmt: skip

    def _tick(self) -> None:
        jobs = self._get(f"/apis/ray.io/v1/namespaces/{self.namespace}/rayjobs")["items"]
        present = {j["metadata"]["uid"]: j for j in jobs}
        for uid, run in self.runs.items():
            if uid not in present and not run.finished:
                run.kill()  # the RayJob and its pods are gone
                run.finished = True
        for uid, job in present.items():
            run = self.runs.get(uid)
            if run is None:
                self._maybe_start(job)
            elif not run.finished:
                self._follow(job, run)

    def _running_head(self, job: dict[str, Any]) -> dict[str, Any] | None:
        cluster = (job.get("status") or {}).get("rayClusterName")
        if not cluster:
            return None
        heads = self._running_pods(f"ray.io/cluster={cluster},ray.io/node-type=head")
        return heads[0] if heads else None

    def _submitters(self, job: dict[str, Any]) -> list[dict[str, Any]]:
        """The RayJob's submitter pods that run now."""
        return self._running_pods(f"batch.kubernetes.io/job-name={job['metadata']['name']}")

    def _maybe_start(self, job: dict[str, Any]) -> None:
        status = job.get("status") or {}
        if status.get("jobDeploymentStatus") != "Running" or status.get("jobStatus") in TERMINAL:
            return
        head = self._running_head(job)
        if head is None or not self._submitters(job):
            return
        folder = Path(tempfile.mkdtemp(prefix="rj-", dir=self.plane.root))
        run = JobRun(job["metadata"]["name"], job["metadata"]["uid"], folder)
        self.runs[run.uid] = run
        self._submit(job, run, head)

    def _follow(self, job: dict[str, Any], run: JobRun) -> None:
        if run.driver is not None:
            head = self._running_head(job)
            if head is None or head["metadata"]["uid"] != run.head_uid:
                self._lose_head(job, run)
                return
            code = run.driver.poll()
            if code is not None:
                self._finish(job, run, code)
            elif self.per_pod:
                self._sync_workers(job, run)
            return
        if (job.get("status") or {}).get("jobDeploymentStatus") in ("Complete", "Failed"):
            run.finished = True  # KubeRay ended it (the submitter Job failed)
            return
        # The head was lost: a submitter pod without a head fails; one with a new head
        # submits the job again.
        head = self._running_head(job)
        for submitter in self._submitters(job):
            if submitter["metadata"]["name"] in run.failed_submitters:
                continue
            if head is None:
                self._fail_submitter(run, submitter)
            else:
                self._submit(job, run, head)
                return

    # -- what the pods would do -------------------------------------------------------------

    def _submit(self, job: dict[str, Any], run: JobRun, head: dict[str, Any]) -> None:
        cluster = self._get(
            f"/apis/ray.io/v1/namespaces/{self.namespace}/rayclusters/"
            f"{job['status']['rayClusterName']}"
        )
        if self.per_pod:
            cpus, gpus, custom = pod_resources(cluster["spec"]["headGroupSpec"])
        else:
            cpus, gpus, custom = cluster_resources(cluster["spec"])
        try:
            run.node, run.head_address = self._launch(
                run, f"node-{run.submissions + 1}", int(cpus), int(gpus), custom
            )
            if self.per_pod:
                self._sync_workers(job, run)
        except BaseException:
            # A node that did start goes with the ones that did not: the next poll
            # submits again on nodes of its own, and leaves none of these behind.
            run.kill()
            raise
        run.head_uid = head["metadata"]["uid"]
        run.submissions += 1
        env = self._driver_env(job, run.head_address)
        with run.log.open("ab") as out:
            run.driver = subprocess.Popen(
                ["bash", "-c", job["spec"]["entrypoint"]],
                env=env, cwd=run.folder, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        self._write_status(job, jobStatus="RUNNING", message="Job is currently running.",
                           rayJobInfo={"startTime": now()})  # fmt: skip

    def _sync_workers(self, job: dict[str, Any], run: JobRun) -> None:
        """One local node per running worker pod: a pod gone takes its node with it, a new
        pod (KubeRay's replacement) starts one."""
        cluster = job["status"]["rayClusterName"]
        pods = self._running_pods(f"ray.io/cluster={cluster},ray.io/node-type=worker")
        live = {p["metadata"]["uid"]: p for p in pods}
        for uid in [u for u in run.workers if u not in live]:
            kill_group(run.workers.pop(uid))
        new = [p for uid, p in live.items() if uid not in run.workers]
        if not new:
            return
        spec = self._get(f"/apis/ray.io/v1/namespaces/{self.namespace}/rayclusters/{cluster}")
        groups = {g["groupName"]: g for g in spec["spec"]["workerGroupSpecs"]}
        for pod in new:
            cpus, gpus, custom = pod_resources(groups[pod["metadata"]["labels"]["ray.io/group"]])
            name = pod["metadata"]["name"]
            run.workers[pod["metadata"]["uid"]], _ = self._launch(
                run, f"worker-{name}", int(cpus), int(gpus), custom, join=run.head_address
            )
            run.worker_pods.append(name)

    def _launch(
        self, run: JobRun, label: str, cpus: int, gpus: int, custom: dict[str, float],
        *, join: str = "",
    ) -> tuple[subprocess.Popen[bytes], str]:  # fmt: skip
        """``ray start --block``: a head, or a node joining the head at ``join``; returns
        once the node is up (as a pod's readiness probe would), with the head's address."""
        flags = ["--node-manager-port", "--object-manager-port",
                 "--dashboard-agent-listen-port", "--dashboard-agent-grpc-port",
                 "--metrics-export-port", "--runtime-env-agent-port"]  # fmt: skip
        if not join:  # head-only flags
            flags += ["--port", "--ray-client-server-port"]
        # One call for all: free_port twice may hand out the same port (support.net).
        ports = dict(zip(flags, free_ports(len(flags)), strict=True))
        address = join or f"127.0.0.1:{ports['--port']}"
        # Ray puts socket paths under --temp-dir: a Unix socket path has at most 107 bytes.
        temp = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))
        run.ray_temp.append(temp)
        # No autoscaler monitor on the head (~1 CPU-s a node): nothing here scales a
        # cluster, and where a RayCluster autoscales, KubeRay starts its head with
        # --no-monitor too (its autoscaler runs beside it).
        head = ["--head", "--include-dashboard=false", "--no-monitor"]
        role = [f"--address={join}"] if join else head
        args = [
            str(Path(sys.executable).parent / "ray"), "start", *role, "--block",
            f"--num-cpus={cpus}", f"--num-gpus={gpus}", f"--resources={json.dumps(custom)}",
            "--disable-usage-stats", f"--temp-dir={temp}", "--node-ip-address=127.0.0.1",
            *(f"{flag}={value}" for flag, value in ports.items()),
        ]  # fmt: skip
        log = run.folder / f"{label}.log"
        for attempt in range(1, NODE_START_ATTEMPTS + 1):
            offset = log.stat().st_size if log.exists() else 0  # this attempt's part of the log
            with log.open("ab") as out:
                node = subprocess.Popen(
                    args, env=self._base_env() | NODE_ENV, stdout=out, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL, start_new_session=True,
                )  # fmt: skip
            if self._started(node, log, offset):
                return node, address
            kill_group(node)
            text = log.read_bytes()[offset:].decode(errors="replace")
            if "timed out during startup" not in text or attempt == NODE_START_ATTEMPTS:
                raise RuntimeError(f"ray start failed for {run.name}:\n{text[-3000:]}")
            with log.open("a") as out:
                out.write(f"\n[rayjob_runner] ray start timed out; attempt {attempt + 1}\n")
        raise AssertionError("unreachable")

    @staticmethod
    def _started(node: subprocess.Popen[bytes], log: Path, offset: int) -> bool:
        """Whether ``ray start`` said the node is up in the log after ``offset`` (False: it
        exited or took too long)."""
        deadline = time.monotonic() + NODE_START_TIMEOUT
        while b"Ray runtime started" not in log.read_bytes()[offset:]:
            if node.poll() is not None or time.monotonic() > deadline:
                return False
            time.sleep(0.2)
        return True

    def _base_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("PYTEST", "RAY_", "KUBECONFIG"))}  # fmt: skip
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        return env

    def _driver_env(self, job: dict[str, Any], address: str) -> dict[str, str]:
        runtime = yaml.safe_load(job["spec"].get("runtimeEnvYAML") or "{}") or {}
        env = self._base_env() | {str(k): str(v) for k, v in runtime.get("env_vars", {}).items()}
        env["RAY_ADDRESS"] = address
        return env

    def _finish(self, job: dict[str, Any], run: JobRun, code: int) -> None:
        run.exit_codes.append(code)
        tail = run.log.read_text(errors="replace")[-RAY_LOG_TAIL:]
        run.kill()
        run.finished = True
        if code == 0:
            self._write_status(job, jobStatus="SUCCEEDED", jobDeploymentStatus="Complete",
                               message="Job finished successfully.",
                               rayJobInfo={"endTime": now()})  # fmt: skip
            return
        message = (f"Job entrypoint command failed with exit code {code}, last available "
                   f"logs (truncated to 20,000 chars):\n{tail}")  # fmt: skip
        self._write_status(job, jobStatus="FAILED", jobDeploymentStatus="Failed",
                           reason="AppFailed", message=message,
                           rayJobInfo={"endTime": now()})  # fmt: skip

    def _lose_head(self, job: dict[str, Any], run: JobRun) -> None:
        run.kill()
        for submitter in self._submitters(job):
            self._fail_submitter(run, submitter)

    def _fail_submitter(self, run: JobRun, submitter: dict[str, Any]) -> None:
        """The submitter pod's ``ray job`` command exits 1: Failed, as its kubelet says."""
        name = submitter["metadata"]["name"]
        run.failed_submitters.add(name)
        state = {"terminated": {"exitCode": SUBMITTER_EXIT, "reason": "Error",
                                "finishedAt": now()}}  # fmt: skip
        patch = {"status": {"phase": "Failed", "containerStatuses": [
            {**s, "state": state, "ready": False, "started": False}
            for s in submitter["status"].get("containerStatuses", [])
        ]}}  # fmt: skip
        self._patch(f"/api/v1/namespaces/{self.namespace}/pods/{name}/status", patch)

    def _write_status(self, job: dict[str, Any], **fields: Any) -> None:
        name = job["metadata"]["name"]
        path = f"/apis/ray.io/v1/namespaces/{self.namespace}/rayjobs/{name}/status"
        self._patch(path, {"status": fields})

    def _patch(self, path: str, patch: dict[str, Any]) -> None:
        code, body = self.plane.request(
            "PATCH", path, json.dumps(patch).encode(), "application/merge-patch+json"
        )
        if code >= 300:
            raise RuntimeError(f"PATCH {path}: {code} {body.get('message')}")


def wait_idle(runner: RayJobRunner, timeout: float = 30.0) -> None:
    """Until no local driver or node of the runner is alive."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(r.driver is None and r.node is None and not r.workers
               for r in runner.runs.values()):  # fmt: skip
            return
        time.sleep(0.2)
