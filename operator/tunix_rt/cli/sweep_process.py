"""The Tune driver as a local process of ``sweep run``: its command, its log, its watch."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live

from tunix_rt.api.sweep import SweepSpec
from tunix_rt.api.trial import TrialResult
from tunix_rt.cli.activity import Activity
from tunix_rt.cli.common import exit_meaning, no_retries
from tunix_rt.cli.display import ProgressLines, progress_view
from tunix_rt.contract.codec import encode_spec
from tunix_rt.contract.exits import ExitCode
from tunix_rt.contract.file_names import LOGS_DIR
from tunix_rt.contract.layout import LOCAL_NAMESPACE, SweepFiles
from tunix_rt.contract.phases import session_of_attempt
from tunix_rt.storage import StoreError

CLI_MARK = "[tunix-rt cli]"
"""How the lines this CLI adds to a driver log start (the driver's pid; its exit)."""

LOG_NAME = "driver-{stamp}.log"
"""A driver log's file name: when ``sweep run`` started it (:data:`LOG_STAMP`, UTC)."""

LOG_STAMP = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True)
class LocalSweep:
    """One ``sweep run``: what its steps share."""

    file: Path
    spec: SweepSpec
    name: str
    files: SweepFiles
    log_file: Path
    rerun: tuple[str, ...] = ()
    """The command that runs this sweep again as the user gave it (file, --name,
    --storage, --num-cpus): what every hint prints, with --fresh added where it says so."""
    fresh: bool = False
    started_at: datetime | None = None
    """When this ``sweep run`` started (UTC): records older than that are an earlier run's."""

    @property
    def summary_uri(self) -> str:
        return self.files.store.uri_for(self.files.layout.summary_key)


def log_path(files: SweepFiles, name: str) -> Path:
    stamp = datetime.now(UTC).strftime(LOG_STAMP)
    if files.store.scheme == "file":
        folder = Path(files.store.root) / files.layout.key(LOGS_DIR)
    else:
        folder = Path(tempfile.gettempdir()) / "tunix-rt" / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder / LOG_NAME.format(stamp=stamp)


def _parent_death_signal() -> None:  # pragma: no cover - runs in the child
    """Linux: the driver gets SIGTERM (graceful) if this CLI dies without passing it on."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _read_trials(files: SweepFiles, sweep: LocalSweep | None = None) -> list[TrialResult]:
    """The trial records so far; none while the store cannot be read (the next poll
    tries again). A ``--fresh`` run leaves out the earlier run's, which the driver is
    about to archive."""
    try:
        trials = files.trials()
    except StoreError:
        return []
    if sweep is None or not sweep.fresh or sweep.started_at is None:
        return trials
    return [t for t in trials if not _before(t, sweep.started_at)]


def _before(trial: TrialResult, when: datetime) -> bool:
    stamps = [s for s in (trial.started_at, trial.finished_at) if s is not None]
    return bool(stamps) and min(stamps) < when


def trial_resources(spec: SweepSpec) -> dict[str, float]:
    """What one trial reserves, as Ray Tune's status table names it (CPU, GPU, TPU)."""
    res = spec.resources
    named = {"CPU": res.cpu, "GPU": res.gpu, "TPU": float(res.tpu)}
    return {name: amount for name, amount in named.items() if amount}


def _driver_started(files: SweepFiles, since: datetime | None) -> bool:
    """Whether this run's driver has opened its session (it then starts Ray)."""
    try:
        sessions = files.sessions()
    except StoreError:
        return False
    return session_of_attempt(sessions.last if sessions else None, since) is not None


@contextlib.contextmanager
def _forward_sigterm(proc: subprocess.Popen[bytes]) -> Iterator[None]:
    def forward(signum: int, frame: Any) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, forward)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def driver_cmd(sweep: LocalSweep, fresh: bool, num_cpus: int | None) -> list[str]:
    """``python -m tunix_rt.tune …``: the operator's RayJob entrypoint, run locally."""
    cmd = [
        sys.executable, "-m", "tunix_rt.tune",
        "--spec-b64", encode_spec(sweep.spec),
        "--storage", sweep.files.store.uri,
        "--namespace", LOCAL_NAMESPACE,
        "--name", sweep.name,
        "--source", str(sweep.file),
    ]  # fmt: skip
    if fresh:
        cmd.append("--fresh")
    if num_cpus:
        cmd += ["--num-cpus", str(num_cpus)]
    return cmd


def run_driver(
    sweep: LocalSweep, cmd: list[str], console: Console, started: float, use_live: bool
) -> int:
    """Run the driver to its end, its output in the log file; its exit code."""
    with open(sweep.log_file, "wb") as log_handle:
        proc = subprocess.Popen(
            cmd,
            stdout=log_handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_parent_death_signal if sys.platform.startswith("linux") else None,
            env=os.environ.copy(),
        )
        _mark(log_handle, f"driver pid {proc.pid} on {socket.gethostname()}")
        code = _watch(proc, console, sweep, started, use_live)
        _mark(log_handle, f"driver exited: {exit_meaning(code)}")
        return code


def _mark(handle: Any, line: str) -> None:
    """Add a line of this CLI's to the driver log (which the driver shares: one offset)."""
    with contextlib.suppress(OSError, ValueError):
        handle.write(f"{CLI_MARK} {line}\n".encode())
        handle.flush()


def _watch(
    proc: subprocess.Popen[bytes],
    console: Console,
    sweep: LocalSweep,
    started: float,
    use_live: bool,
) -> int:
    """Poll the store for trial records until the driver exits; pass Ctrl-C on once."""
    spec = sweep.spec
    planned = spec.planned_trials()
    lines = ProgressLines(console, spec, sweep.started_at)
    interrupts = 0
    # Polls make one attempt each: the next poll is the retry, and a store that is down
    # for a while prints nothing here (the driver, which writes, retries and reports).
    polled = SweepFiles(no_retries(sweep.files.store), sweep.files.layout)

    activity = Activity(spec.budget.smoke_steps, builtin=spec.trainer.backend == "builtin")

    def view() -> Any:
        trials = _read_trials(polled, sweep)
        activity.update(trials, time.monotonic())
        return progress_view(
            sweep.name,
            trials,
            planned,
            spec.objective,
            spec.budget.smoke_steps,
            time.monotonic() - started,
            trial_resources(spec),
            activity,
            _driver_started(polled, sweep.started_at),
        )

    def say() -> None:
        trials = _read_trials(polled, sweep)
        lines.note(activity.stage(trials, _driver_started(polled, sweep.started_at)))
        lines.update(trials, planned)

    with contextlib.ExitStack() as stack:
        stack.enter_context(_forward_sigterm(proc))
        live = (
            stack.enter_context(Live(view(), console=console, refresh_per_second=2, transient=True))
            if use_live
            else None
        )
        if live is None:
            say()  # from the first second: what it is doing
        while True:
            try:
                try:
                    code = proc.wait(timeout=1.0)
                    break
                except subprocess.TimeoutExpired:
                    pass
                if live is not None:
                    live.update(view())
                else:
                    say()
            except KeyboardInterrupt:
                interrupts += 1
                if proc.poll() is None:
                    # One SIGINT: Tune saves its state and stops; a second one skips that.
                    proc.send_signal(signal.SIGINT)
                    if interrupts == 1:
                        console.print("[yellow]stopping the sweep (its state is saved)…[/yellow]")
    if live is None:
        lines.update(_read_trials(sweep.files, sweep), planned)
    if interrupts and code != 0:
        return ExitCode.INTERRUPTED
    return code
