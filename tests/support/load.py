"""N Sweeps created at once against the operator (kopf) and an emulator that keeps up
(:mod:`support.kmock_fast`): used by ``tests/load/`` and ``benchmarks/operator_load.py``.

Measured: seconds from each Sweep's create to its RayJob's create (as the emulator
answered them), time until every Sweep has exactly one RayJob and a status, the
process's peak RSS (``VmHWM``: operator, emulator and client share this process, so an
upper bound for the operator) and its CPU seconds.
"""

from __future__ import annotations

import asyncio
import resource
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import kmock

from support.kmock_fast import FastApiServer
from support.operator import RAYJOBS, SWEEPS, Api, OperatorRun, register_resources, sweep_body
from tunix_rt.controller import OperatorConfig

NS = "ml"


@dataclass
class LoadResult:
    sweeps: int
    rayjobs: int
    rayjob_creates: int
    duplicates: int
    with_status: int
    p50_create_s: float
    p95_create_s: float
    max_create_s: float
    converged_s: float
    rss_before_mib: float
    rss_peak_mib: float
    cpu_s: float
    requests_served: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def vm_hwm_mib() -> float:
    """Peak resident set size of this process (VmHWM), MiB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def vm_rss_mib() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def config_for(store_uri: str) -> OperatorConfig:
    return OperatorConfig(
        image_cpu="registry.example/trainer:t-cpu",
        image_gpu="registry.example/trainer:t-cuda",
        image_tpu="registry.example/trainer:t-tpu",
        default_storage=store_uri,
        storage_secret="store-creds",
        poll_seconds=2.0,
        summary_grace_seconds=1.0,
        liveness_endpoint=None,
        metrics_port=0,
    )


async def sweeps_at_once(n: int, store_uri: str, timeout: float = 120.0) -> LoadResult:
    """Start the operator, create ``n`` Sweeps at once, wait until each has one RayJob and
    a status; stop the operator; the figures."""
    server = FastApiServer()
    async with server, kmock.Server(server):
        register_resources(server)
        url = str(server.url)
        api = Api(url)
        rss_before = vm_rss_mib()
        cpu_before = time.process_time()
        run = await OperatorRun(config_for(store_uri), url).start()
        try:
            names = [f"load-{i:03d}" for i in range(n)]
            started = time.monotonic()
            await asyncio.gather(*(api.create(SWEEPS, sweep_body(name, NS)) for name in names))

            async def converged() -> tuple[int, int] | None:
                jobs = {j["metadata"]["name"] for j in await api.list(RAYJOBS, NS)}
                sweeps = await api.list(SWEEPS, NS)
                statused = sum(1 for s in sweeps if (s.get("status") or {}).get("phase"))
                if len(jobs) >= n and statused >= n:
                    return len(jobs), statused
                if time.monotonic() - started > timeout:
                    raise AssertionError(
                        f"after {timeout}s: {len(jobs)} RayJobs, {statused} statuses"
                    )
                await asyncio.sleep(0.1)
                return None

            counts = None
            while counts is None:
                counts = await converged()
            converged_s = time.monotonic() - started
        finally:
            await run.stop()
        jobs, statused = counts
        delays = []
        for name in names:
            made = server.created.get((SWEEPS, NS, name))
            job = server.created.get((RAYJOBS, NS, f"sweep-{name}"))
            assert made is not None and job is not None, name
            delays.append(job - made)
        creates = server.count("create", RAYJOBS)
        per_name = {name: server.count("create", RAYJOBS, f"sweep-{name}") for name in names}
        return LoadResult(
            sweeps=n,
            rayjobs=jobs,
            rayjob_creates=creates,
            duplicates=sum(max(0, c - 1) for c in per_name.values()),
            with_status=statused,
            p50_create_s=round(statistics.median(delays), 3),
            p95_create_s=round(percentile(delays, 0.95), 3),
            max_create_s=round(max(delays), 3),
            converged_s=round(converged_s, 3),
            rss_before_mib=round(rss_before, 1),
            rss_peak_mib=round(vm_hwm_mib(), 1),
            cpu_s=round(time.process_time() - cpu_before, 2),
            requests_served=server.served,
        )
