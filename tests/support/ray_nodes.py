"""A local multi-node Ray cluster: ``ray start`` nodes as separate processes, so one node
can be lost (SIGKILL of its processes) while the others carry on.

Every node runs in its own session (``start_new_session``) on free ports, under a short
``--temp-dir`` of its own (Unix socket paths have at most 107 bytes), so the cluster
never meets another Ray on this machine. The head offers no CPU: trials land on the
workers. The head's health checks are fast, so a lost node is noticed in seconds.
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
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from support.net import free_ports

NODE_START_TIMEOUT = 180.0
"""A loaded machine can take a minute to start a Ray node."""

NODE_ENV = {
    "RAY_AUTH_MODE": "disabled",  # see support/rayjob_runner.py
    "RAY_worker_niceness": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
    # A lost node is declared dead after ~3 missed 1 s checks, not Ray's default ~30 s.
    "RAY_health_check_initial_delay_ms": "1000",
    "RAY_health_check_period_ms": "1000",
    "RAY_health_check_timeout_ms": "1000",
    "RAY_health_check_failure_threshold": "3",
}

HEAD_FLAGS = ("--port", "--ray-client-server-port")
NODE_FLAGS = (
    "--node-manager-port",
    "--object-manager-port",
    "--dashboard-agent-listen-port",
    "--dashboard-agent-grpc-port",
    "--metrics-export-port",
    "--runtime-env-agent-port",
)


@dataclass
class Node:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def pids(self) -> set[int]:
        """Every live process of the node: its session (``ray start``, raylet, agents,
        workers that stayed in it) and every descendant of the ``ray start`` process."""
        found: set[int] = set()
        with contextlib.suppress(psutil.NoSuchProcess):
            root = psutil.Process(self.process.pid)
            found = {root.pid, *(c.pid for c in root.children(recursive=True))}
        for proc in psutil.process_iter():
            with contextlib.suppress(psutil.Error, OSError):
                if os.getsid(proc.pid) == self.process.pid:
                    found.add(proc.pid)
        return found

    def kill(self) -> None:
        """The node is lost: SIGKILL to all its processes at once (no graceful exit)."""
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=30)


@dataclass
class LocalCluster:
    folder: Path
    env: dict[str, str]
    address: str = ""
    nodes: list[Node] = field(default_factory=list)
    temps: list[Path] = field(default_factory=list)

    def start(self, workers: int, worker_cpus: int = 1) -> LocalCluster:
        ports = dict(zip(HEAD_FLAGS, free_ports(len(HEAD_FLAGS)), strict=True))
        self.address = f"127.0.0.1:{ports['--port']}"
        self._start("head", ["--head", "--num-cpus=0", "--include-dashboard=false", *_flags(ports)])
        for index in range(workers):
            args = [f"--address={self.address}", f"--num-cpus={worker_cpus}"]
            self._start(f"worker-{index}", args)
        return self

    def _start(self, name: str, args: list[str]) -> Node:
        temp = Path(tempfile.mkdtemp(prefix="rayn-", dir="/tmp"))
        self.temps.append(temp)
        ports = dict(zip(NODE_FLAGS, free_ports(len(NODE_FLAGS)), strict=True))
        cmd = [
            str(Path(sys.executable).parent / "ray"), "start", "--block", *args,
            "--disable-usage-stats", f"--temp-dir={temp}",
            "--node-ip-address=127.0.0.1", "--object-store-memory=100000000",
            f"--resources={json.dumps({})}", *_flags(ports),
        ]  # fmt: skip
        log = self.folder / f"{name}.log"
        with log.open("ab") as out:
            process = subprocess.Popen(
                cmd, env=self.env | NODE_ENV, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        node = Node(name, process, log)
        self.nodes.append(node)
        deadline = time.monotonic() + NODE_START_TIMEOUT
        while "Ray runtime started" not in log.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"ray start failed for {name}:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        return node

    def node_of(self, pid: int) -> Node | None:
        """The node a process (a trial's worker) runs on."""
        for node in self.nodes:
            if pid in node.pids():
                return node
        return None

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.kill()
        for temp in self.temps:
            shutil.rmtree(temp, ignore_errors=True)


def _flags(ports: dict[str, int]) -> list[str]:
    return [f"{flag}={value}" for flag, value in ports.items()]
