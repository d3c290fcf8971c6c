"""The Tune driver on an s3:// store (moto): Ray Tune's state in the store, budgets in
accelerator-hours, the objective goal, and a restart on state cut mid-upload.

Ray Tune, the driver, the store and the records are real; the trials are the
checkpointing stand-in of ``support/durable_workloads.py`` (sleeps), so each run takes
seconds.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from support.durable import (
    NS,
    make_driver,
    records,
    sessions_of,
    snapshot_knows,
    summary_of,
    sweep_cmd,
    tiny_spec,
    write_manifest,
)
from tunix_rt.api.trial import TrialResult, TrialState
from tunix_rt.contract.exits import ExitCode
from tunix_rt.contract.layout import SweepLayout
from tunix_rt.contract.phases import BUDGET_EXHAUSTED, GOAL_REACHED
from tunix_rt.results import load
from tunix_rt.storage import Store

pytestmark = pytest.mark.slow


def run_to_end(
    tmp_path: Path,
    short_tmp: Path,
    store: Store,
    env: dict[str, str],
    name: str,
    spec: dict[str, Any],
) -> tuple[int, str]:
    manifest = write_manifest(tmp_path / f"{name}.yaml", name, spec)
    driver = make_driver(sweep_cmd(manifest, store, name), env, short_tmp, 1).start()
    code = driver.wait(timeout=240)
    return code, driver.output()


def test_goal_reached_ends_the_sweep_early(
    tmp_path: Path, short_tmp: Path, s3_sweep_store: Store, driver_env: dict[str, str]
) -> None:
    """objective.goal that the second-best learning rates reach: the sweep stops well before
    its 5 trials, Succeeds with reason GoalReached, the goal trial is the best; the curves
    and Ray Tune's own result files are in the store."""
    store = s3_sweep_store
    spec = tiny_spec(
        searchSpace={"learningRate": {"type": "grid", "values": [1e-4, 3e-3, 2e-4, 3e-4, 4e-4]}},
        algorithm="grid",
        maxTrials=5,
        maxConcurrentTrials=1,
        objective={"metric": "primary_score", "mode": "max", "goal": 0.9},
    )
    del spec["seed"]  # a grid samples nothing: a seed would be refused
    code, out = run_to_end(tmp_path, short_tmp, store, driver_env, "goal", spec)
    assert code == ExitCode.OK, out[-4000:]
    summary = summary_of(store, "goal")
    assert summary is not None and summary.reason == GOAL_REACHED, out[-3000:]
    trials = records(store, "goal")
    assert len(trials) < 5, [(t.trial_id, t.params, t.state) for t in trials.values()]
    best = trials[summary.best_trial_id or ""]
    assert best.params["learningRate"] == 3e-3 and (best.primary_score or 0) >= 0.9
    assert "reached objective.goal primary_score=0.9" in (summary.message or "")
    # Curves: every report of each trial, in step order, in its record.
    assert [p["step"] for p in best.curve] == [10.0, 20.0, 30.0, 40.0]
    assert all("loss" in p for p in best.curve) and best.curve[-1]["primary_score"] == 1.0
    assert best.starts == 1 and best.accelerator_hours > 0
    # Ray Tune's own per-trial files went to the store under the sweep's prefix.
    layout = SweepLayout.of(NS, "goal")
    for name in ("progress.csv", "result.json"):
        assert store.exists(layout.ray_trial_key(best.trial_id, name)), store.list(layout.prefix)
    assert any(
        ".tfevents." in k for k in store.list(f"{layout.experiment_prefix}/{best.trial_id}/")
    )
    # ... and the results API reads the curve back from the record, no Ray needed.
    loaded = load(store.uri_for(layout.prefix))
    assert loaded.curve(best.trial_id) == best.curve


def test_accelerator_hours_budget_stops_the_sweep(
    tmp_path: Path, short_tmp: Path, s3_sweep_store: Store, driver_env: dict[str, str]
) -> None:
    """budget.acceleratorHours that fits about 2.7 of the 6 trials (CPU trials count one
    device each): the sweep starts no trial that would pass it, Succeeds with reason
    BudgetExhausted, and the hours it used are within one trial's worth of the cap."""
    # A trial is mostly sleep (4 reports of 2 s: ~8 s, 0.0022 h), so the cap fits the
    # same number of trials on a busy machine. With 0.5 s reports (~2 s a trial) and a
    # 5.4 s cap, beside a CPU hog the start-up and checkpoint writes doubled each trial's
    # time, both running trials were cut before their first score, and the sweep Failed.
    store, cap = s3_sweep_store, 0.006
    env = driver_env | {"TUNIX_RT_TEST_STEP_SECONDS": "2.0"}
    spec = tiny_spec(budget={"smokeSteps": 40, "acceleratorHours": cap})
    code, out = run_to_end(tmp_path, short_tmp, store, env, "budget", spec)
    assert code == ExitCode.OK, out[-4000:]
    summary = summary_of(store, "budget")
    assert summary is not None and summary.reason == BUDGET_EXHAUSTED, out[-3000:]
    assert "budget.acceleratorHours 0.006" in (summary.message or "")
    trials = records(store, "budget")
    done = [t for t in trials.values() if t.state is TrialState.SUCCEEDED]
    assert 1 <= len(done) < 6, [(t.trial_id, t.state, t.accelerator_hours) for t in trials.values()]
    used = summary.accelerator_hours_used or 0.0
    assert used == pytest.approx(sum(t.accelerator_hours for t in trials.values()))
    one_trial = max(t.accelerator_hours for t in done)
    assert abs(used - cap) <= one_trial, (used, cap, one_trial)
    # The best is a trial that reached its final score: one finished, or the one whose
    # final report hit the cap (Tune stops it at that report, so it is recorded Stopped).
    scored = {t.trial_id for t in trials.values() if t.primary_score is not None}
    assert summary.best_trial_id in scored and {t.trial_id for t in done} <= scored
    sessions = sessions_of(store, "budget")
    assert sessions is not None and [s.exit_code for s in sessions.sessions] == [0]


def test_restart_on_state_cut_mid_upload_fails_clearly_and_keeps_everything(
    tmp_path: Path, short_tmp: Path, s3_sweep_store: Store, driver_env: dict[str, str]
) -> None:
    """The driver is killed once a trial finished; then the store is cut while Ray Tune's
    snapshot was being written (half of it left). A new driver does not guess: it exits
    FAILED with a message naming the state, the intact trial records and --fresh, and
    changes nothing but setting the cut snapshot aside."""
    store, name = s3_sweep_store, "cut"
    env = driver_env | {"TUNIX_RT_TEST_STEP_SECONDS": "0.6"}
    manifest = write_manifest(tmp_path / "cut.yaml", name, tiny_spec())
    cmd = sweep_cmd(manifest, store, name)
    layout = SweepLayout.of(NS, name)
    first = make_driver(cmd, env, short_tmp, 1).start()
    done: list[TrialResult] = []
    snapshots: list[str] = []
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and first.proc and first.proc.poll() is None:
            done = [t for t in records(store, name).values() if t.state is TrialState.SUCCEEDED]
            snapshots = [
                k for k in store.list(layout.experiment_prefix + "/") if "experiment_state" in k
            ]
            if done and snapshots and snapshot_knows(store, name, {t.trial_id for t in done}):
                break
            time.sleep(0.3)
    finally:
        first.kill()
        first.lose_local_state()
    assert done and snapshots, first.output()[-3000:]
    before = {k: store.read_bytes(k) for k in store.list(layout.trials_prefix)}
    snapshot = max(
        k
        for k in store.list(layout.experiment_prefix + "/")
        if k.endswith(".json") and "experiment_state" in k
    )
    whole = store.read_bytes(snapshot)
    store.write_bytes(snapshot, whole[: len(whole) // 2])  # the store cut mid-write

    second = make_driver(cmd, env, short_tmp, 2).start()
    code = second.wait(timeout=180)
    out = second.output()
    assert code == ExitCode.FAILED, out[-3000:]
    assert "experiment state" in out and "is incomplete" in out and "--fresh" in out, out[-3000:]
    assert f"{len(before)} trial record(s)" in out
    assert {k: store.read_bytes(k) for k in store.list(layout.trials_prefix)} == before
    assert store.read_bytes(snapshot + ".cut") == whole[: len(whole) // 2]
    assert store.exists(f"{layout.experiment_prefix}/tuner.pkl")
    assert summary_of(store, name) is None
