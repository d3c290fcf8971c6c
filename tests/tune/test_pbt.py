"""Scheduler pbt without a Ray run: the PopulationBasedTraining it maps to, the lineage a
checkpoint carries, the schedule a trial records, and the hyperparameters a replayed
schedule gives each step."""

from __future__ import annotations

import json
import os
import pickle
import random
from pathlib import Path
from typing import Any

import numpy as np
from ray.tune.schedulers import PopulationBasedTraining, TrialScheduler
from ray.tune.search.sample import Float

from tunix_rt.api.schedule import ScheduleStep
from tunix_rt.api.sweep import SweepSpec
from tunix_rt.api.trainer import TrainerConfig
from tunix_rt.contract.best_config import best_trial_config
from tunix_rt.train import schedule
from tunix_rt.train.train_step import Hyperparams
from tunix_rt.tune import mapping, pbt

LR = {"type": "loguniform", "low": 1e-4, "high": 3e-2}


def pbt_spec(**scheduler: Any) -> SweepSpec:
    return SweepSpec.model_validate(
        {
            "searchSpace": {
                "learningRate": LR,
                "weightDecay": {"type": "choice", "values": [0.0, 0.05, 0.1]},
            },
            "maxTrials": 4,
            "maxConcurrentTrials": 4,
            "scheduler": {"type": "pbt", "perturbationInterval": 10, **scheduler},
            "budget": {"smokeSteps": 40},
            "trainer": {"checkpointEvery": 10, "logEvery": 5},
        }
    )


def test_pbt_maps_to_population_based_training() -> None:
    spec = pbt_spec(quantileFraction=0.5, resampleProbability=0.1, metric="loss", mode="min")
    sched = mapping.scheduler(spec)
    assert isinstance(sched, PopulationBasedTraining)
    assert sched._time_attr == "step" and sched._metric == "loss" and sched._mode == "min"
    assert sched._perturbation_interval == 10
    assert sched._quantile_fraction == 0.5 and sched._resample_probability == 0.1
    mutations = sched._hyperparam_mutations
    assert isinstance(mutations["learningRate"], Float)
    assert mutations["weightDecay"] == [0.0, 0.05, 0.1]  # choice: shifted to a neighbour
    assert mapping.tune_config(spec).scheduler is not None
    defaults = mapping.scheduler(pbt_spec())
    assert defaults._quantile_fraction == 0.25 and defaults._resample_probability == 0.25
    assert pbt.checkpoints_kept(spec) > 2


def test_no_perturbation_at_a_trials_last_step() -> None:
    """The final report (the eval at smokeSteps) is never exploited: nothing is left to
    train, and a schedule step at maxSteps could not be replayed. The scheduler pickles
    (Tune saves it with the experiment)."""
    sched = pickle.loads(pickle.dumps(mapping.scheduler(pbt_spec())))
    assert sched.last_step == 40
    untouched = object()  # neither the controller nor the trial is read at the last step
    result = {"step": 40, "loss": 1.0}
    assert sched.on_trial_result(untouched, untouched, result) == TrialScheduler.CONTINUE


def test_explore_stays_in_the_searched_range() -> None:
    clip = mapping.scheduler(pbt_spec())._custom_explore_fn
    assert clip({"learningRate": 0.05, "weightDecay": 0.1})["learningRate"] == 3e-2
    assert clip({"learningRate": 1e-5})["learningRate"] == 1e-4
    assert clip({"learningRate": 1e-3})["learningRate"] == 1e-3


def test_a_fresh_trial_records_its_own_params_from_step_0() -> None:
    steps = pbt.followed_schedule(None, "t1", {"learningRate": 0.01, "weightDecay": 0.1})
    assert steps == [ScheduleStep(step=0, params={"learningRate": 0.01, "weightDecay": 0.1})]


def test_an_exploit_inherits_the_lineage_up_to_the_checkpoint() -> None:
    lineage = pbt.Lineage(
        trial_id="a",
        step=20,
        schedule=[
            ScheduleStep(step=0, params={"learningRate": 0.01}),
            ScheduleStep(step=10, params={"learningRate": 0.02}, exploited_from="c"),
            ScheduleStep(step=20, params={"learningRate": 0.03}, exploited_from="d"),
        ],
    )
    steps = pbt.followed_schedule(lineage, "b", {"learningRate": 0.024})
    assert [(s.step, s.params["learningRate"], s.exploited_from) for s in steps] == [
        (0, 0.01, None),
        (10, 0.02, "c"),
        (20, 0.024, "a"),  # a's step-20 entry never trained a step of this checkpoint
    ]


def test_a_resumed_trial_keeps_its_schedule() -> None:
    own = [ScheduleStep(step=0, params={"learningRate": 0.01})]
    lineage = pbt.Lineage(trial_id="a", step=30, schedule=own)
    assert pbt.followed_schedule(lineage, "a", {"learningRate": 0.01}) == own


def test_the_sender_writes_the_lineage_into_each_checkpoint(tmp_path: Path) -> None:
    folder = tmp_path / "ckpt"
    (folder / "10").mkdir(parents=True)
    sent: list[dict[str, Any]] = []
    sender = pbt.ScheduleSender(
        str(folder), lambda m, checkpoint: sent.append(m), "t1", {"learningRate": 0.01}
    )
    assert sender.has_new()
    sender.send({"step": 10})
    lineage = json.loads((folder / pbt.LINEAGE_FILE).read_text())
    assert lineage == {
        "trialId": "t1",
        "step": 10,
        "schedule": [{"step": 0, "params": {"learningRate": 0.01}}],
    }
    assert sent == [{"step": 10}] and not sender.has_new()
    assert pbt.read_lineage(str(folder)) == pbt.Lineage.model_validate(lineage)
    os.remove(folder / pbt.LINEAGE_FILE)
    assert pbt.read_lineage(str(folder)) is None


def test_a_replayed_schedule_switches_hyperparameters_at_its_steps() -> None:
    config = TrainerConfig.model_validate(
        {
            "maxSteps": 40,
            "learningRate": 0.5,
            "schedule": [
                {"step": 0, "params": {"learningRate": 0.01}},
                {"step": 20, "params": {"learningRate": 0.02, "weightDecay": 0.2}},
                {"step": 30, "params": {"learningRate": 0.03}},
            ],
        }
    )
    by_step = schedule.changes(config, lambda h: h)
    base = Hyperparams.from_config(config)

    def lr_wd(step: int) -> tuple[float, float]:
        hp = schedule.at(step, base, by_step)
        return float(np.float32(hp.learning_rate)), float(np.float32(hp.weight_decay))

    f32 = lambda v: float(np.float32(v))  # noqa: E731
    assert lr_wd(0) == (f32(0.01), f32(0.01)) and lr_wd(19) == (f32(0.01), f32(0.01))
    assert lr_wd(20) == (f32(0.02), f32(0.2))
    assert lr_wd(35) == (f32(0.03), f32(0.2))  # entries apply over the previous ones
    assert schedule.changes(config.model_copy(update={"schedule": None}), lambda h: h) == {}


def test_promotion_carries_the_best_trials_schedule() -> None:
    spec = pbt_spec()
    steps = [ScheduleStep(step=0, params={"learningRate": 0.01}).to_wire()]
    config = best_trial_config(spec.trial_config({}), {"learningRate": 0.012}, steps)
    assert config.schedule == [ScheduleStep(step=0, params={"learningRate": 0.01})]
    assert config.learning_rate == 0.012 and config.max_steps == 40
    assert best_trial_config(spec.trial_config({}), {"learningRate": 0.012}).schedule is None


def test_decisions_wait_for_every_trial_only_when_asked_to() -> None:
    assert mapping.scheduler(pbt_spec())._synch is False
    assert mapping.scheduler(pbt_spec(synchronous=True))._synch is True


def test_mutations_come_from_the_sweeps_seed_and_leave_the_drivers_random_alone() -> None:
    """Ray's PBT draws from the process-wide ``random``: the scheduler swaps its own seeded
    state in around each decision, so the same Sweep draws the same mutations."""

    def draws(sched: Any, count: int) -> list[float]:
        out = []
        for _ in range(count):
            with sched._own_random():
                out.append(random.random())
        return out

    random.seed(12345)
    outer = random.getstate()
    first = pickle.loads(pickle.dumps(mapping.scheduler(pbt_spec())))  # Tune pickles it
    again = mapping.scheduler(pbt_spec())
    seq = draws(first, 3)
    assert seq == draws(again, 3) and len(set(seq)) == 3  # the state carries on
    assert random.getstate() == outer
    other = pbt_spec().model_copy(update={"seed": 7})
    assert draws(mapping.scheduler(other), 3) != seq


def test_the_sender_finds_tunix_grpo_steps_under_actor(tmp_path: Path) -> None:
    """Tunix's RL cluster saves the policy under ``actor/<step>``: each new step is a new
    checkpoint for Tune, and the lineage names its step."""
    folder = tmp_path / "ckpt"
    (folder / "actor" / "10").mkdir(parents=True)
    sent: list[dict[str, Any]] = []
    params = {"learningRate": 0.01, "klBeta": 0.04}
    sender = pbt.ScheduleSender(str(folder), lambda m, checkpoint: sent.append(m), "t1", params)
    sender.send({"step": 10})
    assert json.loads((folder / pbt.LINEAGE_FILE).read_text())["step"] == 10
    assert not sender.has_new()
    (folder / "actor" / "20").mkdir()
    assert sender.has_new() and sender.newest() == "actor/20"
    sender.send({"step": 20})
    lineage = pbt.read_lineage(str(folder))
    assert lineage is not None and lineage.step == 20
    assert lineage.schedule[0].params == params


def test_a_tunix_schedule_runs_as_one_segment_per_change() -> None:
    from tunix_rt.train.backends.tunix_schedule import segments

    config = TrainerConfig.model_validate(
        {
            "backend": "tunix-grpo",
            "model": {"name": "gemma3-tiny"},
            "maxSteps": 30,
            "learningRate": 0.01,
            "schedule": [
                {"step": 0, "params": {"learningRate": 0.02, "klBeta": 0.04}},
                {"step": 10, "params": {"klBeta": 0.04}},  # no change: no new segment
                {"step": 20, "params": {"klBeta": 0.1}},
            ],
        }
    )
    plan = segments(config)
    assert [p.end for p in plan] == [20, 30]
    assert [(p.config.learning_rate, p.config.kl_beta) for p in plan] == [(0.02, 0.04), (0.02, 0.1)]
    assert all(p.config.schedule is None for p in plan)
    assert [p.end for p in segments(config.model_copy(update={"schedule": None}))] == [30]


def test_a_resumed_tunix_replay_knows_its_saved_step(tmp_path: Path) -> None:
    from tunix_rt.train.backends.tunix_schedule import saved_step

    assert saved_step(None) == saved_step(str(tmp_path)) == 0
    for step in ("10", "20"):
        (tmp_path / "actor" / step).mkdir(parents=True)
    assert saved_step(str(tmp_path)) == 20
