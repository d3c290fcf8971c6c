"""The spec models: defaults, the spec -> trials arithmetic, and errors that name the field."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from support.manifests import rehearsal_manifest, sweep_manifest
from tunix_rt.api.errors import ManifestError, error_path, validation_errors
from tunix_rt.api.manifests import check_document, parse_documents, parse_sweep
from tunix_rt.api.rehearsal import Rehearsal
from tunix_rt.api.search_space import Algorithm
from tunix_rt.api.sweep import Sweep, SweepSpec
from tunix_rt.api.sweep_goals import SchedulerType
from tunix_rt.api.trial import SweepResult, TrialResult, TrialState

LR = {"type": "loguniform", "low": 1e-4, "high": 3e-2}


def sweep(**spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"searchSpace": {"learningRate": LR}}
    body.update(spec)
    return sweep_manifest("s", body)


def errors_of(doc: dict[str, Any]) -> list[tuple[str, str]]:
    model = Rehearsal if doc.get("kind") == "Rehearsal" else Sweep
    with pytest.raises(ValidationError) as info:
        model.model_validate(doc)
    return validation_errors(info.value)


def test_defaults_match_the_issue() -> None:
    spec = Sweep.model_validate(sweep()).spec
    assert spec.max_trials == 5
    assert spec.objective.metric == "primary_score" and spec.objective.mode == "max"
    assert spec.algorithm is Algorithm.RANDOM
    assert spec.scheduler.type is SchedulerType.FIFO
    assert spec.storage == "file://./runs"
    assert spec.max_concurrent_trials == 1 and spec.max_failed_trials == 0
    assert spec.resources.cpu == 1.0


def test_search_space_keys_are_canonical_wire_names() -> None:
    spec = SweepSpec.model_validate(
        {"searchSpace": {"learning_rate": LR, "batchSize": {"type": "choice", "values": [32, 64]}}}
    )
    assert list(spec.search_space) == ["learningRate", "batchSize"]
    assert spec.to_wire()["searchSpace"]["learningRate"] == LR


def test_trial_config_applies_params_and_the_smoke_cap() -> None:
    spec = SweepSpec.model_validate(
        {
            "searchSpace": {"learningRate": LR, "width": {"type": "choice", "values": [64]}},
            "budget": {"smokeSteps": 42},
        }
    )
    config = spec.trial_config({"learningRate": 0.02, "width": 64})
    assert config.learning_rate == 0.02
    assert config.max_steps == 42
    assert config.model.width == 64


@pytest.mark.parametrize(
    ("spec", "planned", "samples"),
    [
        ({"maxTrials": 7}, 7, 7),
        # grid: every point, repeated maxTrials / points times
        (
            {
                "algorithm": "grid",
                "maxTrials": 6,
                "searchSpace": {"learningRate": {"type": "grid", "values": [1e-3, 1e-2, 3e-2]}},
            },
            6,
            2,
        ),
        # choice entries are enumerated by a grid search
        (
            {
                "algorithm": "grid",
                "maxTrials": 2,
                "searchSpace": {"batchSize": {"type": "choice", "values": [16, 32]}},
            },
            2,
            1,
        ),
        # random search with one grid entry: the grid times the samples
        (
            {
                "maxTrials": 4,
                "searchSpace": {
                    "learningRate": LR,
                    "batchSize": {"type": "grid", "values": [16, 32]},
                },
            },
            4,
            2,
        ),
    ],
)
def test_planned_trials(spec: dict[str, Any], planned: int, samples: int) -> None:
    parsed = Sweep.model_validate(sweep(**spec)).spec
    assert parsed.planned_trials() == planned
    assert parsed.samples() == samples


@pytest.mark.parametrize(
    ("spec", "path", "fragment"),
    [
        (
            {"searchSpace": {"learningRate": {"type": "loguniform", "low": 0.1, "high": 0.01}}},
            "spec.searchSpace.learningRate.low",
            "less than high",
        ),
        (
            {"searchSpace": {"learningRate": {"type": "loguniform", "low": 0.0, "high": 0.01}}},
            "spec.searchSpace.learningRate.low",
            "low > 0",
        ),
        (
            {"searchSpace": {"learningRate": {"type": "uniform", "low": 0.1}}},
            "spec.searchSpace.learningRate.high",
            "needs low and high",
        ),
        (
            {"searchSpace": {"learningRate": {"type": "choice", "low": 0.1, "values": [0.1]}}},
            "spec.searchSpace.learningRate.low",
            "takes values",
        ),
        (
            {"searchSpace": {"warmupSteps": {"type": "randint", "low": 1.5, "high": 9}}},
            "spec.searchSpace.warmupSteps.low",
            "integers",
        ),
        (
            {"searchSpace": {"learningRate": {"type": "choice", "values": [0.001, 2.0]}}},
            "spec.searchSpace.learningRate",
            "trainer rejects",
        ),
        (
            {"searchSpace": {"learningRate": {"type": "choice", "values": [[1]]}}},
            "spec.searchSpace.learningRate.values[0]",
            "scalars",
        ),
        (
            {"searchSpace": {"learnRate": LR}},
            "spec.searchSpace.learnRate (key)",
            "not a searchable",
        ),
        (
            {"searchSpace": {"learningRate": {**LR, "lowx": 1}}},
            "spec.searchSpace.learningRate.lowx",
            "Extra inputs",
        ),
        (
            {"searchSpace": {"learningRate": {"type": "gaussian", "low": 1, "high": 2}}},
            "spec.searchSpace.learningRate.type",
            "Input should be",
        ),
        ({"maxConcurrentTrials": 6}, "spec.maxConcurrentTrials", "exceeds maxTrials"),
        ({"maxTrials": 201}, "spec.maxTrials", "less than or equal to 200"),
        (
            {
                "algorithm": "tpe",
                "searchSpace": {"learningRate": {"type": "grid", "values": [0.01]}},
            },
            "spec.algorithm",
            "not tpe",
        ),
        (
            {
                "algorithm": "gp",
                "searchSpace": {"learningRate": {"type": "grid", "values": [0.01]}},
            },
            "spec.algorithm",
            "not tpe, cmaes, qmc or gp",
        ),
        (
            {"algorithm": "cmaes", "searchSpace": {"batchSize": {"type": "choice", "values": [8]}}},
            "spec.algorithm",
            "add a ranged parameter or use tpe, qmc or random",
        ),
        ({"algorithm": "grid"}, "spec.algorithm", "grid or choice"),
        (
            {
                "algorithm": "grid",
                "maxTrials": 2,
                "searchSpace": {"learningRate": {"type": "grid", "values": [0.1, 0.2, 0.3]}},
            },
            "spec.maxTrials",
            "grid has 3 points",
        ),
        ({"scheduler": {"type": "hyperband"}}, "spec.scheduler.type", "Input should be"),
        (
            {"scheduler": {"type": "asha", "reductionFactor": 1}},
            "spec.scheduler.reductionFactor",
            "greater than 1",
        ),
        ({"objective": {"mode": "maximize"}}, "spec.objective.mode", "Input should be"),
        (
            {"storage": "http://bucket"},
            "spec.storage",
            "use file://PATH, s3://BUCKET/PREFIX or gs://",
        ),
        ({"resources": {"memory": "lots"}}, "spec.resources.memory", "a quantity such as 4Gi"),
        (
            {"trainer": {"model": {"width": 100, "heads": 8}}},
            "spec.trainer.model.heads",
            "must divide",
        ),
        (
            {"trainer": {"dataset": {"trainPath": "a.jsonl"}}},
            "spec.trainer.dataset.evalPath",
            "both trainPath and evalPath",
        ),
        ({"cluster": {"pools": [{"name": "a"}, {"name": "a"}]}}, "spec.cluster.pools", "unique"),
        (
            {"cluster": {"pools": [{"name": "t", "accelerator": "tpu"}]}},
            "spec.cluster.pools[0].tpuAccelerator",
            "tpu pool",
        ),
        ({"budget": {"smokeSteps": 0}}, "spec.budget.smokeSteps", "greater than or equal to 1"),
    ],
)
def test_errors_name_the_field(spec: dict[str, Any], path: str, fragment: str) -> None:
    errors = errors_of(sweep(**spec))
    assert any(p == path and fragment in m for p, m in errors), errors


def test_rehearsal_needs_exactly_one_source() -> None:
    for spec in ({}, {"fromSweep": "s", "trainer": {}}):
        errors = errors_of(rehearsal_manifest("r", spec))
        assert ("spec.fromSweep", "set exactly one of trainer or fromSweep") in errors
    fine = rehearsal_manifest("r", {"fromSweep": "s"})
    assert Rehearsal.model_validate(fine).spec.from_sweep == "s"


def test_bad_metadata_name_is_named() -> None:
    doc = sweep()
    doc["metadata"]["name"] = "Not_A_Name"
    assert any(p == "metadata.name" for p, _ in errors_of(doc))


def test_wire_round_trip() -> None:
    doc = sweep(
        algorithm="tpe",
        scheduler={"type": "asha", "gracePeriod": 10},
        maxTrials=8,
        maxConcurrentTrials=2,
    )
    parsed = Sweep.model_validate(doc)
    again = Sweep.model_validate(parsed.to_wire())
    assert again == parsed
    assert again.to_wire()["spec"]["scheduler"]["gracePeriod"] == 10


def test_error_path_formatting() -> None:
    assert error_path(("spec", "pools", 0, "name")) == "spec.pools[0].name"
    assert error_path(("searchSpace", "lr", "[key]"), "spec") == "spec.searchSpace.lr (key)"


def test_parse_sweep_accepts_manifest_or_bare_spec() -> None:
    full = parse_sweep(sweep(maxTrials=3))
    assert (full.name, full.spec.max_trials) == ("s", 3)
    bare = parse_sweep({"searchSpace": {"learningRate": LR}})
    assert bare.name is None and bare.spec.max_trials == 5
    with pytest.raises(ManifestError) as info:
        parse_sweep(
            {"searchSpace": {"learningRate": {"type": "loguniform", "low": 1, "high": 0.1}}}
        )
    assert info.value.errors[0][0] == "spec.searchSpace.learningRate.low"
    with pytest.raises(ManifestError):
        parse_sweep({"kind": "Rehearsal", "spec": {}})


def test_spec_b64_round_trip() -> None:
    from tunix_rt.contract.codec import decode_sweep, encode_spec

    spec = Sweep.model_validate(sweep(maxTrials=4)).spec
    assert decode_sweep(encode_spec(spec)).spec == spec
    with pytest.raises(ManifestError):
        decode_sweep("not base64!")


def test_documents_and_kinds() -> None:
    docs = parse_documents(
        "kind: ConfigMap\nmetadata: {name: c}\n---\n---\n"
        + "kind: Sweep\nmetadata: {name: s}\nspec: {}\n"
    )
    assert len(docs) == 2
    skipped, bad = (check_document(d, i) for i, d in enumerate(docs))
    assert skipped.skipped and not skipped.errors
    assert bad.kind == "Sweep" and ("spec.searchSpace", "Field required") in bad.errors
    with pytest.raises(ManifestError) as info:
        parse_documents("a: [1, 2\n")
    assert "line" in info.value.errors[0][1]


def test_trial_records_round_trip() -> None:
    trial = TrialResult(
        trial_id="t1",
        sweep="s",
        params={"learningRate": 0.01},
        state=TrialState.SUCCEEDED,
        primary_score=0.5,
    )
    summary = SweepResult(
        sweep="s", trials=[trial], best_trial_id="t1", primary_score=0.5, trials_planned=1
    )
    again = SweepResult.model_validate(summary.to_wire())
    assert again == summary
    assert again.phase.value == "Succeeded"
