"""The tunix-rt operator: kopf handlers for Sweeps and Rehearsals.

It never imports JAX, flax, optax or Ray (a test checks this): it creates RayJobs,
reads their status and the results the trial workloads write to the store.

Run it with ``tunix-rt operator`` (see ``tunix_rt.cli.operator``), or embedded::

    await run_operator(OperatorConfig.from_env(), stop_flag=event)

Behaviour (spec changes, deletion, restarts) is documented in ``sweep.py`` and
``rehearsal.py`` and in ``docs/operator.md``. Both kinds run on one skeleton
(``kind.py``: the steps they share; ``handlers.py``: the kopf handlers and their
registration); each kind's status rules are pure functions (``status.py``,
``sweep_status.py``, ``rehearsal_status.py``), written in one place
(``status_writer.py``); the reasons they give are named in ``tunix_rt.contract.reasons``;
what crosses the RayJob boundary (store layout, phase rules) is the run contract,
``tunix_rt.contract``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from tunix_rt import kopf_lean  # noqa: F401  # isort: skip  (before kopf: see there)
import kopf

from tunix_rt.controller import settings, wake, web
from tunix_rt.controller.config import ConfigError, OperatorConfig
from tunix_rt.controller.handlers import register_kind
from tunix_rt.controller.metrics import Metrics
from tunix_rt.controller.rehearsal import REHEARSAL
from tunix_rt.controller.runtime import Runtime
from tunix_rt.controller.sweep import SWEEP

__all__ = [
    "ConfigError",
    "Metrics",
    "OperatorConfig",
    "Runtime",
    "build_registry",
    "run",
    "run_operator",
]


def build_registry(config: OperatorConfig) -> kopf.OperatorRegistry:
    """A fresh registry with every handler (one per operator run; tests start several)."""
    registry = kopf.OperatorRegistry()
    settings.register(registry)
    for kind in (SWEEP, REHEARSAL):
        register_kind(registry, kind, config.poll_seconds, config.resync_seconds)
    wake.register(registry, (SWEEP, REHEARSAL))
    return registry


async def run_operator(
    config: OperatorConfig,
    *,
    runtime: Runtime | None = None,
    connection: kopf.ConnectionInfo | None = None,
    stop_flag: Any = None,
    ready_flag: Any = None,
) -> None:
    """Run until ``stop_flag`` is set (or a signal): serve /metrics and, when asked, the
    web view (:mod:`tunix_rt.controller.web`), then kopf."""
    runtime = runtime or settings.new_runtime(config, connection)
    if config.metrics_port:
        runtime.metrics.serve(config.metrics_port, config.metrics_addr)
    served = None
    try:
        served = await web.start(config, runtime)
        await kopf.operator(
            registry=build_registry(config),
            settings=settings.make_settings(config),
            memo=kopf.Memo(runtime=runtime),
            stop_flag=stop_flag,
            ready_flag=ready_flag,
            **settings.operator_kwargs(config),
        )
    finally:
        if served is not None:
            await served.close()
        runtime.metrics.stop()
        await runtime.close()


def run(config: OperatorConfig) -> None:
    """Blocking entry point of ``tunix-rt operator``."""
    asyncio.run(run_operator(config))
