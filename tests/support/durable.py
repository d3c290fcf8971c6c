"""Helpers of the durability tests (tests/durable): the Tune driver as a process on an
s3:// store (moto on loopback), with its local state (Ray's temp folder, trial
checkpoints) in a folder of its own that a test can delete, like a lost head pod's disk."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from support.sweeps import driver_cmd
from tunix_rt.api.trial import DriverSessions, SweepResult, TrialResult
from tunix_rt.contract.layout import SweepFiles, SweepLayout
from tunix_rt.storage import Store

NS = "ml"
WORKLOAD = "support.durable_workloads:train"
"""The checkpointing stand-in, a ``backend: python`` entrypoint (``tiny_spec``'s trainer)."""


def tiny_spec(**over: Any) -> dict[str, Any]:
    """A sweep of six quick trials, two at a time, that checkpoint as they go."""
    spec: dict[str, Any] = {
        "searchSpace": {"learningRate": {"type": "loguniform", "low": 1e-4, "high": 3e-2}},
        "maxTrials": 6,
        "maxConcurrentTrials": 2,
        "seed": 3,
        "budget": {"smokeSteps": 40},
        "trainer": {
            "backend": "python",
            "entrypoint": WORKLOAD,
            "logEvery": 10,
            "checkpointEvery": 10,
            "dataset": {"trainSize": 256, "evalSize": 64},  # quick to load and score
        },
    }
    spec.update(over)
    return spec


@dataclass
class Driver:
    """``python -m tunix_rt.tune`` in a session of its own, killable like a pod."""

    cmd: list[str]
    env: dict[str, str]
    log: Path
    local: Path
    """Its local state (RAY_TMPDIR, TMPDIR): deleted by :meth:`lose_local_state`."""
    proc: subprocess.Popen[bytes] | None = None
    logs: list[str] = field(default_factory=list)

    def start(self) -> Driver:
        self.local.mkdir(parents=True, exist_ok=True)
        out = open(self.log, "ab")  # noqa: SIM115 - the child owns it
        self.proc = subprocess.Popen(
            self.cmd, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        out.close()
        return self

    def wait(self, timeout: float = 120) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        """SIGKILL the driver, its local Ray and the trial workers (a lost head pod)."""
        assert self.proc is not None
        kill_session(self.proc.pid)
        self.proc.wait(timeout=30)

    def lose_local_state(self) -> None:
        shutil.rmtree(self.local, ignore_errors=True)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def kill_session(sid: int, pause: float = 0.3) -> None:
    """SIGKILL every process of a session: the driver, its local Ray and the trial workers."""
    for _ in range(3):
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            pid = int(entry)
            try:
                if os.getsid(pid) == sid:
                    os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                continue
        time.sleep(pause)


def write_manifest(path: Path, name: str, spec: dict[str, Any]) -> Path:
    doc = {"apiVersion": "tunixrt.io/v1alpha1", "kind": "Sweep", "metadata": {"name": name},
           "spec": spec}  # fmt: skip
    path.write_text(yaml.safe_dump(doc))
    return path


def sweep_cmd(manifest: Path, store: Store, name: str) -> list[str]:
    """The driver's command line (``python -m tunix_rt.tune``) for a durable test's sweep."""
    return driver_cmd(manifest, store.uri, "--name", name, "--num-cpus", "2", namespace=NS)


def make_driver(
    cmd: list[str], env: dict[str, str], base: Path, attempt: int, logs: Path | None = None
) -> Driver:
    """Driver ``attempt`` with its local state in ``base/a<attempt>`` (its log in ``logs``,
    default ``base``)."""
    local = base / f"a{attempt}"
    extra = {"RAY_TMPDIR": str(local), "TMPDIR": str(local)}
    return Driver(cmd, env | extra, (logs or base) / f"driver-{attempt}.log", local)


def sweep_files(store: Store, name: str) -> SweepFiles:
    return SweepFiles(store, SweepLayout.of(NS, name))


def records(store: Store, name: str) -> dict[str, TrialResult]:
    return {t.trial_id: t for t in sweep_files(store, name).trials()}


def summary_of(store: Store, name: str) -> SweepResult | None:
    return sweep_files(store, name).summary()


def sessions_of(store: Store, name: str) -> DriverSessions | None:
    return sweep_files(store, name).sessions()


def driver_from_rayjob(rayjob: dict[str, Any]) -> list[str]:
    """The RayJob's entrypoint as a local driver command: this Python, a local Ray of 2
    CPUs instead of ``--address auto`` (what the head pod would run)."""
    import shlex

    args = shlex.split(rayjob["spec"]["entrypoint"])
    assert args[:3] == ["python", "-m", "tunix_rt.tune"], args[:3]
    at = args.index("--address")
    del args[at : at + 2]
    return [sys.executable, *args[1:], "--num-cpus", "2"]


def snapshot_knows(
    store: Store,
    name: str,
    finished: set[str],
    checkpointed: set[str] = frozenset(),
    namespace: str = NS,
) -> bool:
    """Whether the newest Ray Tune experiment snapshot in the store, what a resumed driver
    restores, has each ``finished`` trial TERMINATED and a checkpoint of each
    ``checkpointed`` one: the state a kill test waits for instead of a snapshot period."""
    layout = SweepLayout.of(namespace, name)
    keys = [
        k
        for k in store.list(layout.experiment_prefix + "/")
        if k.endswith(".json") and "experiment_state" in k
    ]
    if not keys:
        return False
    try:
        data = json.loads(store.read_bytes(max(keys)))
        trials = {
            state.get("trial_id"): (state.get("status"), meta)
            for state, meta in ((json.loads(s), m) for s, m in data.get("trial_data", []))
        }
    except (ValueError, TypeError):
        return False  # caught mid-write: the next one is whole
    if os.environ.get("TUNIX_RT_DUMP_SNAPSHOT"):
        Path(os.environ["TUNIX_RT_DUMP_SNAPSHOT"]).write_text(json.dumps(data, indent=1))
    return all(trials.get(t, ("", ""))[0] == "TERMINATED" for t in finished) and all(
        "checkpoint_0" in str(trials.get(t, ("", ""))[1]) for t in checkpointed
    )
