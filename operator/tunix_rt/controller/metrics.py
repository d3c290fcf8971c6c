"""Prometheus metrics of the operator, served on ``/metrics`` (``--metrics-port``).

* ``tunixrt_sweeps{phase}`` / ``tunixrt_rehearsals{phase}``: objects this operator
  follows, by phase (gauges);
* ``tunixrt_trials_completed_total{namespace}``: trials seen finishing (counter);
* ``tunixrt_reconcile_duration_seconds{kind,handler}``: handler run time (histogram);
* ``tunixrt_rayjobs_created_total{kind}``: RayJobs created (adoptions not counted).

Each :class:`Metrics` has its own registry, so several operators (tests) can coexist.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.exposition import generate_latest

from tunix_rt.api.common import Phase

KINDS = ("sweep", "rehearsal")


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self._phases: dict[str, dict[tuple[str, str], str]] = {k: {} for k in KINDS}
        self._counts: dict[str, dict[str, int]] = {k: {} for k in KINDS}
        self._lock = threading.Lock()
        self.sweeps = Gauge(
            "tunixrt_sweeps", "Sweeps followed by this operator, by phase.", ["phase"],
            registry=self.registry,
        )  # fmt: skip
        self.rehearsals = Gauge(
            "tunixrt_rehearsals", "Rehearsals followed by this operator, by phase.", ["phase"],
            registry=self.registry,
        )  # fmt: skip
        self.trials_completed = Counter(
            "tunixrt_trials_completed", "Sweep trials seen finishing (any final state).",
            ["namespace"], registry=self.registry,
        )  # fmt: skip
        self.reconcile_duration = Histogram(
            "tunixrt_reconcile_duration_seconds", "Time spent in one reconcile handler.",
            ["kind", "handler"], registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )  # fmt: skip
        self.rayjobs_created = Counter(
            "tunixrt_rayjobs_created", "RayJobs created by this operator.", ["kind"],
            registry=self.registry,
        )  # fmt: skip
        for phase in Phase:
            self.sweeps.labels(phase=phase.value).set(0)
            self.rehearsals.labels(phase=phase.value).set(0)
        self._server: Any = None

    def _gauge(self, kind: str) -> Gauge:
        return self.sweeps if kind == "sweep" else self.rehearsals

    def _move(self, kind: str, old: str | None, new: str | None) -> None:
        """One object left phase ``old`` for ``new``: two gauge values change (constant
        time: recounting every followed object on each poll was quadratic in them)."""
        gauge = self._gauge(kind)
        counts = self._counts[kind]
        for phase, step in ((old, -1), (new, 1)):
            if phase is not None:
                counts[phase] = counts.get(phase, 0) + step
                gauge.labels(phase=phase).set(counts[phase])

    def observe_phase(self, kind: str, namespace: str, name: str, phase: str) -> None:
        with self._lock:
            old = self._phases[kind].get((namespace, name))
            if old != phase:
                self._phases[kind][(namespace, name)] = phase
                self._move(kind, old, phase)

    def forget(self, kind: str, namespace: str, name: str) -> None:
        with self._lock:
            old = self._phases[kind].pop((namespace, name), None)
            self._move(kind, old, None)

    def trials_finished(self, namespace: str, count: int) -> None:
        if count > 0:
            self.trials_completed.labels(namespace=namespace).inc(count)

    @contextmanager
    def time(self, kind: str, handler: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.reconcile_duration.labels(kind=kind, handler=handler).observe(
                time.perf_counter() - start
            )

    def render(self) -> bytes:
        """The exposition text (what /metrics serves)."""
        return bytes(generate_latest(self.registry))

    def serve(self, port: int, addr: str = "0.0.0.0") -> int:
        """Serve /metrics on a daemon thread; returns the bound port (``port=0``: any free)."""
        server, _thread = start_http_server(port, addr=addr, registry=self.registry)
        self._server = server
        return int(server.server_address[1])

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
