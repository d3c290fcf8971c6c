"""A lost worker node mid-sweep is a preemption: the trial resumes on another node from
its newest checkpoint, loses at most one checkpoint interval, and the sweep succeeds.

A real multi-node Ray cluster (``ray start`` head plus two worker nodes, each its own
processes: support/ray_nodes.py), the real driver (``python -m tunix_rt.tune --address``)
and the built-in trainer with orbax checkpoints; the node the trial runs on is killed
(SIGKILL to every process of it) once the trial has saved a checkpoint.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from support.ray_nodes import LocalCluster
from support.sweeps import driver_cmd, tiny_jax_sweep
from tunix_rt.api.sweep import SweepSpec
from tunix_rt.api.trial import SweepResult, TrialResult, TrialState
from tunix_rt.cli import app
from tunix_rt.controller.sweep_status import trial_fields

pytestmark = pytest.mark.slow

CHECKPOINT_EVERY = 10
STEPS = 300


def _without_ray_address(subprocess_env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in subprocess_env.items() if k != "RAY_ADDRESS"}


@pytest.fixture
def cluster(tmp_path: Path, subprocess_env: dict[str, str]) -> Iterator[LocalCluster]:
    nodes = LocalCluster(tmp_path, _without_ray_address(subprocess_env))
    try:
        yield nodes.start(workers=2)
    finally:
        nodes.stop()


def _one_trial_sweep(
    tmp_path: Path, name: str, checkpoint_every: int
) -> tuple[dict[str, Any], Path, list[str]]:
    """A sweep of one trial of STEPS steps (a log line a step, the final eval only),
    written to ``<tmp_path>/<name>.yaml``: its manifest, its run folder and the
    driver's command line (local storage, namespace ``ns``)."""
    doc = tiny_jax_sweep(name, smoke_steps=STEPS, eval_every=0)
    grid = {"learningRate": {"type": "grid", "values": [3e-3]}}
    doc["spec"].update(maxTrials=1, maxConcurrentTrials=1, searchSpace=grid)
    doc["spec"]["trainer"].update(logEvery=1, checkpointEvery=checkpoint_every)
    doc["spec"]["trainer"]["eval"].pop("intermediateRows")  # the final eval only
    spec_path = tmp_path / f"{name}.yaml"
    spec_path.write_text(yaml.safe_dump(doc))
    storage = tmp_path / "runs"
    cmd = driver_cmd(spec_path, f"file://{storage}", "--name", name)
    return doc, storage / "ns" / name, cmd


@contextmanager
def _driver(
    cmd: list[str], log: Path, subprocess_env: dict[str, str]
) -> Iterator[subprocess.Popen[bytes]]:
    """The driver, its output to ``log``; killed on the way out if still running."""
    with log.open("wb") as out:
        driver = subprocess.Popen(
            cmd, env=_without_ray_address(subprocess_env), stdout=out, stderr=subprocess.STDOUT
        )
    try:
        yield driver
    finally:
        if driver.poll() is None:
            driver.kill()


def _record(folder: Path) -> TrialResult | None:
    paths = sorted((folder / "trials").glob("*.json"))
    if not paths:
        return None
    try:
        return TrialResult.model_validate_json(paths[0].read_text())
    except ValueError:  # caught mid-write
        return None


def _worker_pid(folder: Path) -> int | None:
    """The trial's worker process, as Tune's results name it (``pid``)."""
    for path in (folder / "ray").rglob("result.json"):
        lines = [line for line in path.read_text().splitlines() if line.strip()]
        if lines:
            return int(json.loads(lines[-1])["pid"])
    return None


def _wait(what: str, check: Any, driver: subprocess.Popen[bytes], log: Path) -> Any:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        if driver.poll() is not None:
            pytest.fail(f"driver ended before {what}:\n{log.read_text()[-4000:]}")
        time.sleep(0.05)
    pytest.fail(f"no {what} in 300 s:\n{log.read_text()[-4000:]}")


def test_lost_worker_node_is_a_preemption(
    tmp_path: Path, subprocess_env: dict[str, str], cluster: LocalCluster
) -> None:
    doc, folder, cmd = _one_trial_sweep(tmp_path, "preempt", CHECKPOINT_EVERY)
    cmd += ["--address", cluster.address]
    log = tmp_path / "driver.log"
    started = time.monotonic()
    with _driver(cmd, log, subprocess_env) as driver:
        # Running, two checkpoints saved: then its node is lost.
        def checkpointed() -> TrialResult | None:
            record = _record(folder)
            ok = record and (record.checkpoint_step or 0) >= 2 * CHECKPOINT_EVERY
            return record if ok and record.state is TrialState.RUNNING else None

        before = _wait("checkpoint", checkpointed, driver, log)
        pid = _wait("worker pid", lambda: _worker_pid(folder), driver, log)
        node = cluster.node_of(pid)
        assert node is not None and node.name.startswith("worker"), (pid, cluster.nodes)
        killed_at = time.monotonic()
        node.kill()
        code = driver.wait(timeout=600)
    text = log.read_text(errors="replace")
    assert code == 0, text[-6000:]

    record = _record(folder)
    assert record is not None and record.state is TrialState.SUCCEEDED, text[-4000:]
    assert record.preemptions == 1, record
    assert record.steps == STEPS
    # Work re-done: what the lost attempt did after its newest checkpoint, at most one
    # interval; the resumed attempt started from that checkpoint (the trainer says so).
    assert 0 <= record.lost_steps <= CHECKPOINT_EVERY, record
    assert record.lost_accelerator_hours > 0
    resumed = [line for line in text.splitlines() if "resumed from" in line]
    assert resumed, text[-4000:]
    resumed_step = int(resumed[-1].rsplit("at step", 1)[1].split()[0])
    assert resumed_step >= before.checkpoint_step  # type: ignore[operator]
    assert "preempted (its worker was lost)" in text

    summary = SweepResult.model_validate_json((folder / "summary.json").read_text())
    assert summary.phase.value == "Succeeded" and summary.preemptions == 1
    assert not [t for t in summary.trials if t.state is TrialState.FAILED]
    spec = SweepSpec.model_validate(doc["spec"])
    status = trial_fields(summary.trials, spec, summary)
    assert status["preemptions"] == 1 and status["trialsFailed"] == 0
    assert status["trials"][0]["preemptions"] == 1
    shown = CliRunner().invoke(app, ["sweep", "show", str(folder)])
    assert "preemptions: 1 (resumed from checkpoints" in shown.stdout, shown.output
    assert "preemptions: 1 (trials resumed" in (folder / "evidence" / "report.html").read_text()
    print(
        f"preemption figures: lost_steps={record.lost_steps} (interval {CHECKPOINT_EVERY}), "
        f"checkpoint before kill={before.checkpoint_step}, resumed at {resumed_step}, "
        f"lost_hours={record.lost_accelerator_hours:.6f}, "
        f"kill->end {time.monotonic() - killed_at:.1f}s, total {time.monotonic() - started:.1f}s"
    )


def test_sigterm_to_a_trial_checkpoints_it_and_loses_nothing(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    """SIGTERM to the trial's worker process (what a node's pods get before GKE preempts
    it): the trial saves a checkpoint at its next step, is retried from it as a
    preemption and loses no step. A local sweep (the driver starts its own Ray)."""
    # No checkpoint but SIGTERM's.
    _, folder, cmd = _one_trial_sweep(tmp_path, "notice", checkpoint_every=STEPS)
    log = tmp_path / "driver.log"
    with _driver(cmd, log, subprocess_env) as driver:

        def training() -> int | None:
            step = _last_step(folder)
            return _worker_pid(folder) if step is not None and step >= 20 else None

        pid = _wait("training", training, driver, log)
        os.kill(pid, signal.SIGTERM)
        code = driver.wait(timeout=600)
    text = log.read_text(errors="replace")
    assert code == 0, text[-6000:]
    record = _record(folder)
    assert record is not None and record.state is TrialState.SUCCEEDED, text[-4000:]
    assert record.preemptions == 1 and record.lost_steps == 0, record
    said = [line for line in text.splitlines() if "preempted (its worker was lost)" in line]
    assert said and "0 step(s) to do again" in said[-1], text[-4000:]
    step = int(said[-1].split("resuming from step ")[1].split(",")[0])
    assert 20 <= step < STEPS
    assert (folder / "checkpoints" / record.trial_id / str(step)).is_dir()  # SIGTERM's save
    print(f"SIGTERM figures: checkpoint at step {step}, lost_steps={record.lost_steps}")


def _last_step(folder: Path) -> int | None:
    """The newest step Tune's results show for the trial."""
    for path in (folder / "ray").rglob("result.json"):
        lines = [line for line in path.read_text().splitlines() if line.strip()]
        if lines:
            return int(json.loads(lines[-1]).get("step", 0))
    return None
