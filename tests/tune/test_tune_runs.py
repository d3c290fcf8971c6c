"""Real Ray Tune sweeps through the driver's command line (``python -m tunix_rt.tune``):
failure budget, resume after a kill, TPE + ASHA.

Ray, Tune, the searchers, schedulers, the store and the records are all real; the trial
workload is the stand-in in ``support/tune_workloads.py`` (a few sleeps) so these runs take
seconds. ``test_tune_e2e.py`` runs the real trainer.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import yaml

from support import sweeps
from support.durable import kill_session
from support.manifests import write_sweep
from support.sweeps import stand_in_grid
from support.tune_workloads import python_trainer
from tunix_rt.api.trial import SweepResult, TrialResult, TrialState
from tunix_rt.evidence import verify_zip

pytestmark = pytest.mark.slow


def driver_cmd(spec: Path, storage: Path, name: str) -> list[str]:
    return sweeps.driver_cmd(spec, f"file://{storage}", "--name", name)


def run_driver(
    cmd: list[str], env: dict[str, str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


def run_sweep(
    tmp_path: Path, name: str, spec: dict[str, Any], env: dict[str, str]
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """The driver run of a Sweep of ``spec`` into ``tmp_path/runs``: that store, the run."""
    storage = tmp_path / "runs"
    path = write_sweep(tmp_path / f"{name}.yaml", name, spec)
    return storage, run_driver(driver_cmd(path, storage, name), env)


def records(storage: Path, name: str) -> dict[str, TrialResult]:
    folder = storage / "ns" / name / "trials"
    out = {}
    for path in sorted(folder.glob("*.json")):
        record = TrialResult.model_validate_json(path.read_text())
        out[record.trial_id] = record
    return out


def summary(storage: Path, name: str) -> SweepResult:
    return SweepResult.model_validate_json((storage / "ns" / name / "summary.json").read_text())


def test_failed_trials_within_budget_then_stop(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    env = subprocess_env
    storage, out = run_sweep(
        tmp_path,
        "fails",
        # grid order: ok, diverges, diverges, never runs
        stand_in_grid([0.003, 0.5, 0.9, 0.001], maxFailedTrials=1),
        env,
    )
    assert out.returncode == 1, out.stdout[-3000:] + out.stderr[-3000:]
    assert "more than maxFailedTrials (1)" in out.stderr

    trials = sorted(records(storage, "fails").values(), key=lambda t: t.params["learningRate"])
    by_lr = {t.params["learningRate"]: t for t in trials}
    assert by_lr[0.003].state is TrialState.SUCCEEDED and by_lr[0.003].primary_score == 1.0
    for lr in (0.5, 0.9):
        assert by_lr[lr].state is TrialState.FAILED
        assert by_lr[lr].error and "FloatingPointError: loss diverged" in by_lr[lr].error
        assert by_lr[lr].preemptions == 0  # a trainer error: failed, never retried
    assert 0.001 not in by_lr or by_lr[0.001].state is not TrialState.SUCCEEDED  # stopped

    result = summary(storage, "fails")
    assert result.phase.value == "Failed"
    assert "2 trial(s) failed, more than maxFailedTrials (1)" in (result.message or "")
    assert result.best_trial_id == by_lr[0.003].trial_id  # what did finish is kept
    assert result.preemptions == 0

    # A failed sweep still leaves its evidence: every trial, the failures, the verdict.
    evidence = storage / "ns" / "fails" / "evidence"
    bundles = sorted((evidence / "submission").glob("*.zip"))
    assert len(bundles) == 1, out.stdout[-3000:]
    bundle = bundles[0]
    check = verify_zip(bundle)
    assert check.ok, check.errors
    assert sorted(n for n in check.files if n.startswith("trials/")) == sorted(
        f"trials/{t.trial_id}.json" for t in result.trials
    )
    log = (evidence / "sweep_log.txt").read_text()
    assert "Failed: 2 trial(s) failed" in log and "loss diverged" in log


def test_trials_reuse_one_worker_process_even_after_early_stops(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    """Built-in trials run one after another in the same worker process (Ray Tune's
    reuse_actors: JAX, the dataset and the compiled step stay loaded). Trials that ASHA
    stops mid-way leave the process reusable: every trial after them runs there too,
    and none fails for it. Each record names its worker (``<host>:<pid>``)."""
    storage, out = run_sweep(
        tmp_path,
        "reuse",
        {
            # The first rate trains; each later one is smaller, so its loss at the first
            # rung (step 10) is higher than every loss before it there: ASHA stops it.
            "searchSpace": {"learningRate": {"type": "grid", "values": [3e-3, 3e-7, 2e-7, 1e-7]}},
            "algorithm": "grid",
            "maxTrials": 4,
            "maxConcurrentTrials": 1,
            "scheduler": {"type": "asha", "gracePeriod": 10, "reductionFactor": 2},
            "budget": {"smokeSteps": 40},
            "trainer": {
                "model": {"layers": 1, "width": 32, "heads": 2, "context": 128},
                "dataset": {"trainSize": 128, "evalSize": 8},
                "eval": {"evalEvery": 0},
                "batchSize": 8,
                "logEvery": 10,
            },
        },
        subprocess_env,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    trials = sorted(records(storage, "reuse").values(), key=lambda t: -t.params["learningRate"])
    states = [(t.params["learningRate"], t.state.value, t.steps, t.worker) for t in trials]
    assert [t.state for t in trials].count(TrialState.STOPPED) >= 2, states
    assert not [t for t in trials if t.state is TrialState.FAILED], states
    assert trials[0].state is TrialState.SUCCEEDED, states
    for trial in trials[1:]:  # each stopped on its first rung's report, which it keeps
        assert trial.curve and trial.curve[-1]["step"] == trial.steps == 10, states
    workers = {t.worker for t in trials}
    assert len(workers) == 1 and None not in workers, states
    host, _, pid = workers.pop().rpartition(":")
    assert host == socket.gethostname() and int(pid) != os.getpid()  # a Ray worker's


def test_interrupted_sweep_resumes_without_rerunning_finished_trials(
    tmp_path: Path, subprocess_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    env = subprocess_env
    spec = write_sweep(
        tmp_path / "resume.yaml",
        "resume",
        {
            "searchSpace": {"learningRate": {"type": "loguniform", "low": 1e-4, "high": 3e-2}},
            "maxTrials": 3,
            "seed": 5,
            "budget": {"smokeSteps": 40},
            "trainer": python_trainer("support.tune_workloads:train_slow", logEvery=10),
        },
    )
    storage = tmp_path / "runs"
    cmd = driver_cmd(spec, storage, "resume")
    log = open(tmp_path / "first.log", "w")  # noqa: SIM115 - closed below
    first = subprocess.Popen(
        cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    finished: dict[str, bytes] = {}
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and first.poll() is None:
            done = {
                k: v
                for k, v in records(storage, "resume").items()
                if v.state is TrialState.SUCCEEDED
            }
            if done:
                folder = storage / "ns" / "resume" / "trials"
                finished = {k: (folder / f"{k}.json").read_bytes() for k in done}
                break
            time.sleep(0.2)
    finally:
        kill_session(first.pid, pause=0.5)  # like a kill -9 of the whole run, Ray included
        first.wait(timeout=30)
        log.close()
    assert first.returncode == -signal.SIGKILL, (tmp_path / "first.log").read_text()[-3000:]
    assert finished, (tmp_path / "first.log").read_text()[-3000:]
    assert not (storage / "ns" / "resume" / "summary.json").exists()

    # A changed spec is not resumed silently (this check runs before Ray starts).
    changed = write_sweep(
        tmp_path / "changed.yaml",
        "resume",
        {**yaml.safe_load(spec.read_text())["spec"], "maxTrials": 4},
    )
    # The driver's own command line, in this process: no Python and Ray start to pay for
    # a refusal, and Ray never started here shows that the check comes before it.
    # The environment the driver sets for its session stays with this check.
    import ray

    from tunix_rt.tune import command

    with mock.patch.dict(os.environ):
        refused = command.main(sweeps.driver_args(changed, f"file://{storage}", "--name", "resume"))
    assert refused == 2 and "changed since its earlier run" in capsys.readouterr().err
    assert not ray.is_initialized()

    again = run_driver(cmd, env)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "resuming sweep 'resume'" in again.stdout

    after = records(storage, "resume")
    folder = storage / "ns" / "resume" / "trials"
    for trial_id, data in finished.items():
        # Not re-run: the record of a finished trial is byte for byte what it was.
        assert (folder / f"{trial_id}.json").read_bytes() == data
    assert len(after) == 3
    assert all(t.state is TrialState.SUCCEEDED for t in after.values())
    # A sweep resumed after its driver was lost: no trial lost a worker of its own.
    assert all(t.preemptions == 0 for t in after.values())
    assert len({t.params["learningRate"] for t in after.values()}) == 3
    result = summary(storage, "resume")
    assert result.phase.value == "Succeeded"
    assert sorted(t.trial_id for t in result.trials) == sorted(after)
    best = max(after.values(), key=lambda t: t.primary_score or -1)
    assert result.best_trial_id == best.trial_id
    # The log of the killed run is kept and continued, not started over.
    log_text = (storage / "ns" / "resume" / "sweep_log.txt").read_text()
    resumed_at = log_text.index("resuming sweep 'resume'")
    for trial_id in finished:
        assert log_text.index(f"trial {trial_id} started") < resumed_at
    assert "Succeeded: best trial" in log_text[resumed_at:]


def test_tpe_with_asha_on_a_real_tuner(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    env = subprocess_env
    storage, out = run_sweep(
        tmp_path,
        "tpe",
        {
            "searchSpace": {
                "learningRate": {"type": "loguniform", "low": 1e-4, "high": 5e-2},
                "batchSize": {"type": "choice", "values": [16, 32]},
            },
            "algorithm": "tpe",
            "scheduler": {"type": "asha", "gracePeriod": 10, "reductionFactor": 2},
            "maxTrials": 4,
            "maxConcurrentTrials": 2,
            "seed": 1,
            "budget": {"smokeSteps": 40},
            "trainer": python_trainer(logEvery=10),
        },
        env,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    trials = records(storage, "tpe")
    assert len(trials) == 4
    for t in trials.values():
        assert t.state in {TrialState.SUCCEEDED, TrialState.STOPPED}, t
        assert set(t.params) == {"learningRate", "batchSize"}
        if t.state is TrialState.STOPPED:
            assert t.steps < 40
        else:
            assert t.steps == 40 and t.primary_score is not None
    result = summary(storage, "tpe")
    scored = [t for t in trials.values() if t.primary_score is not None]
    assert result.best_trial_id == max(scored, key=lambda t: t.primary_score or 0).trial_id
    spec_file = json.loads((storage / "ns" / "tpe" / "spec.json").read_text())
    assert spec_file["algorithm"] == "tpe"
