"""The Tune driver on an s3:// store (moto): Ray Tune's state in the store, budgets in
accelerator-hours, the objective goal, and a restart on state cut mid-upload.

Ray Tune, the driver, the store and the records are real; the trials are the
checkpointing stand-in of ``support/durable_workloads.py`` (sleeps), so each run takes
seconds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from support.durable import (
    NS,
    driver_args,
    make_driver,
    records,
    sessions_of,
    summary_of,
    tiny_spec,
    write_manifest,
)
from tunix_rt.api.trial import TrialState
from tunix_rt.contract.exits import ExitCode
from tunix_rt.contract.layout import SweepLayout
from tunix_rt.contract.phases import BUDGET_EXHAUSTED, GOAL_REACHED
from tunix_rt.results import load
from tunix_rt.storage import Store

pytestmark = pytest.mark.slow


def run_to_end(
    tmp_path: Path, short_tmp: Path, store: Store, env: dict[str, str], name: str, spec: dict[str, Any]
) -> tuple[int, str]:
    manifest = write_manifest(tmp_path / f"{name}.yaml", name, spec)
    driver = make_driver(driver_args(manifest, store, name), env, short_tmp, 1).start()
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
        maxConcurrentTrials=1,
        objective={"metric": "primary_score", "mode": "max", "goal": 0.9},
    )
    code, out = run_to_end(tmp_path, short_tmp, store, driver_env, "goal", spec)
    assert code == ExitCode.OK, out[-4000:]
    summary = summary_of(store, "goal")
    assert summary is not None and summary.reason == GOAL_REACHED, out[-3000:]
    trials = records(store, "goal")
    assert len(trials) < 5, [(t.trial_id, t.params, t.state) for t in trials.values()]
    best = trials[summary.best_trial_id or ""]
    assert best.params["learningRate"] == 3e-3 and (best.primary_score or 0) >= 0.9
    assert f"reached objective.goal primary_score=0.9" in (summary.message or "")
    # Curves: every report of each trial, in step order, in its record.
    assert [p["step"] for p in best.curve] == [10.0, 20.0, 30.0, 40.0]
    assert all("loss" in p for p in best.curve) and best.curve[-1]["primary_score"] == 1.0
    assert best.starts == 1 and best.accelerator_hours > 0
    # Ray Tune's own per-trial files went to the store under the sweep's prefix.
    layout = SweepLayout.of(NS, "goal")
    for name in ("progress.csv", "result.json"):
        assert store.exists(layout.ray_trial_key(best.trial_id, name)), store.list(layout.prefix)
    assert any(".tfevents." in k for k in store.list(f"{layout.experiment_prefix}/{best.trial_id}/"))
    # ... and the results API reads the curve back from the record, no Ray needed.
    loaded = load(store.uri_for(layout.prefix))
    assert loaded.curve(best.trial_id) == best.curve
