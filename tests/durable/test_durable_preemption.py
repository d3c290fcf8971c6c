"""A lost trial worker on an object store: the trial's process is killed (SIGKILL, as
when its pod or node goes), Ray Tune retries it from the checkpoint it uploaded to the
store (s3:// on moto), and the record counts a preemption, never a failure."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

import psutil
import pytest

from support.durable import make_driver, records, summary_of, sweep_cmd, tiny_spec, write_manifest
from tunix_rt.api.trial import TrialResult, TrialState
from tunix_rt.contract.exits import ExitCode
from tunix_rt.storage import Store

pytestmark = pytest.mark.slow

EVERY = 10


def _trial_worker(session: int) -> int | None:
    """The Ray worker running the trial, in the driver's session (``ray::…train…``)."""
    for proc in psutil.process_iter(["pid", "cmdline"]):
        with contextlib.suppress(psutil.Error, OSError):
            title = " ".join(proc.info["cmdline"] or [])
            if (
                os.getsid(proc.pid) == session
                and title.startswith("ray::")
                and ("train" in title or "Func" in title)
            ):
                return int(proc.pid)
    return None


def test_killed_trial_worker_resumes_from_the_stores_checkpoint(
    tmp_path: Path, short_tmp: Path, s3_sweep_store: Store, driver_env: dict[str, str]
) -> None:
    store = s3_sweep_store
    spec = tiny_spec(
        searchSpace={"learningRate": {"type": "grid", "values": [3e-3]}},
        algorithm="grid",
        maxTrials=1,
        maxConcurrentTrials=1,
        budget={"smokeSteps": 100},
    )
    del spec["seed"]
    manifest = write_manifest(tmp_path / "lost.yaml", "lost", spec)
    env = driver_env | {"TUNIX_RT_TEST_STEP_SECONDS": "0.7"}
    driver = make_driver(sweep_cmd(manifest, store, "lost"), env, short_tmp, 1).start()
    assert driver.proc is not None
    deadline = time.monotonic() + 240
    before: TrialResult | None = None
    while before is None:
        assert driver.proc.poll() is None, driver.output()[-4000:]
        assert time.monotonic() < deadline, driver.output()[-4000:]
        trial = next(iter(records(store, "lost").values()), None)
        if trial and trial.state is TrialState.RUNNING and (trial.checkpoint_step or 0) >= 20:
            before = trial
        else:
            time.sleep(0.1)
    pid = _trial_worker(driver.proc.pid)
    assert pid is not None, driver.output()[-3000:]
    os.kill(pid, signal.SIGKILL)
    code = driver.wait(timeout=240)
    out = driver.output()
    assert code == ExitCode.OK, out[-4000:]

    record = records(store, "lost")[before.trial_id]
    assert record.state is TrialState.SUCCEEDED and record.preemptions == 1, record
    assert 0 <= record.lost_steps <= EVERY, record
    assert record.metrics["resumed_from"] >= (before.checkpoint_step or 0), record.metrics
    assert record.starts == 2
    summary = summary_of(store, "lost")
    assert summary is not None and summary.preemptions == 1
    print(
        f"object store: killed at checkpoint {before.checkpoint_step}, resumed from "
        f"{record.metrics['resumed_from']:.0f}, lost_steps={record.lost_steps}"
    )
