"""One override language (``api/overrides.py``): a Rehearsal's ``spec.overrides`` and the
trainer's ``--set KEY=VALUE`` flags accept the same keys and name the same field when a
key or a value is wrong; they differ only in the prefix of that name."""

from __future__ import annotations

from typing import Any

import pytest

from tunix_rt.api.errors import ManifestError
from tunix_rt.api.overrides import assignments_to_overrides, merge_overrides
from tunix_rt.api.trainer import TrainerConfig, apply_overrides

PYTHON = {
    "backend": "python",
    "entrypoint": "pkg.mod:train",
    "parameters": {"window": "int", "scale": "float"},
    "userParams": {"window": 3},
}


def test_flags_become_one_nested_mapping() -> None:
    flags = ["learningRate=1e-3", "model.width=64", "model.layers=3", "eval.evalEvery=7"]
    flags += ["backend=python", "name=null"]
    assert assignments_to_overrides(flags) == {
        "learningRate": 1e-3,  # YAML 1.1 reads 1e-3 as a string: kept a number
        "model": {"width": 64, "layers": 3},
        "eval": {"evalEvery": 7},
        "backend": "python",
        "name": None,
    }


@pytest.mark.parametrize("flag", ["learningRate", "=3", " =1"])
def test_a_flag_needs_a_key_and_a_value(flag: str) -> None:
    with pytest.raises(ValueError, match="expected KEY=VALUE"):
        assignments_to_overrides([flag])


def test_a_flag_cannot_nest_under_a_value_another_flag_set() -> None:
    with pytest.raises(ValueError, match="'model' is not a section"):
        assignments_to_overrides(["model=3", "model.width=64"])


def test_a_later_flag_wins_in_either_spelling() -> None:
    for flags, rate in (
        (["learningRate=1e-3", "learning_rate=2e-3"], 2e-3),
        (["learning_rate=2e-3", "learningRate=1e-3"], 1e-3),
        (["learningRate=1e-3", "learning_rate=2e-3", "learningRate=3e-3"], 3e-3),
    ):
        assert apply_overrides({}, assignments_to_overrides(flags), "").learning_rate == rate


def test_a_key_replaces_the_base_value_in_either_spelling() -> None:
    base: dict[str, Any] = {"learning_rate": 0.1, "model": {"mlp_ratio": 2, "width": 64}}
    merged = merge_overrides(
        TrainerConfig, base, {"learningRate": 0.2, "model": {"mlpRatio": 3}}, ""
    )
    assert merged == {"learningRate": 0.2, "model": {"width": 64, "mlpRatio": 3}}
    assert base == {"learning_rate": 0.1, "model": {"mlp_ratio": 2, "width": 64}}  # only read


ACCEPTED: list[dict[str, Any]] = [
    {"maxSteps": 9},
    {"max_steps": 9},
    {"max_steps": 9, "maxSteps": 10},
    {"model": {"width": 64, "mlp_ratio": 2}},
    {"model": {"mlpRatio": 2}, "width": 64},
    {"eval": {"evalEvery": 7, "max_trace_tokens": 64}},
    {"dataset": {"eval_size": 8, "trainSize": 100}},
    {"backend": "tunix-sft", "model": {"name": "gemma3-tiny"}, "loraRank": 4},
]


@pytest.mark.parametrize("overrides", ACCEPTED)
def test_spec_overrides_and_flags_accept_the_same_keys(overrides: dict[str, Any]) -> None:
    base = TrainerConfig()
    by_spec = base.with_overrides(overrides)
    assert apply_overrides(base.to_wire(), overrides, "") == by_spec
    flags = [f"{k}={v}" for k, v in _dotted(overrides)]
    assert apply_overrides(base.to_wire(), assignments_to_overrides(flags), "") == by_spec


def test_user_params_merge_one_value_at_a_time_either_way() -> None:
    base = TrainerConfig.model_validate(PYTHON)
    by_spec = base.with_overrides({"userParams": {"scale": 0.5}})
    assert by_spec.user_params == {"window": 3, "scale": 0.5}
    flags = assignments_to_overrides(["user_params.scale=0.5"])
    assert apply_overrides(base.to_wire(), flags, "") == by_spec


REFUSED: list[tuple[dict[str, Any], str, str]] = [
    ({"epochs": 3}, "epochs", "unknown trainer field; use one of ['backend', 'batchSize'"),
    ({"model": {"depth": 3}}, "model.depth", "unknown trainer field; use one of ['checkpoint'"),
    ({"batchSize": 0}, "batchSize", "greater than or equal to 1"),
    ({"model": {"heads": 3, "width": 64}}, "model.heads", "heads (3) must divide width (64)"),
    ({"learningRate": "abc"}, "learningRate", "expected a number, got the string 'abc'"),
    ({"dataset": {"evalSize": 0}}, "dataset.evalSize", "greater than 0"),
    ({"width": 100}, "width", "heads (8) must divide width (100)"),
    (
        {"loraRank": 4},
        "loraRank",
        "loraRank is read by backend tunix-sft or tunix-grpo or tunix-dpo only",
    ),
    ({"dpoBeta": 0.2}, "dpoBeta", "dpoBeta is read by backend tunix-dpo only"),
]


@pytest.mark.parametrize(("overrides", "field", "reason"), REFUSED)
def test_spec_overrides_and_flags_name_the_same_field(
    overrides: dict[str, Any], field: str, reason: str
) -> None:
    with pytest.raises(ManifestError) as by_spec:
        TrainerConfig().with_overrides(overrides)
    assert by_spec.value.field == f"spec.overrides.{field}"
    assert reason in by_spec.value.reason
    with pytest.raises(ManifestError) as by_flags:
        apply_overrides({}, overrides, "")
    assert (by_flags.value.field, by_flags.value.reason) == (field, by_spec.value.reason)


def _dotted(overrides: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """``{"model": {"width": 64}}`` as ``[("model.width", 64)]``: what ``--set`` spells."""
    out: list[tuple[str, Any]] = []
    for key, value in overrides.items():
        if isinstance(value, dict):
            out += _dotted(value, f"{prefix}{key}.")
        else:
            out.append((f"{prefix}{key}", value))
    return out
