"""Sweeps more than one test file runs: the CLI's one good Sweep, the grid sweep of the
stand-in python trainer, the 2-trial grid sweep of a tiny JAX model that the end-to-end
tests train for real, and running one with ``tunix-rt sweep run`` or with the driver."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from support.manifests import sweep_manifest
from support.tune_workloads import ENTRYPOINT, python_trainer

GOOD_SWEEP_YAML = textwrap.dedent(
    """\
    apiVersion: tunixrt.io/v1alpha1
    kind: Sweep
    metadata: {name: good}
    spec:
      searchSpace:
        learningRate: {type: loguniform, low: 1.0e-4, high: 3.0e-2}
    """
)


def stand_in_grid(
    learning_rates: list[float],
    *,
    smoke_steps: int = 20,
    entrypoint: str = ENTRYPOINT,
    **spec: Any,
) -> dict[str, Any]:
    """The spec of a grid sweep of the stand-in python trainer (``entrypoint``, a report
    every 10 steps) over ``learning_rates``, a trial each, ``smoke_steps`` steps a trial;
    ``spec``: further fields (or others in place of these)."""
    return {
        "searchSpace": {"learningRate": {"type": "grid", "values": list(learning_rates)}},
        "algorithm": "grid",
        "maxTrials": len(learning_rates),
        "budget": {"smokeSteps": smoke_steps},
        "trainer": python_trainer(entrypoint, logEvery=10),
        **spec,
    }


def tiny_jax_sweep(
    name: str,
    *,
    rows: tuple[int, int] = (256, 16),
    eval_every: int = 10,
    intermediate_rows: int = 8,
    max_trace_tokens: int = 48,
    batch_size: int = 16,
    smoke_steps: int = 20,
    **spec: Any,
) -> dict[str, Any]:
    """Two trials of a 1-layer, 32-wide model (``rows``: train and eval rows), learning
    rates 3e-3 and 1e-5 on a grid, both at once; ``spec``: further spec fields. The
    defaults: the end-to-end sweep (tests/tune/test_tune_e2e.py)."""
    train_size, eval_size = rows
    return sweep_manifest(
        name,
        {
            "trainer": {
                "model": {"layers": 1, "width": 32, "heads": 2, "context": 128},
                "dataset": {"trainSize": train_size, "evalSize": eval_size},
                "eval": {
                    "evalEvery": eval_every,
                    "intermediateRows": intermediate_rows,
                    "maxTraceTokens": max_trace_tokens,
                },
                "batchSize": batch_size,
                "logEvery": 5,
                "warmupSteps": 2,
            },
            "searchSpace": {"learningRate": {"type": "grid", "values": [3.0e-3, 1.0e-5]}},
            "algorithm": "grid",
            "maxTrials": 2,
            "maxConcurrentTrials": 2,
            "budget": {"smokeSteps": smoke_steps},
            **spec,
        },
    )


def driver_args(spec: Path, storage: str, *options: str, namespace: str = "ns") -> list[str]:
    """The Tune driver's flags for the manifest ``spec`` run into ``storage`` (what
    ``tunix_rt.tune.command.main`` takes); ``options``: further flags."""
    return ["--spec", str(spec), "--storage", storage, "--namespace", namespace, *options]


def driver_cmd(spec: Path, storage: str, *options: str, namespace: str = "ns") -> list[str]:
    """The Tune driver (``python -m tunix_rt.tune``) with :func:`driver_args`."""
    tune = [sys.executable, "-m", "tunix_rt.tune"]
    return [*tune, *driver_args(spec, storage, *options, namespace=namespace)]


@dataclass(frozen=True)
class CliSweep:
    """One ``tunix-rt sweep run``: the manifest file, the command, its output and the
    sweep's folder in the store."""

    spec: Path
    cmd: list[str]
    out: subprocess.CompletedProcess[str]
    folder: Path


def run_sweep_cli(
    tmp_path: Path, manifest: dict[str, Any], env: dict[str, str], timeout: float
) -> CliSweep:
    """``tunix-rt sweep run`` of ``manifest`` into a file:// store at ``tmp_path/runs``."""
    name = manifest["metadata"]["name"]
    spec = tmp_path / f"{name}.yaml"
    spec.write_text(yaml.safe_dump(manifest))
    storage = tmp_path / "runs"
    exe = Path(sys.executable).with_name("tunix-rt")
    cmd = [str(exe), "sweep", "run", str(spec), "--no-live", "--storage", f"file://{storage}"]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    return CliSweep(spec, cmd, out, storage / "local" / name)
