"""Settings that could not take effect are refused, by the models and (where CEL can see the
fields) by the CRD's rules alike: the field named, the bound said, the fix said. Values that
equal the defaults, and the settings a backend does read, stay accepted."""

from __future__ import annotations

from typing import Any, get_args

import pytest
from test_admission import errors, rehearsal_doc, sweep_doc, sweep_spec
from test_api_crd import cel_violations, spec_schema

from tunix_rt.api.sweep_effect import metric_bounds
from tunix_rt.api.takes_effect import TUNIX_MODEL_WIDTH
from tunix_rt.api.trainer_backends import TUNIX_MODELS, TrainerBackend
from tunix_rt.api.trial_metrics import (
    BACKEND_METRICS,
    METRIC_BOUNDS,
    REPORTED_METRICS,
    REWARD_METRICS,
    SCHEDULER_METRICS,
)
from tunix_rt.scoring.rewards import FORMAT_VALID_REWARD, OVER_CAP_PENALTY

SFT = {"backend": "tunix-sft", "model": {"name": "gemma3-tiny"}}
GRPO = {"backend": "tunix-grpo", "model": {"name": "gemma3-tiny"}}
DPO = {"backend": "tunix-dpo", "model": {"name": "gemma3-tiny"}}
ASHA = {"type": "asha", "gracePeriod": 10}
ASHA_ON_REWARD = {**ASHA, "metric": "reward_mean", "mode": "max"}


def trainer(**fields: Any) -> dict[str, Any]:
    return {"trainer": fields}


# (id, Sweep spec patch, field, fragments of the message, whether CEL refuses it too)
REFUSED: list[tuple[str, dict[str, Any], str, tuple[str, ...], bool]] = [
    (
        "lora-alpha-without-lora",
        trainer(**SFT, loraRank=0, loraAlpha=16),
        "spec.trainer.loraAlpha",
        ("loraRank 0", "remove loraAlpha or set loraRank >= 1"),
        True,
    ),
    (
        "layers-under-tunix",
        trainer(**SFT, layers=4),
        "spec.trainer.layers",
        ("built-in transformer", "tunix-sft", "remove layers"),
        True,
    ),
    (
        "model-width-under-tunix",
        trainer(backend="tunix-grpo", model={"name": "gemma3-tiny", "width": 256}),
        "spec.trainer.model.width",
        ("built-in transformer", "remove model.width"),
        True,
    ),
    (
        "model-heads-under-tunix",
        trainer(backend="tunix-sft", model={"name": "gemma3-tiny", "heads": 4}),
        "spec.trainer.model.heads",
        ("remove model.heads",),
        True,
    ),
    (
        "context-under-grpo",
        trainer(backend="tunix-grpo", model={"name": "gemma3-tiny", "context": 256}),
        "spec.trainer.model.context",
        ("not read by backend tunix-grpo",),
        True,
    ),
    (
        "lora-rank-over-width",
        trainer(**SFT, loraRank=128),
        "spec.trainer.loraRank",
        ("above the width of gemma3-tiny (64)", "at most 64"),
        True,
    ),
    (
        "tunix-batch-over-train-rows",
        trainer(**SFT, batchSize=300, dataset={"trainSize": 200}),
        "spec.trainer.batchSize",
        ("more than dataset.trainSize (200)", "at most 200"),
        True,
    ),
    (
        "checkpoint-https",
        trainer(backend="tunix-sft", model={"name": "gemma3-tiny", "checkpoint": "https://h/w"}),
        "spec.trainer.model.checkpoint",
        ("not https://", "s3://BUCKET/KEY"),
        True,
    ),
    (
        "tokenizer-hf",
        trainer(backend="tunix-sft", model={"name": "gemma3-tiny", "tokenizer": "hf://g/t"}),
        "spec.trainer.model.tokenizer",
        ("not hf://",),
        True,
    ),
    (
        "checkpoint-no-bucket",
        trainer(backend="tunix-sft", model={"name": "gemma3-tiny", "checkpoint": "gs:///w"}),
        "spec.trainer.model.checkpoint",
        ("names no bucket",),
        True,
    ),
    (
        "train-path-uri",
        trainer(dataset={"trainPath": "s3://b/train.jsonl", "evalPath": "/data/eval.jsonl"}),
        "spec.trainer.dataset.trainPath",
        ("takes no URI", "give a path"),
        True,
    ),
    (
        "train-size-with-files",
        trainer(dataset={"trainPath": "/d/t.jsonl", "evalPath": "/d/e.jsonl", "trainSize": 9}),
        "spec.trainer.dataset.trainSize",
        ("generated dataset only", "remove trainSize"),
        True,
    ),
    (
        "intermediate-rows-without-evals",
        trainer(eval={"intermediateRows": 64}),
        "spec.trainer.eval.intermediateRows",
        ("evalEvery is 0", "remove intermediateRows"),
        True,
    ),
    (
        "intermediate-rows-over-eval-rows",
        trainer(eval={"evalEvery": 50}, dataset={"evalSize": 64}),
        "spec.trainer.eval.intermediateRows",
        ("more than dataset.evalSize (64)", "at most 64"),
        True,
    ),
    (
        "goal-above-one",
        {"objective": {"goal": 1.5}},
        "spec.objective.goal",
        ("above the best primary_score", "at most 1"),
        True,
    ),
    (
        "goal-zero-for-max",
        {"objective": {"goal": 0}},
        "spec.objective.goal",
        ("reached by every trial", "above 0"),
        True,
    ),
    (
        "goal-negative-loss",
        {"objective": {"metric": "loss", "mode": "min", "goal": -0.5}},
        "spec.objective.goal",
        ("below the least loss", "at least 0"),
        True,
    ),
    (
        "reward-objective-under-dpo",
        {"trainer": DPO, "objective": {"metric": "reward_mean"}},
        "spec.objective.metric",
        ("reward_mean is reported by backend tunix-grpo only", "trainer.backend is tunix-dpo"),
        True,
    ),
    (
        "preference-objective-under-grpo",
        {"trainer": GRPO, "objective": {"metric": "preference_accuracy"}},
        "spec.objective.metric",
        ("preference_accuracy is reported by backend tunix-dpo only",),
        True,
    ),
    (
        "preference-goal-above-one",
        {"trainer": DPO, "objective": {"metric": "preference_accuracy", "goal": 1.5}},
        "spec.objective.goal",
        ("above the best preference_accuracy",),
        True,
    ),
    (
        "reward-objective-under-builtin",
        {"objective": {"metric": "reward_mean"}},
        "spec.objective.metric",
        (
            "reward_mean is reported by backend tunix-grpo only",
            "use primary_score or set trainer.backend tunix-grpo",
        ),
        True,
    ),
    (
        "reward-objective-under-sft",
        {"trainer": SFT, "objective": {"metric": "reward_answer_correct"}},
        "spec.objective.metric",
        ("trainer.backend is tunix-sft", "set trainer.backend tunix-grpo"),
        True,
    ),
    (
        "reward-objective-under-python",
        {
            "trainer": {"backend": "python", "entrypoint": "m:f"},
            "objective": {"metric": "reward_format_valid"},
        },
        "spec.objective.metric",
        ("reward_format_valid is reported by backend tunix-grpo only",),
        True,
    ),
    (
        "reward-scheduler-under-builtin",
        {"scheduler": ASHA_ON_REWARD, "maxTrials": 2},
        "spec.scheduler.metric",
        ("reported by backend tunix-grpo only", "use loss or set trainer.backend tunix-grpo"),
        True,
    ),
    (
        "reward-scheduler-logged-too-rarely",
        {"trainer": {**GRPO, "logEvery": 300}, "scheduler": ASHA_ON_REWARD, "maxTrials": 2},
        "spec.scheduler.metric",
        ("reward_mean is reported every trainer.logEvery (300)", "never sees it"),
        True,
    ),
    (
        "goal-reward-mean-above-best",
        {"trainer": GRPO, "objective": {"metric": "reward_mean", "goal": 2}},
        "spec.objective.goal",
        ("above the best reward_mean", "[-0.5, 1.5]", "at most 1.5"),
        True,
    ),
    (
        "goal-reward-format-above-best",
        {"trainer": GRPO, "objective": {"metric": "reward_format_valid", "goal": 0.75}},
        "spec.objective.goal",
        ("at most 0.5",),
        True,
    ),
    (
        "goal-trace-length-max-at-the-penalty",
        {"trainer": GRPO, "objective": {"metric": "reward_trace_length", "goal": -0.5}},
        "spec.objective.goal",
        ("reached by every trial", "[-0.5, 0]", "above -0.5"),
        True,
    ),
    (
        "goal-trace-length-min-at-zero",
        {
            "trainer": GRPO,
            "objective": {"metric": "reward_trace_length", "mode": "min", "goal": 0},
        },
        "spec.objective.goal",
        ("reached by every trial", "set goal below 0"),
        True,
    ),
    (
        "goal-trace-length-min-below-the-penalty",
        {
            "trainer": GRPO,
            "objective": {"metric": "reward_trace_length", "mode": "min", "goal": -0.6},
        },
        "spec.objective.goal",
        ("below the least reward_trace_length", "at least -0.5"),
        True,
    ),
    (
        "goal-nan",
        {"objective": {"goal": float("nan")}},
        "spec.objective.goal",
        ("finite number",),
        False,  # JSON has no NaN: kubectl cannot send it
    ),
    (
        "fifo-grace-period",
        {"scheduler": {"gracePeriod": 10}},
        "spec.scheduler.gracePeriod",
        ("not read by scheduler fifo", "use type asha or median"),
        True,
    ),
    (
        "median-reduction-factor",
        {"scheduler": {"type": "median", "reductionFactor": 2}},
        "spec.scheduler.reductionFactor",
        ("not read by scheduler median",),
        True,
    ),
    (
        "grace-period-past-the-end",
        {"scheduler": {"type": "asha", "gracePeriod": 100}, "budget": {"smokeSteps": 100}},
        "spec.scheduler.gracePeriod",
        ("not below budget.smokeSteps (100)", "could never stop one"),
        True,
    ),
    (
        "median-with-three-trials",
        {"scheduler": {"type": "median", "gracePeriod": 10}, "maxTrials": 3},
        "spec.scheduler.type",
        ("needs at least 4", "runs 3"),
        True,
    ),
    (
        "asha-with-one-trial",
        {"scheduler": ASHA, "maxTrials": 1},
        "spec.scheduler.type",
        ("needs at least 2",),
        True,
    ),
    (
        "scheduler-loss-logged-too-rarely",
        {"scheduler": ASHA, "trainer": {"logEvery": 300}},
        "spec.scheduler.metric",
        ("trainer.logEvery (300)", "never sees it"),
        True,
    ),
    (
        "trainer-max-steps-in-a-sweep",
        {"trainer": {"maxSteps": 1000}},
        "spec.trainer.maxSteps",
        ("replaced by budget.smokeSteps (300)",),
        True,
    ),
    (
        "checkpoint-every-past-the-end",
        {"trainer": {"checkpointEvery": 500}, "budget": {"smokeSteps": 200}},
        "spec.trainer.checkpointEvery",
        ("past budget.smokeSteps (200)", "no trial would save"),
        True,
    ),
    (
        "grid-not-a-multiple",
        {
            "algorithm": "grid",
            "maxTrials": 5,
            "searchSpace": {"learningRate": {"type": "grid", "values": [0.01, 0.02]}},
        },
        "spec.maxTrials",
        ("runs 4 trials", "set maxTrials to 4 or 6"),
        False,  # grid values are untyped in the CRD: CEL cannot count them
    ),
    (
        "max-failed-over-max-trials",
        {"maxTrials": 3, "maxFailedTrials": 4},
        "spec.maxFailedTrials",
        ("can never be reached", "at most 3"),
        True,
    ),
    (
        "seed-of-a-grid",
        {
            "algorithm": "grid",
            "seed": 7,
            "maxTrials": 2,
            "searchSpace": {"learningRate": {"type": "grid", "values": [0.01, 0.02]}},
        },
        "spec.seed",
        ("enumerates every point",),
        True,
    ),
    (
        "trial-timeout-past-sweep-timeout",
        {"budget": {"trialTimeoutSeconds": 600, "sweepTimeoutSeconds": 600}},
        "spec.budget.trialTimeoutSeconds",
        ("not below sweepTimeoutSeconds (600)",),
        True,
    ),
    (
        "trial-timeout-past-wall-clock",
        {"budget": {"trialTimeoutSeconds": 900, "wallClockSeconds": 300}},
        "spec.budget.trialTimeoutSeconds",
        ("not below wallClockSeconds (300)",),
        True,
    ),
]


@pytest.mark.parametrize(
    ("patch", "field", "fragments", "cel"),
    [pytest.param(*case[1:], id=case[0]) for case in REFUSED],
)
def test_refused_by_the_models_and_by_cel(
    patch: dict[str, Any], field: str, fragments: tuple[str, ...], cel: bool
) -> None:
    found = errors(sweep_doc(**patch))
    assert any(p == field and all(f in m for f in fragments) for p, m in found), found
    if cel:
        violations = cel_violations(sweep_spec(**patch), spec_schema("Sweep"))
        section = field.removeprefix("spec").rsplit(".", 1)[0]  # e.g. .trainer.model
        assert violations and all(v.startswith(section) for v in violations), violations


ACCEPTED: list[tuple[str, dict[str, Any]]] = [
    ("lora-alpha-with-lora", trainer(**SFT, loraRank=8, loraAlpha=16)),
    ("full-fine-tuning", trainer(**SFT, loraRank=0)),
    ("lora-rank-at-width", trainer(**SFT, loraRank=64)),
    ("lora-rank-other-spelling", trainer(backend="tunix-sft", model={"name": "gemma3_1b_pt"})),
    (
        "defaults-written-out-under-tunix",
        trainer(backend="tunix-sft", model={"name": "gemma3-tiny", "layers": 2}),
    ),
    (
        "context-under-sft",
        trainer(backend="tunix-sft", model={"name": "gemma3-tiny", "context": 96}),
    ),
    ("grpo-on-a-long-dataset", trainer(**GRPO, dataset={"name": "dev-reasoning-v2-hard-worded"})),
    ("builtin-batch-over-rows", trainer(batchSize=128, dataset={"trainSize": 100})),
    (
        "local-checkpoint",
        trainer(backend="tunix-sft", model={"name": "gemma3-tiny", "checkpoint": "/w"}),
    ),
    (
        "file-checkpoint",
        trainer(backend="tunix-sft", model={"name": "gemma3-tiny", "checkpoint": "file:///w"}),
    ),
    (
        "gs-checkpoint",
        trainer(backend="tunix-sft", model={"name": "gemma3-tiny", "checkpoint": "gs://b/w"}),
    ),
    ("intermediate-rows-with-evals", trainer(eval={"evalEvery": 50, "intermediateRows": 64})),
    ("goal-in-range", {"objective": {"goal": 0.9}}),
    ("goal-one", {"objective": {"goal": 1.0}}),
    ("goal-loss-min", {"objective": {"metric": "loss", "mode": "min", "goal": 0.1}}),
    (
        "goal-grpo-negative-loss",
        {"trainer": GRPO, "objective": {"metric": "loss", "mode": "min", "goal": -1}},
    ),
    *(
        (f"objective-{metric}-under-grpo", {"trainer": GRPO, "objective": {"metric": metric}})
        for metric in REWARD_METRICS
    ),
    (
        "preference-objective-under-dpo",
        {"trainer": DPO, "objective": {"metric": "preference_accuracy", "goal": 0.9}},
    ),
    (
        "asha-on-preference-under-dpo",
        {
            "trainer": DPO,
            "scheduler": {
                "type": "asha",
                "gracePeriod": 10,
                "metric": "preference_accuracy",
                "mode": "max",
            },
            "maxTrials": 2,
        },
    ),
    (
        "goal-reward-mean-at-best",
        {"trainer": GRPO, "objective": {"metric": "reward_mean", "goal": 1.5}},
    ),
    (
        "goal-reward-mean-negative-min",
        {"trainer": GRPO, "objective": {"metric": "reward_mean", "mode": "min", "goal": -0.25}},
    ),
    (
        "goal-trace-length-max-zero",
        {"trainer": GRPO, "objective": {"metric": "reward_trace_length", "goal": 0}},
    ),
    (
        "goal-trace-length-min",
        {
            "trainer": GRPO,
            "objective": {"metric": "reward_trace_length", "mode": "min", "goal": -0.1},
        },
    ),
    ("asha-on-reward", {"trainer": GRPO, "scheduler": ASHA_ON_REWARD, "maxTrials": 2}),
    (
        "median-on-reward-answer",
        {
            "trainer": GRPO,
            "scheduler": {
                "type": "median",
                "gracePeriod": 10,
                "metric": "reward_answer_correct",
                "mode": "max",
            },
            "maxTrials": 4,
        },
    ),
    (
        "fifo-under-grpo-with-reward-objective",
        {"trainer": GRPO, "objective": {"metric": "reward_mean"}, "scheduler": {"type": "fifo"}},
    ),
    ("asha", {"scheduler": ASHA, "maxTrials": 2}),
    ("median", {"scheduler": {"type": "median", "gracePeriod": 10}, "maxTrials": 4}),
    ("trainer-max-steps-equal", {"trainer": {"maxSteps": 40}, "budget": {"smokeSteps": 40}}),
    ("max-failed-equal", {"maxTrials": 3, "maxFailedTrials": 3}),
    ("timeouts-in-order", {"budget": {"trialTimeoutSeconds": 60, "sweepTimeoutSeconds": 600}}),
]


@pytest.mark.parametrize("patch", [pytest.param(p, id=i) for i, p in ACCEPTED])
def test_what_takes_effect_stays_accepted(patch: dict[str, Any]) -> None:
    assert errors(sweep_doc(**patch)) == []
    assert cel_violations(sweep_spec(**patch), spec_schema("Sweep")) == []


def test_a_searched_value_that_cannot_take_effect_is_refused() -> None:
    """Searching loraRank down to 0 with loraAlpha set: some trials would ignore it."""
    found = errors(
        sweep_doc(
            trainer={**SFT, "loraAlpha": 16},
            searchSpace={"loraRank": {"type": "choice", "values": [0, 8]}},
        )
    )
    assert any(p == "spec.searchSpace.loraRank" and "loraAlpha" in m for p, m in found), found


def test_a_rehearsal_refuses_the_same() -> None:
    found = errors(rehearsal_doc(trainer={**SFT, "loraRank": 0, "loraAlpha": 4}))
    assert any(p == "spec.trainer.loraAlpha" for p, _ in found), found
    found = errors(rehearsal_doc(trainer=SFT, overrides={"layers": 4}))
    assert any("layers" in p for p, _ in found), found


def test_messages_never_quote_a_location() -> None:
    """A checkpoint URI may hold a credential: the refusal names the scheme only."""
    secret = "https://user:s3cr3t@host/w"
    found = errors(
        sweep_doc(
            **trainer(backend="tunix-sft", model={"name": "gemma3-tiny", "checkpoint": secret})
        )
    )
    assert found and all("s3cr3t" not in m for _, m in found), found


def test_every_metric_has_a_range() -> None:
    assert set(METRIC_BOUNDS) == set(REPORTED_METRICS)
    assert metric_bounds("loss", "builtin") == (0.0, None)
    assert metric_bounds("loss", "tunix-grpo") is None


def test_reward_ranges_come_from_the_rewards() -> None:
    """A completion's summed reward: correct (1), well formed, no length penalty at best;
    wrong, unformatted and never closed at worst."""
    assert metric_bounds("reward_mean", "tunix-grpo") == (
        -OVER_CAP_PENALTY,
        1.0 + FORMAT_VALID_REWARD,
    )
    assert metric_bounds("reward_answer_correct", "tunix-grpo") == (0.0, 1.0)
    assert metric_bounds("reward_format_valid", "tunix-grpo") == (0.0, FORMAT_VALID_REWARD)
    assert metric_bounds("reward_trace_length", "tunix-grpo") == (-OVER_CAP_PENALTY, 0.0)


def test_backend_metrics_name_real_backends() -> None:
    """A misspelt backend in the table would refuse its metrics under every backend."""
    assert set(BACKEND_METRICS) <= set(get_args(TrainerBackend))
    own = [m for metrics in BACKEND_METRICS.values() for m in metrics]
    assert set(own) <= set(REPORTED_METRICS) and set(own) <= set(SCHEDULER_METRICS)


def test_every_tunix_model_has_a_width() -> None:
    assert set(TUNIX_MODEL_WIDTH) == set(TUNIX_MODELS)


def test_widths_match_tunix() -> None:
    """The width table is Tunix's own ``embed_dim`` (tiny: tunix-rt's own config)."""
    gemma = pytest.importorskip("tunix.models.gemma3.model")
    from tunix_rt.train.backends.tunix_model import TINY_DIMS

    assert TUNIX_MODEL_WIDTH["gemma3-tiny"] == TINY_DIMS["embed_dim"]
    for name, width in TUNIX_MODEL_WIDTH.items():
        if name == "gemma3-tiny":
            continue
        factory = name.replace("-", "_")
        if not hasattr(gemma.ModelConfig, factory):
            factory += "_pt"
        assert getattr(gemma.ModelConfig, factory)().embed_dim == width, name
