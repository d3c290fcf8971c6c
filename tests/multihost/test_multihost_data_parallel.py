"""The built-in trainer over 2 processes on this machine: JAX's multi-process CPU runtime
(``jax.distributed`` + gloo collectives), one CPU device per process, a mesh over both.

The same config trained by one process (one device, whole batch) and by two (half the
batch each, gradients all-reduced across the processes) must give the same loss curve:
the batch is the same, only the reduction order differs. Stated tolerance: relative
1e-4 per logged loss (measured here: ~1e-6).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from support.net import free_port
from support.trainer import tiny_config
from tunix_rt.tune.trainable import COMPILE_CACHE_DEFAULTS

pytestmark = pytest.mark.slow

WORKER = Path(__file__).with_name("dp_worker.py")
LOSS_RTOL = 1e-4


def _run(
    config: str, env: dict[str, str], out: Path, processes: int = 1, **extra: str
) -> list[subprocess.Popen[str]]:
    coordinator = f"127.0.0.1:{free_port()}"
    procs = []
    for rank in range(processes):
        cmd = [sys.executable, str(WORKER), "--config", config, "--out", f"{out}.{rank}.json"]
        cmd += ["--processes", str(processes), "--rank", str(rank), "--coordinator", coordinator]
        for key, value in extra.items():
            cmd += [f"--{key.replace('_', '-')}", value]
        procs.append(subprocess.Popen(cmd, env=env, text=True, stderr=subprocess.PIPE))
    return procs


def _wait(procs: list[subprocess.Popen[str]]) -> None:
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]


def _read(out: Path, rank: int) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(Path(f"{out}.{rank}.json").read_text())
    return result


def test_two_processes_train_like_one(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    config = tiny_config(maxSteps=20, logEvery=5, checkpointEvery=10).model_dump_json(by_alias=True)
    # The trial workers' compile cache: the ranks load what the single run compiled for
    # one device (the model's initialisers) instead of each compiling it again.
    env = COMPILE_CACHE_DEFAULTS | {**subprocess_env, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": ""}
    one, two = tmp_path / "one", tmp_path / "two"
    checkpoints = tmp_path / "checkpoints"
    _wait(_run(config, env, one))
    _wait(_run(config, env, two, processes=2, checkpoint_dir=str(checkpoints), hlo="1"))

    single, ranks = _read(one, 0), [_read(two, r) for r in (0, 1)]
    assert single["process_count"] == 1 and single["devices"] == ["cpu:0"]
    for rank, seen in enumerate(ranks):
        assert seen["process_count"] == 2 and seen["process_index"] == rank
        # The mesh spans both processes; each holds one of its devices.
        assert len(seen["devices"]) == 2 and len(seen["local_devices"]) == 1
        assert seen["local_devices"][0] in seen["devices"]
        # The compiled step reduces gradients across the processes.
        assert seen["all_reduce"]

    curve = [h["loss"] for h in single["history"]]
    assert len(curve) == 4  # steps 5, 10, 15 and the final report
    for seen in ranks:
        assert [h["step"] for h in seen["history"]] == [h["step"] for h in single["history"]]
        assert [h["loss"] for h in seen["history"]] == pytest.approx(curve, rel=LOSS_RTOL)
        assert seen["primary_score"] == single["primary_score"]
        assert seen["eval_rows"] == single["eval_rows"] == 16
    # Both ranks computed the same (replicated) numbers.
    assert [h["loss"] for h in ranks[0]["history"]] == [h["loss"] for h in ranks[1]["history"]]
    # Checkpoints written once: orbax stores the replicated state from process 0 only.
    steps = sorted(p.name for p in checkpoints.iterdir() if p.name.isdigit())
    assert steps == ["10", "20"]
    written = sorted(p.name for p in (checkpoints / "20" / "state").iterdir())
    assert [n for n in written if n.startswith("ocdbt.process_")] == ["ocdbt.process_0"]
