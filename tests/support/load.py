"""Sweeps created at once against the operator and an emulator that keeps up, each in
a process of its own, as in a cluster: used by ``tests/load/`` and
``benchmarks/operator_load.py``.

* the emulator: :class:`support.kmock_fast.CountingApiServer` (``python -m
  support.kmock_fast``); it timestamps each create and counts requests by sender;
* the operator: ``tunix-rt operator`` logged in with a kubeconfig, as deployed (its
  imports, its login, its event loop to itself);
* this process: the client creating Sweeps and waiting for them.

Measured: seconds from each Sweep's create to its RayJob's create (both as the emulator
answered them), time until every Sweep has exactly one RayJob and a status, and the
operator process's own resident memory (VmRSS, peak VmHWM), CPU seconds
(``/proc/<pid>/stat``) and API requests (by User-Agent: ``kopf/…`` and the RayJob
client's ``tunix-rt-operator``).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import json
import os
import signal
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from support.net import free_port
from support.operator import NS, RAYJOBS, SWEEPS, Api, sweep_body

TESTS = Path(__file__).resolve().parents[1]
SOURCE = TESTS.parent / "operator"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
OPERATOR_AGENTS = ("kopf", "tunix-rt-operator")


@dataclass(frozen=True)
class ProcStat:
    """One process's resident memory (now and peak, MiB) and CPU seconds so far."""

    rss_mib: float
    hwm_mib: float
    cpu_s: float

    @classmethod
    def of(cls, pid: int) -> ProcStat:
        status = Path(f"/proc/{pid}/status").read_text().splitlines()
        kib = {k: int(v.split()[0]) for k, _, v in (s.partition(":") for s in status) if "kB" in v}
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15 of stat)
        return cls(kib["VmRSS"] / 1024, kib["VmHWM"] / 1024, ticks / CLOCK_TICKS)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


class Emulator:
    """The emulator in a process; ``stats()`` asks it for its counts."""

    def __init__(self) -> None:
        self.proc: asyncio.subprocess.Process | None = None
        self.url = ""

    async def start(self) -> Emulator:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(SOURCE)])}
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "support.kmock_fast", env=env,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=1 << 26,
        )  # fmt: skip
        self.url = (await self._line())["url"]
        return self

    async def _line(self) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout=60)
        assert line, "the emulator exited"
        data: dict[str, Any] = json.loads(line)
        return data

    async def stats(self) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(b"stats\n")
        await self.proc.stdin.drain()
        return await self._line()

    async def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), timeout=20)
        except TimeoutError:
            proc.kill()
            await proc.wait()


class Operator:
    """``tunix-rt operator`` in a process, its output to a file (a pipe nobody reads
    would fill up and stall it)."""

    def __init__(self, server_url: str, folder: Path, **env: str) -> None:
        self.folder = folder
        kubeconfig = folder / "kubeconfig"
        kubeconfig.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "kmock",
            "clusters": [{"name": "kmock", "cluster": {"server": server_url.rstrip("/")}}],
            "users": [{"name": "u", "user": {"token": "t"}}],
            "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": "u"}}],
        }))  # fmt: skip
        self.env = {**os.environ, "KUBECONFIG": str(kubeconfig), **env}
        self.env.pop("KUBERNETES_SERVICE_HOST", None)
        self.log = folder / "operator.log"
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def start(self) -> Operator:
        live = free_port()
        # TUNIX_RT_LOAD_PROFILE=FILE: the operator under cProfile (stats to FILE on exit)
        profile = os.environ.get("TUNIX_RT_LOAD_PROFILE")
        script = self.folder / "operator_main.py"
        script.write_text("from tunix_rt.cli import main\n\nmain()\n")
        runner = ["-m", "cProfile", "-o", profile] if profile else []
        with self.log.open("wb") as out:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, *runner, str(script),
                "operator", "--all-namespaces", "--standalone",
                "--liveness", f"http://127.0.0.1:{live}/healthz", "--metrics-port", "0",
                env=self.env, stdout=out, stderr=asyncio.subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + 60
        while not await self._healthy(live):
            assert self.proc.returncode is None, f"the operator exited: {self.tail()}"
            assert time.monotonic() < deadline, f"the operator did not start: {self.tail()}"
            await asyncio.sleep(0.1)
        await asyncio.sleep(2.0)  # kopf's first LISTs and WATCHes: not the load's cost
        return self

    async def _healthy(self, port: int) -> bool:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            return False
        writer.write(b"GET /healthz HTTP/1.0\r\n\r\n")
        head = await reader.read(64)
        writer.close()
        return b" 200 " in head

    def tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    def stat(self) -> ProcStat:
        return ProcStat.of(self.pid)

    async def stop(self) -> int:
        proc, self.proc = self.proc, None
        if proc is None:
            return 0
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(proc.wait(), timeout=60)
        except TimeoutError:
            proc.kill()
            return await proc.wait()


@dataclass
class Burst:
    """Sweeps created at once and what it took the operator to give each a RayJob."""

    sweeps: int
    rayjobs: int
    rayjob_creates: int
    duplicates: int
    with_status: int
    p50_create_s: float
    p95_create_s: float
    max_create_s: float
    converged_s: float
    p50_create_cpu_s: float
    p95_create_cpu_s: float
    """Operator CPU seconds spent between a Sweep's create and its RayJob's create (p95
    over the Sweeps): the latency on a core of its own, whatever the machine's load."""
    operator_cpu_s: float
    operator_requests: int
    cpu_s_per_sweep: float
    requests_per_sweep: float
    operator_rss_mib: float
    operator_rss_peak_mib: float
    requests_by_kind: dict[str, float] = field(default_factory=dict)
    """The operator's requests per Sweep by ``"<sender> <action> <resource>"``."""
    stages_p50_s: dict[str, float] = field(default_factory=dict)
    """Median seconds from a Sweep's create to the operator's first request of each kind
    for it (finalizer patch, RayJob read, RayJob create, status patch)."""
    followed: int = 0
    """Sweeps the operator follows after this burst (this one's and earlier ones)."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Idle:
    """The operator's cost while ``followed`` Sweeps sit Pending (nothing changes)."""

    followed: int
    window_s: float
    cpu_s: float
    requests: int
    requests_by_kind: dict[str, Any] = field(default_factory=dict)
    cpu_s_per_sweep_hour: float = field(init=False)
    requests_per_sweep_hour: float = field(init=False)

    def __post_init__(self) -> None:
        hours = self.window_s / 3600
        self.cpu_s_per_sweep_hour = round(self.cpu_s / self.followed / hours, 4)
        self.requests_per_sweep_hour = round(self.requests / self.followed / hours, 2)


@dataclass
class Woken:
    """KubeRay's first status on every RayJob (``Initializing``): what the watch events
    cost the operator (each wakes its Pending Sweep for one follow step)."""

    rayjobs: int
    all_followed_s: float
    cpu_s_per_wake: float
    requests_per_wake: float
    requests_by_kind: dict[str, Any]


def requests_by_kind(before: dict[str, Any], after: dict[str, Any], per: int) -> dict[str, Any]:
    """The operator's requests between two emulator stats, by kind, divided by ``per``."""
    out: dict[str, Any] = {}
    for what, count in sorted(after["by_request"].items()):
        made = count - before["by_request"].get(what, 0)
        if what.split()[0] in OPERATOR_AGENTS and made:
            out[what] = round(made / per, 2) if per > 1 else made
    return out


async def sample_cpu(operator: Operator, samples: list[tuple[float, float]]) -> None:
    """(monotonic time, operator CPU seconds) every 20 ms until cancelled."""
    while True:
        await asyncio.sleep(0.02)
        samples.append((time.monotonic(), operator.stat().cpu_s))


def cpu_at(samples: list[tuple[float, float]], at: float) -> float:
    """The operator's CPU seconds at time ``at`` (linear between samples)."""
    index = bisect.bisect_left(samples, (at, float("-inf")))
    if index == 0:
        return samples[0][1]
    if index >= len(samples):
        return samples[-1][1]
    (t0, c0), (t1, c1) = samples[index - 1], samples[index]
    return c0 + (c1 - c0) * (at - t0) / (t1 - t0) if t1 > t0 else c1


STAGES = {
    "finalizer patch": ("kopf UPDATE sweeps", "{name}"),
    "RayJob read": ("tunix-rt-operator FETCH rayjobs", "sweep-{name}"),
    "status patch": ("kopf UPDATE sweeps/status", "{name}"),
}


def stage_medians(stats: dict[str, Any], names: list[str]) -> dict[str, float]:
    """:attr:`Burst.stages_p50_s` from the emulator's first-request times."""
    out: dict[str, float] = {}
    for stage, (what, obj) in STAGES.items():
        delays = []
        for name in names:
            made = stats["created"].get(f"{SWEEPS}|{NS}|{name}")
            at = stats["first"].get(f"{what}|{NS}|{obj.format(name=name)}")
            if made is not None and at is not None:
                delays.append(at - made)
        if delays:
            out[stage] = round(statistics.median(delays), 3)
        if stage == "RayJob read":  # a create names its object in the body, not the URL
            out["RayJob create"] = round(
                statistics.median(
                    stats["created"][f"{RAYJOBS}|{NS}|sweep-{name}"]
                    - stats["created"][f"{SWEEPS}|{NS}|{name}"]
                    for name in names
                ),
                3,
            )
    return out


def operator_requests(stats: dict[str, Any]) -> int:
    return sum(int(stats["by_agent"].get(agent, 0)) for agent in OPERATOR_AGENTS)


class LoadSession:
    """An emulator and an operator, each in its own process, and a client of both."""

    def __init__(self, folder: Path, poll_seconds: float = 10.0) -> None:
        self.folder = folder
        self.poll_seconds = poll_seconds
        self.emulator = Emulator()
        self.operator: Operator | None = None
        self.api: Api | None = None
        self.names: list[str] = []

    async def __aenter__(self) -> LoadSession:
        await self.emulator.start()
        self.api = Api(self.emulator.url)
        env = {
            "TUNIX_RT_DEFAULT_STORAGE": f"file://{self.folder / 'store'}",
            "TUNIX_RT_POLL_SECONDS": str(self.poll_seconds),
            "TUNIX_RT_IMAGE_CPU": "registry.example/trainer:t-cpu",
            "TUNIX_RT_STORAGE_SECRET": "store-creds",
        }
        try:
            self.operator = await Operator(self.emulator.url, self.folder, **env).start()
        except BaseException:
            await self.emulator.stop()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            if self.operator is not None:
                code = await self.operator.stop()
                assert code == 0 or exc[0] is not None, self.operator.tail()
        finally:
            await self.emulator.stop()

    async def burst(self, n: int, timeout: float = 120.0) -> Burst:
        """Create ``n`` more Sweeps at once; wait until every Sweep so far has one RayJob
        and a status."""
        assert self.api is not None and self.operator is not None
        api, operator = self.api, self.operator
        first = len(self.names)
        names = [f"load-{i:04d}" for i in range(first, first + n)]
        self.names += names
        total = len(self.names)
        before, stats_before = operator.stat(), await self.emulator.stats()
        requests_before = operator_requests(stats_before)
        samples: list[tuple[float, float]] = [(time.monotonic(), before.cpu_s)]
        sampler = asyncio.create_task(sample_cpu(operator, samples))
        started = time.monotonic()
        await asyncio.gather(*(api.create(SWEEPS, sweep_body(name, NS)) for name in names))
        while True:
            jobs = {j["metadata"]["name"] for j in await api.list(RAYJOBS, NS)}
            sweeps = await api.list(SWEEPS, NS)
            statused = sum(1 for s in sweeps if (s.get("status") or {}).get("phase"))
            if len(jobs) >= total and statused >= total:
                break
            if time.monotonic() - started > timeout:
                raise AssertionError(
                    f"after {timeout}s: {len(jobs)} RayJobs, {statused} statuses of {total}\n"
                    + operator.tail()
                )
            await asyncio.sleep(0.1)
        converged = time.monotonic() - started
        sampler.cancel()
        await asyncio.sleep(1.0)  # the status patches' follow-up (kopf's own bookkeeping)
        after, stats = operator.stat(), await self.emulator.stats()
        delays, cpu_delays = [], []
        for name in names:
            made = stats["created"].get(f"{SWEEPS}|{NS}|{name}")
            job = stats["created"].get(f"{RAYJOBS}|{NS}|sweep-{name}")
            assert made is not None and job is not None, name
            delays.append(job - made)
            cpu_delays.append(cpu_at(samples, job) - cpu_at(samples, made))
        creates = {name: stats["creates"].get(f"{RAYJOBS}|{NS}|sweep-{name}", 0) for name in names}
        cpu = after.cpu_s - before.cpu_s
        requests = operator_requests(stats) - requests_before
        by_kind = requests_by_kind(stats_before, stats, n)
        stages = stage_medians(stats, names)
        return Burst(
            sweeps=n,
            rayjobs=len(jobs) - first,
            rayjob_creates=sum(creates.values()),
            duplicates=sum(max(0, c - 1) for c in creates.values()),
            with_status=statused - first,
            p50_create_s=round(statistics.median(delays), 3),
            p95_create_s=round(percentile(delays, 0.95), 3),
            max_create_s=round(max(delays), 3),
            converged_s=round(converged, 3),
            p50_create_cpu_s=round(statistics.median(cpu_delays), 3),
            p95_create_cpu_s=round(percentile(cpu_delays, 0.95), 3),
            operator_cpu_s=round(cpu, 2),
            operator_requests=requests,
            cpu_s_per_sweep=round(cpu / n, 4),
            requests_per_sweep=round(requests / n, 2),
            operator_rss_mib=round(after.rss_mib, 1),
            operator_rss_peak_mib=round(after.hwm_mib, 1),
            requests_by_kind=by_kind,
            stages_p50_s=stages,
            followed=total,
        )

    async def kuberay_initializing(self, timeout: float = 300.0) -> Woken:
        """Give every RayJob the status KubeRay gives it first; wait until every Sweep has
        been followed once since (its status then carries the trial counts)."""
        assert self.api is not None and self.operator is not None
        api, operator = self.api, self.operator
        before, stats_before = operator.stat(), await self.emulator.stats()
        started = time.monotonic()
        gate = asyncio.Semaphore(50)

        async def initializing(name: str) -> None:
            async with gate:
                await api.job_status(NS, f"sweep-{name}", jobDeploymentStatus="Initializing")

        await asyncio.gather(*(initializing(name) for name in self.names))
        while True:
            sweeps = await api.list(SWEEPS, NS)
            if sum("trialsRunning" in (s.get("status") or {}) for s in sweeps) >= len(self.names):
                break
            assert time.monotonic() - started < timeout, operator.tail()
            await asyncio.sleep(0.2)
        followed = time.monotonic() - started
        await asyncio.sleep(1.0)
        after, stats = operator.stat(), await self.emulator.stats()
        n = len(self.names)
        return Woken(
            rayjobs=n,
            all_followed_s=round(followed, 2),
            cpu_s_per_wake=round((after.cpu_s - before.cpu_s) / n, 4),
            requests_per_wake=round(
                (operator_requests(stats) - operator_requests(stats_before)) / n, 2
            ),
            requests_by_kind=requests_by_kind(stats_before, stats, n),
        )

    async def idle(self, window_s: float) -> Idle:
        """The operator's CPU and API requests over ``window_s`` seconds of nothing new."""
        assert self.operator is not None
        before, stats_before = self.operator.stat(), await self.emulator.stats()
        await asyncio.sleep(window_s)
        after, stats = self.operator.stat(), await self.emulator.stats()
        return Idle(
            followed=len(self.names),
            window_s=window_s,
            cpu_s=round(after.cpu_s - before.cpu_s, 3),
            requests=operator_requests(stats) - operator_requests(stats_before),
            requests_by_kind=requests_by_kind(stats_before, stats, 1),
        )

    def rss_idle_mib(self) -> float:
        assert self.operator is not None
        return round(self.operator.stat().rss_mib, 1)
