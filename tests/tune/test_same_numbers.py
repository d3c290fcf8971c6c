"""One config, the same numbers however it runs on this CPU (issue 23): as sweep trials in
fresh Ray workers side by side, in a reused worker after another trial, alone, and through
``python -m tunix_rt.train`` on every core with no thread limits. Exact equality of the
final loss, the eval score and the loss at every logged step, not a tolerance.

Without the pins (``tunix_rt.contract.numerics``) ``python -m tunix_rt.train`` differs from
the trials: on every core it runs YNNPACK and Eigen on two threads, which split the
work, and so the sums, differently (0.6992 against 0.7031 for the demo's best config; for
this test's config the loss at step 5 differs). The JAX compilation cache is off, so every
process compiles for itself instead of loading one compiled program.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from support.sweeps import tiny_jax_sweep
from tunix_rt.api.sweep import SweepSpec
from tunix_rt.api.trial import TrialResult, TrialState
from tunix_rt.train.result import TrainResult

pytestmark = pytest.mark.slow

LR = 3.0e-3


def same_config_sweep(name: str, trials: int, concurrent: int) -> dict[str, Any]:
    """``trials`` trials of one config (a grid of one learning rate, repeated)."""
    manifest = tiny_jax_sweep(
        name, smoke_steps=15, eval_every=15, rows=(128, 16), intermediate_rows=4
    )
    spec = manifest["spec"]
    # Width 128, as the demo's model: at width 32 the matmuls are too small for the pins
    # to matter, here an unpinned run's loss differs from step 5 on (3.7413394 against
    # 3.7413392 on an AVX2 host with YNNPACK fusions and multi-threaded Eigen).
    spec["trainer"]["model"] = {"layers": 1, "width": 128, "heads": 4, "context": 128}
    spec["searchSpace"] = {"learningRate": {"type": "grid", "values": [LR] * trials}}
    spec["maxTrials"] = trials
    spec["maxConcurrentTrials"] = concurrent
    spec["resources"] = {"cpu": 1}
    return manifest


def numbers(metrics: dict[str, float], curve: list[dict[str, float]]) -> dict[str, Any]:
    losses = {int(p["step"]): p["loss"] for p in curve if "loss" in p and "step" in p}
    return {"loss": metrics["loss"], "score": metrics["primary_score"], "curve": losses}


SWEEPS = """
import json, sys
import ray
from tunix_rt.api.sweep import SweepSpec
from tunix_rt.tune.driver import run_sweep
from tunix_rt.tune.session import SweepRun
storage = sys.argv[1]
for manifest in json.loads(sys.argv[2]):
    name = manifest["metadata"]["name"]
    spec = SweepSpec.model_validate(manifest["spec"])
    out = run_sweep(SweepRun(spec=spec, name=name, storage=f"file://{storage}"))
    print(name, int(out.exit_code), out.message, flush=True)
    assert int(out.exit_code) == 0, out.message
ray.shutdown()
"""
"""The sweeps one after another, each as ``python -m tunix_rt.tune`` runs it (``run_sweep``
starts the local Ray as the command does, without ``uv run`` runtime envs), in one
process and on one local Ray: each sweep's trials start in fresh workers of their own
(workers are reused only within a sweep), and one Ray start serves both sweeps."""


def run_sweeps(
    tmp_path: Path, manifests: list[dict[str, Any]], env: dict[str, str]
) -> dict[str, list[Any]]:
    """Each sweep's trial numbers, in the order its trials started, by sweep name."""
    storage = tmp_path / "runs"
    cmd = [sys.executable, "-c", SWEEPS, str(storage), json.dumps(manifests)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-4000:]
    return {m["metadata"]["name"]: sweep_numbers(storage / "local" / m["metadata"]["name"])
            for m in manifests}  # fmt: skip


def sweep_numbers(folder: Path) -> list[Any]:
    records = [
        TrialResult.model_validate_json(p.read_text())
        for p in sorted((folder / "trials").glob("*.json"))
    ]
    assert [r.state for r in records] == [TrialState.SUCCEEDED] * len(records)
    manifest_json = json.loads((folder / "evidence" / "run_manifest.json").read_text())
    pinned = manifest_json["numerics"]
    assert pinned["scope"] == "driver" and pinned["applied"] is True
    assert pinned["cpu"]["flags"] and pinned["bit_identical"] in (True, False)
    ordered = sorted(records, key=lambda r: r.started_at or r.finished_at)  # type: ignore[arg-type, return-value]
    return [(r, numbers(r.metrics, r.curve)) for r in ordered]


def test_one_config_gives_the_same_numbers_however_it_runs(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    env = subprocess_env | {"JAX_COMPILATION_CACHE_DIR": "", "JAX_PLATFORMS": "cpu"}
    env.pop("XLA_FLAGS", None)

    # Three trials, two at a time: the first two in fresh workers side by side, the
    # third in a worker that already ran a trial (built-in trials reuse their worker).
    # Then one trial alone in its sweep.
    sweeps = [same_config_sweep("pair", 3, 2), same_config_sweep("alone", 1, 1)]
    ran = run_sweeps(tmp_path, sweeps, env)
    first, second, reused = ran["pair"]
    assert second[0].started_at < first[0].finished_at  # type: ignore[operator]
    assert reused[0].metrics["compile_seconds"] < first[0].metrics["compile_seconds"] / 2, (
        "the third trial should have run in a worker that had compiled the step already"
    )
    (alone,) = ran["alone"]
    # Its own fresh worker, not one the first sweep left (each record names its worker).
    assert alone[0].worker and alone[0].worker not in {first[0].worker, second[0].worker}

    # The trainer's own command line, on every core, no Ray, no thread limits.
    config = tmp_path / "config.json"
    spec = SweepSpec.model_validate(same_config_sweep("cli", 1, 1)["spec"])
    config.write_text(json.dumps(spec.trial_config(first[0].params).to_wire()))
    out = tmp_path / "result.json"
    cmd = [sys.executable, "-m", "tunix_rt.train", "--config", str(config), "--output", str(out)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = TrainResult.model_validate_json(out.read_text())
    cli = numbers({**result.metrics, "primary_score": result.primary_score}, result.history)

    expected = first[1]
    assert expected["curve"] and len(expected["curve"]) >= 3
    for label, got in [
        ("fresh worker beside another trial", second[1]),
        ("reused worker", reused[1]),
        ("alone", alone[1]),
        ("python -m tunix_rt.train", cli),
    ]:
        assert got == expected, f"{label}: {got} != {expected}"
