"""The Ray Tune driver: a Sweep spec mapped onto ``ray.tune.Tuner`` and run.

Entry point (the operator's RayJob and ``tunix-rt sweep run`` both use it)::

    python -m tunix_rt.tune --spec FILE|--spec-b64 B64 --storage URI \\
        --namespace NS --name NAME [--address auto]

The command line lives in ``tunix_rt.tune.command``; a driver session's steps in
``tunix_rt.tune.driver`` (resume or start over: ``resume``; the summary and evidence:
``publish``); the spec -> Tuner mapping in ``tunix_rt.tune.mapping``, the driver's hooks
in Tune's loop (monitor, budget gate) in ``tunix_rt.tune.hooks``; the per-trial function
in ``tunix_rt.tune.trainable``; the record builders in ``tunix_rt.tune.records`` (where
the records live and how they are read and written: ``tunix_rt.contract.layout``).
Importing this package does not import Ray.
"""

from __future__ import annotations

from typing import Any


def run_sweep(*args: Any, **kwargs: Any) -> Any:
    """Run a sweep in this process (see ``tunix_rt.tune.driver.run_sweep``)."""
    from tunix_rt.tune.driver import run_sweep as _run_sweep

    return _run_sweep(*args, **kwargs)


__all__ = ["run_sweep"]
