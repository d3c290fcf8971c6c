"""``tunix-rt sweep run`` with the real driver and Ray Tune: the goal ends the sweep with
the goal trial Succeeded, Ctrl-C prints the reason and the table, and an entrypoint that
cannot be imported is refused before Ray starts.

The trials are the stand-in ``backend: python`` workloads of ``support/tune_workloads.py``
(a few sleeps), never the real trainer.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from support.manifests import write_sweep
from support.sweeps import stand_in_grid
from support.tune_workloads import python_trainer
from tunix_rt.api.sweep import SweepSpec
from tunix_rt.api.trial import DriverSessions, SweepResult, TrialResult, TrialState
from tunix_rt.cli import app
from tunix_rt.contract.exits import ExitCode

EXE = Path(sys.executable).with_name("tunix-rt")


def manifest(tmp_path: Path, name: str, spec: dict[str, Any]) -> Path:
    return write_sweep(tmp_path / f"{name}.yaml", name, spec)


def command(path: Path, storage: Path) -> list[str]:
    return [str(EXE), "sweep", "run", str(path), "--no-live", "--storage", f"file://{storage}"]


def run(args: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout)


def records(folder: Path) -> dict[str, TrialResult]:
    out = {}
    for path in sorted((folder / "trials").glob("*.json")):
        record = TrialResult.model_validate_json(path.read_text())
        out[record.trial_id] = record
    return out


def table(output: str) -> dict[str, str]:
    """The trial table's rows: trial id -> state."""
    out = {}
    for line in output.splitlines():
        cells = line.split()
        if len(cells) > 3 and cells[0].isdigit() and not cells[1].startswith("/"):
            out[cells[1]] = cells[3] if cells[2] == "*" else cells[2]
    return out


def test_an_entrypoint_that_cannot_be_imported_is_refused_before_ray_starts(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    spec = stand_in_grid(
        [1e-3, 3e-3], smoke_steps=10, trainer=python_trainer("no_such_package_here.train:train")
    )
    path = manifest(tmp_path, "unimportable", spec)
    started = time.monotonic()
    out = run(command(path, tmp_path / "runs"), subprocess_env, timeout=300)
    assert out.returncode == ExitCode.INVALID, out.stdout + out.stderr
    assert "no module named 'no_such_package_here'" in out.stderr
    assert "nothing ran" in out.stderr
    folder = tmp_path / "runs" / "local" / "unimportable"
    log = next((folder / "logs").glob("driver-*.log")).read_text()
    assert "ray.init" not in log and "Started a local Ray instance" not in log
    assert not (folder / "trials").exists()  # no trial started
    ended = DriverSessions.model_validate_json((folder / "sessions.json").read_text())
    assert ended.last is not None and ended.last.exit_code == ExitCode.INVALID
    print(f"preflight refusal took {time.monotonic() - started:.1f}s")


@pytest.mark.slow
def test_goal_reached_says_so_and_the_goal_trial_succeeded(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    # The first trial scores 1.0 (the stand-in's best learning rate): the goal.
    spec = stand_in_grid([3e-3, 1e-4, 2e-4], maxConcurrentTrials=1, objective={"goal": 0.9})
    path = manifest(tmp_path, "goal", spec)
    out = run(command(path, tmp_path / "runs"), subprocess_env, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    folder = tmp_path / "runs" / "local" / "goal"
    summary = SweepResult.model_validate_json((folder / "summary.json").read_text())
    assert summary.reason == "GoalReached"
    goal = summary.best_trial_id
    assert goal is not None
    # Records, summary and table agree: it ran every step, was scored, Succeeded.
    record = records(folder)[goal]
    assert record.state is TrialState.SUCCEEDED and record.steps == 20
    assert record.primary_score == 1.0
    assert {t.trial_id: t.state for t in summary.trials}[goal] is TrialState.SUCCEEDED
    assert table(out.stdout)[goal] == "Succeeded"
    assert f"sweep succeeded (objective.goal reached): {summary.message}" in " ".join(
        out.stdout.split()
    )


@pytest.mark.slow
def test_ctrl_c_prints_the_reason_and_the_table(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    # 200 reports of 0.5 s: a trial is still running when the interrupt lands, even on a
    # loaded machine.
    spec = stand_in_grid(
        [3e-3, 1e-3],
        smoke_steps=2000,
        entrypoint="support.tune_workloads:train_slow",
        maxConcurrentTrials=1,
    )
    path = manifest(tmp_path, "cut", spec)
    storage = tmp_path / "runs"
    folder = storage / "local" / "cut"
    proc = subprocess.Popen(
        command(path, storage),
        env=subprocess_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # SIGINT at its default, as a terminal starts the CLI. A suite started in the
        # background of a non-interactive shell (`make pytest &`) runs with SIGINT
        # ignored, a child inherits that, and Python then never raises KeyboardInterrupt:
        # the sweep ran to the end past this test's SIGINT in two such runs.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 400
        while time.monotonic() < deadline and proc.poll() is None:
            running = [t for t in records(folder).values() if t.state is TrialState.RUNNING]
            if running and running[0].steps > 0:
                break
            time.sleep(0.1)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == ExitCode.INTERRUPTED, stdout[-3000:] + stderr[-3000:]
    cut = table(stdout)
    assert "Interrupted" in cut.values() and "Running" not in cut.values(), stdout
    text = " ".join(stderr.split())
    planned = SweepSpec.model_validate(spec).planned_trials()
    assert f"sweep interrupted: sweep interrupted with 0 of {planned} trials finished" in text
    assert f"to resume: tunix-rt sweep run {path} --storage file://{storage}" in text
    assert not (folder / "summary.json").exists()
    # `tunix-rt sweep show` in this process (it reads files only): one Python start fewer
    # than a subprocess, the same command.
    shown = CliRunner().invoke(app, ["sweep", "show", str(folder)], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    assert "Interrupted" in table(shown.stdout).values() and "Running" not in shown.stdout
