"""``spec.warmStartFrom``: its admission (pydantic and CEL alike), and the pure verdict on
every earlier trial: reused, or skipped with a reason that names what differs."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from test_api_crd import cel_violations, spec_schema  # tests/api is on sys.path

from support.manifests import sweep_spec_errors
from tunix_rt.api.sweep import SweepSpec
from tunix_rt.api.trial import TrialResult, TrialState
from tunix_rt.api.warm_start import ReusedFrom, SkipReason
from tunix_rt.contract.warm_start import (
    Source,
    algorithm_use,
    judge_trials,
    measured_key,
    new_trials_planned,
    space_size,
)

SPACE: dict[str, Any] = {
    "learningRate": {"type": "loguniform", "low": 1e-4, "high": 1e-2},
    "warmupSteps": {"type": "randint", "low": 0, "high": 40},
}
SPEC: dict[str, Any] = {
    "searchSpace": SPACE,
    "algorithm": "tpe",
    "maxTrials": 6,
    "budget": {"smokeSteps": 40},
    "trainer": {"batchSize": 16},
}


def with_warm(warm: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(SPEC) | {"warmStartFrom": warm}


# ----------------------------------------------------------------------------- admission


@pytest.mark.parametrize(
    "warm",
    [
        {"sweep": "earlier"},
        {"uri": "s3://bucket/ml/earlier"},
        {"uri": "file:///tmp/runs/local/earlier/summary.json", "rerunMeasured": True},
    ],
)
def test_a_sweep_name_or_a_store_uri_is_accepted(warm: dict[str, Any]) -> None:
    spec = with_warm(warm)
    assert sweep_spec_errors(spec) == []
    assert cel_violations(spec, spec_schema("Sweep")) == []
    parsed = SweepSpec.model_validate(spec).warm_start_from
    assert parsed is not None and parsed.rerun_measured is bool(warm.get("rerunMeasured"))


@pytest.mark.parametrize(
    "warm",
    [{}, {"sweep": "earlier", "uri": "s3://bucket/ml/earlier"}],
    ids=["neither", "both"],
)
def test_exactly_one_source_is_required_by_the_model_and_by_cel(warm: dict[str, Any]) -> None:
    spec = with_warm(warm)
    (error,) = sweep_spec_errors(spec)
    assert error[0] == "spec.warmStartFrom.sweep"
    assert "exactly one of warmStartFrom.sweep" in error[1]
    assert any(
        "exactly one of warmStartFrom.sweep" in v
        for v in cel_violations(spec, spec_schema("Sweep"))
    )


def test_a_uri_that_is_no_store_is_refused_with_the_fix() -> None:
    (error,) = sweep_spec_errors(with_warm({"uri": "https://example.com/sweep"}))
    assert error[0] == "spec.warmStartFrom.uri"
    assert "file://PATH, s3://BUCKET/PREFIX or gs://BUCKET/PREFIX" in error[1]


def test_a_uri_with_a_credential_is_refused_without_echoing_it() -> None:
    secret = "AKIAIOSFODNN7EXAMPLE:wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY"
    errors = sweep_spec_errors(with_warm({"uri": f"s3://{secret}@bucket/ml/earlier"}))
    assert errors and all(secret not in message for _, message in errors)
    assert any("warmStartFrom.uri" in path for path, _ in errors)


def test_a_sweep_name_must_be_a_kubernetes_name() -> None:
    (error,) = sweep_spec_errors(with_warm({"sweep": "Not_A_Name"}))
    assert error[0] == "spec.warmStartFrom.sweep"
    assert "DNS-1123" in error[1]


# ----------------------------------------------------------------------------- verdicts


def trial(trial_id: str, state: TrialState = TrialState.SUCCEEDED, **fields: Any) -> TrialResult:
    """A trial of the earlier sweep: ``fields`` change the defaults."""
    defaults = {
        "sweep": "earlier",
        "params": {"learningRate": 3e-3, "warmupSteps": 10},
        "primary_score": 0.5,
        "steps": 40,
    }
    return TrialResult(trial_id=trial_id, state=state, **(defaults | fields))


def source(base: dict[str, Any] | None = None, digest: str | None = "aa" * 32) -> Source:
    spec = SweepSpec.model_validate(SPEC)
    config = spec.trial_config({}).to_wire() if base is None else base
    return Source("earlier", "file:///runs/local/earlier", config, digest)


def judge(*trials: TrialResult, spec: dict[str, Any] | None = None, **kw: Any) -> Any:
    new = SweepSpec.model_validate(spec or SPEC)
    return judge_trials(new, kw.pop("source", source()), trials, kw.pop("digest", "aa" * 32))


def only_skip(judged: Any) -> tuple[SkipReason, str]:
    assert judged.reused == []
    (skipped,) = judged.skipped
    return skipped.reason, skipped.message


def test_a_fitting_trial_is_reused_with_its_origin_and_value() -> None:
    judged = judge(trial("t1"))
    (reused,) = judged.reused
    assert judged.skipped == [] and judged.notes == []
    assert reused.params == {"learningRate": 3e-3, "warmupSteps": 10}
    assert reused.primary_score == 0.5
    assert reused.reused_from == ReusedFrom(
        sweep="earlier", trial_id="t1", uri="file:///runs/local/earlier"
    )


def test_a_parameter_the_earlier_sweep_did_not_search_takes_its_base_value() -> None:
    earlier = source(SweepSpec.model_validate(SPEC).trial_config({"warmupSteps": 12}).to_wire())
    (reused,) = judge(trial("t1", params={"learning_rate": 2e-3}), source=earlier).reused
    assert reused.params == {"learningRate": 2e-3, "warmupSteps": 12}


def test_a_trial_reused_twice_keeps_where_it_was_measured() -> None:
    first = ReusedFrom(sweep="oldest", trial_id="t0", uri="s3://b/ml/oldest")
    (reused,) = judge(trial("t0", reused_from=first)).reused
    assert reused.reused_from == first


@pytest.mark.parametrize(
    ("state", "fields", "reason", "words"),
    [
        (TrialState.RUNNING, {}, SkipReason.NOT_FINISHED, "had not finished (Running)"),
        (TrialState.FAILED, {"error": "boom\nloss diverged"}, SkipReason.FAILED, "loss diverged"),
        (TrialState.STOPPED, {}, SkipReason.STOPPED_EARLY, "stopped early at step 40"),
        (TrialState.SUCCEEDED, {"primary_score": None}, SkipReason.NO_METRIC, "primary_score"),
    ],
)
def test_what_measured_nothing_usable_is_skipped(
    state: TrialState, fields: dict[str, Any], reason: SkipReason, words: str
) -> None:
    got, message = only_skip(judge(trial("t1", state, **fields)))
    assert got is reason and words in message


def test_another_objective_metric_missing_from_the_metrics_is_named() -> None:
    spec = copy.deepcopy(SPEC) | {"objective": {"metric": "loss", "mode": "min"}}
    reason, message = only_skip(judge(trial("t1"), spec=spec))
    assert reason is SkipReason.NO_METRIC and "no loss" in message
    reused = judge(trial("t1", metrics={"loss": 0.3}), spec=spec).reused
    assert [t.trial_id for t in reused] == ["t1"]


def test_another_dataset_digest_is_skipped_and_an_unknown_one_noted() -> None:
    reason, message = only_skip(judge(trial("t1"), digest="bb" * 32))
    assert reason is SkipReason.DATASET and "bbbbbbbbbbbb" in message
    unknown = judge(trial("t1"), source=source(digest=None))
    assert len(unknown.reused) == 1
    assert "no dataset digest" in unknown.notes[0]


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"learningRate": 5e-2, "warmupSteps": 10}, "learningRate=0.05 is outside"),
        ({"learningRate": 3e-3, "warmupSteps": 40}, "warmupSteps=40 is outside"),
        ({"learningRate": 3e-3, "warmupSteps": 2.5}, "warmupSteps=2.5 is outside"),
        ({"learningRate": True, "warmupSteps": 2}, "learningRate=True is outside"),
    ],
)
def test_a_point_outside_the_new_space_names_the_parameter(
    params: dict[str, Any], words: str
) -> None:
    reason, message = only_skip(judge(trial("t1", params=params)))
    assert reason is SkipReason.OUTSIDE_SPACE and words in message


def test_choices_match_by_value_and_type() -> None:
    spec = copy.deepcopy(SPEC)
    spec["searchSpace"] = {"batchSize": {"type": "choice", "values": [16, 32]}}
    spec["trainer"] = {}
    earlier = source(SweepSpec.model_validate(spec).trial_config({}).to_wire())
    (reused,) = judge(trial("t1", params={"batchSize": 32.0}), spec=spec, source=earlier).reused
    assert reused.params == {"batchSize": 32} and isinstance(reused.params["batchSize"], int)
    outside = judge(trial("t2", params={"batchSize": 8}), spec=spec, source=earlier)
    reason, message = only_skip(outside)
    assert reason is SkipReason.OUTSIDE_SPACE and "choice of [16, 32]" in message


def test_another_trainer_config_names_each_field_that_differs() -> None:
    base = SweepSpec.model_validate(SPEC).trial_config({}).to_wire()
    earlier = source(base | {"batchSize": 32, "maxSteps": 20})
    reason, message = only_skip(judge(trial("t1"), source=earlier))
    assert reason is SkipReason.TRAINER_CONFIG
    assert "batchSize 32 there, 16 here" in message
    assert "maxSteps (budget.smokeSteps) 20 there, 40 here" in message


def test_a_searched_value_fixed_differently_here_is_a_config_difference() -> None:
    spec = copy.deepcopy(SPEC)
    spec["searchSpace"] = {"learningRate": SPACE["learningRate"]}
    spec["trainer"] = {"batchSize": 16, "warmupSteps": 5}
    earlier = source(SweepSpec.model_validate(SPEC).trial_config({}).to_wire())
    reason, message = only_skip(judge(trial("t1"), spec=spec, source=earlier))
    assert reason is SkipReason.TRAINER_CONFIG and "warmupSteps 10 there, 5 here" in message


def test_verdicts_keep_every_trial_in_id_order() -> None:
    judged = judge(trial("c"), trial("a", TrialState.FAILED), trial("b", primary_score=0.9))
    assert [t.trial_id for t in judged.reused] == ["b", "c"]
    assert [s.trial for s in judged.skipped] == ["a"]


# ----------------------------------------------------------------------------- measured


def test_a_configuration_key_compares_numbers_as_numbers_and_bools_apart() -> None:
    assert measured_key({"a": 1, "b": "x"}) == measured_key({"b": "x", "a": 1.0})
    assert measured_key({"a": True}) != measured_key({"a": 1})


def grid_spec(values: list[float], max_trials: int, **extra: Any) -> SweepSpec:
    space = {"learningRate": {"type": "grid", "values": values}}
    return SweepSpec.model_validate(
        {"searchSpace": space, "algorithm": "grid", "maxTrials": max_trials, **extra}
    )


def test_new_trials_planned_leave_out_measured_grid_points_once_per_measurement() -> None:
    spec = grid_spec([1e-3, 3e-3, 1e-2], 6)  # the grid twice
    once = [trial("t1", params={"learningRate": 3e-3})]
    assert new_trials_planned(spec, once, rerun=False) == 5
    assert new_trials_planned(spec, once * 3, rerun=False) == 4  # at most every repeat
    assert new_trials_planned(spec, once, rerun=True) == 6


def test_new_trials_planned_stop_at_the_unmeasured_points_of_a_finite_space() -> None:
    spec = SweepSpec.model_validate(
        {
            "searchSpace": {
                "batchSize": {"type": "choice", "values": [16, 32]},
                "warmupSteps": {"type": "randint", "low": 0, "high": 2},
            },
            "algorithm": "tpe",
            "maxTrials": 4,
        }
    )
    assert space_size(spec) == 4
    measured = [trial(f"t{i}", params={"batchSize": 16, "warmupSteps": i}) for i in (0, 1)]
    assert new_trials_planned(spec, measured, rerun=False) == 2
    assert new_trials_planned(SweepSpec.model_validate(SPEC), measured, rerun=False) == 6


@pytest.mark.parametrize(
    ("algorithm", "words"),
    [
        ("tpe", "TPE models them"),
        ("gp", "GP is fitted"),
        ("cmaes", "WS-CMA-ES"),
        ("qmc", "does not model them"),
        ("random", "random search has no model"),
    ],
)
def test_what_each_algorithm_does_is_said(algorithm: str, words: str) -> None:
    spec = SweepSpec.model_validate(copy.deepcopy(SPEC) | {"algorithm": algorithm})
    text = algorithm_use(spec, 3, rerun=False)
    assert words in text and "not run" in text
    assert "cold one" in algorithm_use(spec, 0, rerun=False)
    grid = algorithm_use(grid_spec([1e-3], 1), 1, rerun=False)
    assert "grid points measured already are skipped" in grid
