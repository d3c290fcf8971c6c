"""Scheduler pbt and trainer.schedule: pydantic and the CRD's CEL twin refuse the same
specs, each error naming the field and the fix."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError
from test_api_crd import cel_violations, spec_schema  # tests/api is on sys.path

from tunix_rt.api.rehearsal import Rehearsal
from tunix_rt.api.sweep import Sweep

LR = {"type": "loguniform", "low": 1e-4, "high": 3e-2}
GOOD_PBT: dict[str, Any] = {
    "searchSpace": {"learningRate": LR, "weightDecay": {"type": "choice", "values": [0.0, 0.1]}},
    "algorithm": "random",
    "maxTrials": 4,
    "maxConcurrentTrials": 4,
    "scheduler": {"type": "pbt", "perturbationInterval": 10, "quantileFraction": 0.5},
    "budget": {"smokeSteps": 40},
    "trainer": {"checkpointEvery": 10, "logEvery": 5},
}


def sweep(spec: dict[str, Any]) -> Sweep:
    return Sweep.model_validate({"metadata": {"name": "p"}, "spec": spec})


GRPO_TRAINER = {"backend": "tunix-grpo", "model": {"name": "gemma3-tiny"}, "checkpointEvery": 10,
                "logEvery": 5}  # fmt: skip
GOOD_GRPO_PBT: dict[str, Any] = GOOD_PBT | {
    "searchSpace": {"learningRate": LR, "klBeta": {"type": "uniform", "low": 0.01, "high": 0.2},
                    "temperature": {"type": "choice", "values": [0.7, 0.9]}},
    "trainer": GRPO_TRAINER,
}  # fmt: skip


@pytest.mark.parametrize("spec", [GOOD_PBT, GOOD_GRPO_PBT], ids=["builtin", "tunix-grpo"])
def test_a_good_pbt_sweep_passes_both(spec: dict[str, Any]) -> None:
    assert cel_violations(spec, spec_schema("Sweep")) == []
    assert sweep(spec).spec.scheduler.perturbation_interval == 10


BAD: list[tuple[str, str, str, dict[str, Any]]] = [
    # (CEL message part, pydantic field, pydantic message part, patch)
    ("needs perturbationInterval", "scheduler.perturbationInterval", "needs perturbationInterval",
     {"scheduler": {"type": "pbt"}}),
    ("search only learningRate", "searchSpace.batchSize", "batchSize cannot change once",
     {"searchSpace": {"learningRate": LR, "batchSize": {"type": "choice", "values": [8, 16]}}}),
    ("search only learningRate", "searchSpace.warmupSteps", "search only learningRate",
     {"searchSpace": {"warmupSteps": {"type": "randint", "low": 1, "high": 9}}}),
    ("uniform, loguniform or choice", "searchSpace.learningRate.type", "not grid",
     {"searchSpace": {"learningRate": {"type": "grid", "values": [0.1, 0.01]}}, "maxTrials": 4}),
    ("checkpointEvery dividing", "trainer.checkpointEvery", "set checkpointEvery to 10",
     {"trainer": {"logEvery": 5}}),
    ("checkpointEvery dividing", "trainer.checkpointEvery", "must divide perturbationInterval",
     {"trainer": {"checkpointEvery": 4, "logEvery": 2}}),
    ("logEvery dividing checkpointEvery", "trainer.logEvery", "set logEvery to a divisor",
     {"trainer": {"checkpointEvery": 10, "logEvery": 4}}),
    ("perturbationInterval below budget.smokeSteps", "scheduler.perturbationInterval",
     "no trial would ever be perturbed",
     {"scheduler": {"type": "pbt", "perturbationInterval": 40}}),
    ("needs algorithm random", "algorithm", "use algorithm random", {"algorithm": "tpe"}),
    ("remove warmStartFrom", "warmStartFrom", "no checkpoint in this population",
     {"warmStartFrom": {"sweep": "last-week"}}),
    ("read by pbt only", "scheduler.quantileFraction", "or use type pbt",
     {"scheduler": {"type": "asha", "gracePeriod": 10, "quantileFraction": 0.5}}),
    ("read by pbt only", "scheduler.synchronous", "or use type pbt",
     {"scheduler": {"type": "asha", "gracePeriod": 10, "synchronous": False}}),
    ("not read by scheduler pbt", "scheduler.gracePeriod", "remove gracePeriod",
     {"scheduler": {"type": "pbt", "perturbationInterval": 10, "gracePeriod": 5}}),
    ("belongs in a Rehearsal", "trainer.schedule", "belongs in a Rehearsal",
     {"scheduler": None, "trainer": {"checkpointEvery": 10, "logEvery": 5,
      "schedule": [{"step": 0, "params": {"learningRate": 0.01}}]}}),
    ("needs trainer.backend builtin or tunix-grpo", "scheduler.type",
     "use trainer.backend builtin or tunix-grpo",
     {"trainer": {"backend": "tunix-sft", "model": {"name": "gemma3-tiny"},
                  "checkpointEvery": 10, "logEvery": 5}}),
    ("search only learningRate", "searchSpace.numGenerations",
     "search only learningRate, weightDecay, gradClip, klBeta, temperature",
     {"searchSpace": {"learningRate": LR, "numGenerations": {"type": "choice", "values": [2, 4]}},
      "trainer": GRPO_TRAINER}),
]  # fmt: skip


@pytest.mark.parametrize(("cel_msg", "field", "message", "patch"), BAD, ids=[b[1] for b in BAD])
def test_cel_and_pydantic_refuse_the_same_pbt_sweeps(
    cel_msg: str, field: str, message: str, patch: dict[str, Any]
) -> None:
    spec = copy.deepcopy(GOOD_PBT) | patch
    spec = {k: v for k, v in spec.items() if v is not None}
    violations = cel_violations(spec, spec_schema("Sweep"))
    assert any(cel_msg in v for v in violations), violations
    with pytest.raises(ValidationError) as caught:
        sweep(spec)
    errors = [(".".join(str(p) for p in e["loc"]), e["msg"]) for e in caught.value.errors()]
    assert any(loc.endswith(field) and message in msg for loc, msg in errors), errors


def rehearsal(trainer: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": "r"}, "spec": {"trainer": trainer}}


@pytest.mark.parametrize(
    ("trainer", "ok"),
    [
        ({"maxSteps": 40, "schedule": [{"step": 0, "params": {"learningRate": 0.01}},
          {"step": 20, "params": {"learningRate": 0.02}, "exploitedFrom": "t_00001"}]}, True),
        ({"maxSteps": 40, "schedule": [{"step": 0, "params": {"maxSteps": 10}}]}, False),
        ({"backend": "tunix-sft", "model": {"name": "gemma3-tiny"},
          "schedule": [{"step": 0, "params": {"learningRate": 0.01}}]}, False),
        ({"backend": "tunix-grpo", "model": {"name": "gemma3-tiny"}, "maxSteps": 40,
          "schedule": [{"step": 0, "params": {"learningRate": 0.01, "klBeta": 0.04}},
                       {"step": 20, "params": {"klBeta": 0.1, "temperature": 0.7}}]}, True),
        ({"backend": "tunix-grpo", "model": {"name": "gemma3-tiny"}, "maxSteps": 40,
          "schedule": [{"step": 0, "params": {"numGenerations": 4}}]}, False),
        ({"maxSteps": 40, "schedule": [{"step": 0, "params": {"klBeta": 0.1}}]}, False),
    ],
)  # fmt: skip
def test_a_rehearsal_schedule_sets_only_what_can_change_mid_run(
    trainer: dict[str, Any], ok: bool
) -> None:
    doc = rehearsal(trainer)
    violations = cel_violations(doc["spec"], spec_schema("Rehearsal"))
    assert (violations == []) is ok, violations
    if ok:
        Rehearsal.model_validate(doc)
    else:
        with pytest.raises(ValidationError):
            Rehearsal.model_validate(doc)


def test_schedule_steps_must_increase_below_max_steps() -> None:
    steps = [{"step": 20, "params": {"learningRate": 0.01}}, {"step": 10, "params": {}}]
    with pytest.raises(ValidationError, match="order the entries by step"):
        Rehearsal.model_validate(rehearsal({"maxSteps": 40, "schedule": steps}))
    late = [{"step": 40, "params": {"learningRate": 0.01}}]
    with pytest.raises(ValidationError, match=r"below maxSteps \(40\)"):
        Rehearsal.model_validate(rehearsal({"maxSteps": 40, "schedule": late}))
