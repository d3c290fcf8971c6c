"""The display is never silent: from the first second it says what the sweep is doing
(starting the driver, starting Ray, a trial compiling), then each trial's speed and ETA."""

from __future__ import annotations

import io
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console

from support.manifests import write_sweep
from support.trials import lr_trial
from support.tune_workloads import python_trainer
from tunix_rt.api.sweep import SweepSpec
from tunix_rt.api.trial import TrialResult, TrialState
from tunix_rt.cli.activity import Activity, eta
from tunix_rt.cli.display import ProgressLines, progress_view

EXE = Path(sys.executable).with_name("tunix-rt")
SPEC = SweepSpec.model_validate(
    {"searchSpace": {"learningRate": {"type": "loguniform", "low": 1e-4, "high": 3e-2}}}
)


def running(trial_id: str, steps: int) -> TrialResult:
    return lr_trial("s", trial_id, 1e-3, None, TrialState.RUNNING, steps=steps)


def render(view: object) -> str:
    out = io.StringIO()
    Console(file=out, width=200, color_system=None).print(view)
    return out.getvalue()


def test_stages_before_the_first_step() -> None:
    activity = Activity(max_steps=300, builtin=True)
    assert activity.stage([], driver_started=False) == "starting the driver (loading Ray Tune)"
    assert activity.stage([], driver_started=True) == "starting Ray and the first trial"
    assert activity.stage([running("t0", 0)], driver_started=True) == (
        "trial t0: importing JAX and compiling the step"
    )
    assert activity.stage([running("t0", 10)], driver_started=True) is None
    python = Activity(max_steps=300, builtin=False)
    assert python.stage([running("t0", 0)], True) == "trial t0: starting the entrypoint"


def test_speed_and_eta_from_successive_polls() -> None:
    activity = Activity(max_steps=300)
    activity.update([running("t0", 10)], now=100.0)
    assert activity.speed(running("t0", 10)) == ""  # one poll: no rate yet
    activity.update([running("t0", 50)], now=120.0)  # 40 steps in 20 s
    assert activity.speed(running("t0", 50)) == ", 2 steps/s, ETA 2m"
    assert eta(30) == "30s" and eta(3 * 3600 + 120) == "3h02m"
    view = render(
        progress_view("s", [running("t0", 50)], 2, SPEC.objective, 300, 21.0, activity=activity)
    )
    assert "running t0: step 50/300, 2 steps/s, ETA 2m" in view


def test_the_live_view_says_what_it_does_before_any_trial() -> None:
    view = render(progress_view("s", [], 2, SPEC.objective, 300, 1.0, activity=Activity(300)))
    assert "starting the driver (loading Ray Tune)…" in view


def test_progress_lines_say_each_stage_once() -> None:
    out = io.StringIO()
    lines = ProgressLines(Console(file=out, width=200), SPEC)
    activity = Activity(300)
    for stage in [
        activity.stage([], False),
        activity.stage([], False),
        activity.stage([], True),
        activity.stage([running("t0", 0)], True),
        activity.stage([running("t0", 5)], True),
    ]:
        lines.note(stage)
    assert out.getvalue().splitlines() == [
        "… starting the driver (loading Ray Tune)",
        "… starting Ray and the first trial",
        "… trial t0: importing JAX and compiling the step",
    ]


def test_a_terminal_shows_what_sweep_run_does_from_the_first_seconds(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    """``sweep run`` in a pseudo-terminal (its live display): the screen says what it is
    doing within seconds, long before the driver has anything to report. The sweep's
    entrypoint cannot be imported, so it ends before Ray starts."""
    path = tmp_path / "screen.yaml"
    spec = {
        "searchSpace": {"learningRate": {"type": "grid", "values": [1e-3]}},
        "algorithm": "grid",
        "trainer": python_trainer("no_such_package_here.x:train"),
    }
    write_sweep(path, "screen", spec)
    controller, terminal = pty.openpty()
    env = {**subprocess_env, "TERM": "xterm-256color"}
    env.pop("COLUMNS", None)
    cmd = [str(EXE), "sweep", "run", str(path), "--storage", f"file://{tmp_path}/runs"]
    proc = subprocess.Popen(cmd, stdin=terminal, stdout=terminal, stderr=terminal, env=env)
    os.close(terminal)
    screen = b""
    started = time.monotonic()
    seen_at = None
    try:
        while time.monotonic() - started < 240:
            ready, _, _ = select.select([controller], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(controller, 65536)
                except OSError:  # the CLI closed the terminal
                    break
                if not chunk:
                    break
                screen += chunk
                if seen_at is None and b"starting the driver" in screen:
                    seen_at = time.monotonic() - started
            elif proc.poll() is not None:
                break
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(controller)
    text = screen.decode(errors="replace")
    assert seen_at is not None, text[-3000:]
    assert "no module named 'no_such_package_here'" in text
    assert proc.returncode == 2
