"""The four places that rebuild a sweep's best trial config agree, a searched maxSteps
included: the operator (``fromSweep``), the rehearsal run, ``tunix-rt promote`` and the
sweep's evidence (``best_config.json``) all go through ``contract.best_config``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from support.rehearsal import tiny_trainer
from tunix_rt import promotion
from tunix_rt.api.rehearsal import RehearsalSpec
from tunix_rt.api.sweep import SweepSpec
from tunix_rt.api.trainer import TrainerConfig
from tunix_rt.api.trial import SweepResult
from tunix_rt.contract.best_config import best_trial_config
from tunix_rt.contract.layout import summary_key
from tunix_rt.controller.rehearsal_source import Resolved, _from_best_trial
from tunix_rt.evidence.sweep import best_config
from tunix_rt.rehearsal import plan_from_spec
from tunix_rt.storage import Store

SMOKE = 12


def sweep_spec() -> SweepSpec:
    return SweepSpec.model_validate(
        {
            "trainer": tiny_trainer(maxSteps=300),
            "searchSpace": {"learningRate": {"type": "loguniform", "low": 1e-4, "high": 1e-2}},
            "maxTrials": 2,
            "budget": {"smokeSteps": SMOKE},
        }
    )


def four_callers(
    tmp_path: Path, params: dict[str, Any], schedule: list[dict[str, Any]] | None = None
) -> dict[str, TrainerConfig]:
    """The best trial's config as each of the four callers rebuilds it (``schedule``: a
    pbt trial's, in the summary and in the Sweep's status)."""
    spec = sweep_spec()
    summary = SweepResult(
        sweep="lr",
        namespace="local",
        best_trial_id="lr-t1",
        best_params=params,
        best_schedule=schedule,
        primary_score=0.5,
        base_config=spec.trial_config({}).to_wire(),
    )
    store = Store(f"file://{tmp_path}/store")
    store.write_json(summary_key("local", "lr"), summary)
    best: dict[str, Any] = {"id": "lr-t1", "params": params}
    if schedule:
        best["schedule"] = schedule
    sweep = {"spec": spec.to_wire(), "status": {"bestTrial": best}}
    resolved = _from_best_trial(RehearsalSpec(from_sweep="lr"), "lr", sweep)
    assert isinstance(resolved, Resolved) and resolved.spec.trainer is not None
    plan = plan_from_spec(RehearsalSpec(from_sweep="lr"), name="r", store=store)
    wire = best_config(summary)
    assert wire is not None
    return {
        "operator": resolved.spec.trainer,
        "rehearsal": plan.config,
        "promote": promotion.best_config(summary, None),  # promote -o and --git
        "evidence": TrainerConfig.model_validate(wire),
    }


@pytest.mark.parametrize(
    "params",
    [
        {"learningRate": 0.005},
        {"learningRate": 0.005, "maxSteps": 5000},  # a searched maxSteps: capped everywhere
        {"learning_rate": 0.002, "max_steps": 3},
    ],
)
def test_the_four_callers_agree(tmp_path: Path, params: dict[str, Any]) -> None:
    configs = four_callers(tmp_path, params)
    expected = best_trial_config(sweep_spec().trial_config({}), params)
    assert expected.max_steps == SMOKE
    for who, config in configs.items():
        assert config.to_wire() == expected.to_wire(), who


def test_the_trial_config_is_what_the_trials_ran() -> None:
    spec = sweep_spec()
    params = {"learningRate": 0.005}
    ran = spec.trial_config(params).to_wire()
    assert best_trial_config(spec.trial_config({}), params).to_wire() == ran
    assert best_trial_config(spec.trial_config({}).to_wire(), params).to_wire() == ran


def test_the_four_callers_agree_on_a_pbt_schedule(tmp_path: Path) -> None:
    """A pbt trial's schedule reaches every caller's config, exploit and all."""
    schedule = [
        {"step": 0, "params": {"learningRate": 0.001}},
        {"step": 6, "params": {"learningRate": 0.0012}, "exploitedFrom": "lr-t0"},
    ]
    params = {"learningRate": 0.0012}
    expected = best_trial_config(sweep_spec().trial_config({}), params, schedule)
    assert expected.schedule is not None and expected.schedule[1].exploited_from == "lr-t0"
    for who, config in four_callers(tmp_path, params, schedule).items():
        assert config.to_wire() == expected.to_wire(), who
