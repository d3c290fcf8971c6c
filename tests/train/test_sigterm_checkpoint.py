"""SIGTERM (GKE's notice before it preempts a node) checkpoints the built-in trainer at
its next step boundary: a training process is signalled between two regular
checkpoints, and a checkpoint at the step it reached is on disk when it exits; run
again, it resumes from that step."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support.trainer import tiny_config
from tunix_rt.contract.exits import ExitCode
from tunix_rt.tune.preemption import newest_step
from tunix_rt.tune.trainable import COMPILE_CACHE_DEFAULTS

ROOT = Path(__file__).resolve().parents[2]
EVERY = 1000
"""Far apart: the checkpoint the signal causes is never a regular one."""


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_at_the_current_step(tmp_path: Path) -> None:
    config = tiny_config(maxSteps=5000, logEvery=1, checkpointEvery=EVERY, eval={"evalEvery": 0})
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(config.to_wire()), encoding="utf-8")
    folder = tmp_path / "ckpt"
    # Both runs with the trial workers' compile cache: the rerun loads the train step the
    # first run compiled instead of compiling it again (the same program, the same numbers).
    env = COMPILE_CACHE_DEFAULTS | dict(
        os.environ, PYTHONPATH=str(ROOT / "operator"), JAX_PLATFORMS="cpu", PYTHONUNBUFFERED="1"
    )
    cmd = [sys.executable, "-m", "tunix_rt.train", "--config", str(path)]
    log = tmp_path / "train.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*cmd, "--checkpoint-dir", str(folder)], env=env, stdout=out, stderr=out
        )
    try:
        deadline = time.monotonic() + 300
        while "step 20/" not in log.read_text(errors="replace"):  # training, past compile
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.05)
        assert newest_step(str(folder)) is None  # no regular checkpoint yet
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log.read_text(errors="replace")
    assert code == ExitCode.INTERRUPTED, text[-3000:]
    saved = newest_step(str(folder))
    assert saved is not None and 20 <= saved < EVERY, (saved, text[-2000:])
    assert f"checkpoint saved at step {saved}" in text
    steps = [int(m) for m in re.findall(r"^step (\d+)/", text, re.MULTILINE)]
    assert saved >= max(steps), (saved, steps[-3:])  # nothing reached was left unsaved

    again = subprocess.run(
        [*cmd, "--checkpoint-dir", str(folder), "--set", f"maxSteps={saved + 2}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"at step {saved}" in again.stdout + again.stderr
