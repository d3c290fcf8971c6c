"""backend python: the user's own parameters, declared with their types, searched by name.

Admission (pydantic) and the CRD's CEL rules must refuse the same Sweeps; trial configs
carry the searched values in ``userParams`` under the user's names.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError
from test_api_crd import cel_violations, spec_schema  # tests/api is on sys.path
from typer.testing import CliRunner

from support.manifests import sweep_spec_errors
from tunix_rt.api.errors import validation_errors
from tunix_rt.api.sweep import Sweep, SweepSpec
from tunix_rt.api.trainer import TrainerConfig
from tunix_rt.cli import app
from tunix_rt.contract.exits import ExitCode

PY_TRAINER: dict[str, Any] = {
    "backend": "python",
    "entrypoint": "mypkg.train:train",
    "parameters": {"threshold": "float", "window": "int", "rule": "str", "smooth": "bool"},
}
PY_SWEEP: dict[str, Any] = {
    "trainer": PY_TRAINER,
    "searchSpace": {
        "threshold": {"type": "uniform", "low": 0.1, "high": 0.9},
        "window": {"type": "randint", "low": 1, "high": 8},
        "rule": {"type": "choice", "values": ["carry", "plain"]},
        "smooth": {"type": "choice", "values": [True, False]},
        "learningRate": {"type": "loguniform", "low": 1e-4, "high": 1e-2},
    },
    "maxTrials": 4,
}


def patched(**changes: Any) -> dict[str, Any]:
    spec = copy.deepcopy(PY_SWEEP)
    for key, value in changes.items():
        if key == "searchSpace":
            spec["searchSpace"].update(value)
        elif key == "trainer":
            spec["trainer"].update(value)
        else:
            spec[key] = value
    return spec


# ----------------------------------------------------------------------------- trainer


def test_user_params_are_checked_and_normalised_to_their_declared_types() -> None:
    config = TrainerConfig.model_validate(
        {**PY_TRAINER, "userParams": {"threshold": 1, "window": 3.0, "rule": "x", "smooth": True}}
    )
    assert config.user_params == {"threshold": 1.0, "window": 3, "rule": "x", "smooth": True}
    assert isinstance(config.user_params["threshold"], float)
    assert isinstance(config.user_params["window"], int)


@pytest.mark.parametrize(
    ("user_params", "fragment"),
    [
        ({"window": 2.5}, "window: declared int, got 2.5"),
        ({"threshold": "0.5"}, "threshold: declared float, got '0.5'"),
        ({"threshold": True}, "declared float, got True"),
        ({"smooth": "yes"}, "smooth: declared bool"),
        ({"rule": 3}, "rule: declared str"),
        ({"threshold": float("nan")}, "finite"),
        ({"thresh": 0.5}, "'thresh' is not declared in trainer.parameters"),
    ],
)
def test_user_params_of_the_wrong_type_are_refused(
    user_params: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(ValidationError) as info:
        TrainerConfig.model_validate({**PY_TRAINER, "userParams": user_params})
    errors = validation_errors(info.value)
    assert any(path == "userParams" and fragment in message for path, message in errors), errors


@pytest.mark.parametrize(
    ("trainer", "path", "fragment"),
    [
        ({"entrypoint": None}, "entrypoint", "backend python needs entrypoint"),
        ({"entrypoint": "mypkg.train"}, "entrypoint", "'package.module:function'"),
        ({"entrypoint": "my-pkg:train"}, "entrypoint", "'package.module:function'"),
        ({"parameters": {"learningRate": "float"}}, "parameters", "is a trainer field already"),
        ({"parameters": {"seed": "int"}}, "parameters", "is a trainer field already"),
        ({"parameters": {"2x": "int"}}, "parameters", "Python identifier"),
        ({"parameters": {"a": "double"}}, "parameters.a", "Input should be"),
    ],
)
def test_python_backend_fields_are_checked(
    trainer: dict[str, Any], path: str, fragment: str
) -> None:
    data = {**PY_TRAINER, **trainer}
    data = {k: v for k, v in data.items() if v is not None}
    with pytest.raises(ValidationError) as info:
        TrainerConfig.model_validate(data)
    errors = validation_errors(info.value)
    assert any(p == path and fragment in m for p, m in errors), errors


def test_with_params_puts_user_params_under_the_users_names() -> None:
    base = TrainerConfig.model_validate({**PY_TRAINER, "userParams": {"rule": "plain"}})
    config = base.with_params({"threshold": 0.25, "window": 4, "learningRate": 0.01})
    assert config.user_params == {"rule": "plain", "threshold": 0.25, "window": 4}
    assert config.learning_rate == 0.01
    assert config.to_wire()["userParams"] == {"rule": "plain", "threshold": 0.25, "window": 4}
    with pytest.raises(ValidationError, match=r"declared int, got 1\.5"):
        base.with_params({"window": 1.5})
    with pytest.raises(ValueError, match=r"or the declared trainer.parameters \['rule'"):
        base.with_params({"nope": 1})


def test_overrides_merge_user_params_one_value_at_a_time() -> None:
    base = TrainerConfig.model_validate(
        {**PY_TRAINER, "userParams": {"rule": "plain", "window": 2}}
    )
    config = base.with_overrides({"userParams": {"window": 5}})
    assert config.user_params == {"rule": "plain", "window": 5}


# ----------------------------------------------------------------------------- sweep


def test_a_sweep_may_search_the_users_parameters() -> None:
    sweep = Sweep.model_validate({"metadata": {"name": "s"}, "spec": PY_SWEEP})
    assert list(sweep.spec.search_space) == [
        "threshold",
        "window",
        "rule",
        "smooth",
        "learningRate",
    ]
    config = sweep.spec.trial_config(
        {"threshold": 0.5, "window": 3, "rule": "carry", "smooth": False, "learningRate": 0.001}
    )
    assert config.user_params == {"threshold": 0.5, "window": 3, "rule": "carry", "smooth": False}
    assert config.max_steps == sweep.spec.budget.smoke_steps
    assert cel_violations(PY_SWEEP, spec_schema("Sweep")) == []


BAD_USER_SWEEPS: list[dict[str, Any]] = yaml.safe_load(
    (Path(__file__).parent / "bad_user_sweeps.yaml").read_text()
)
"""searchSpace entries both refuse, with what each says (``bad_user_sweeps.yaml``)."""


@pytest.mark.parametrize("case", BAD_USER_SWEEPS, ids=[c["id"] for c in BAD_USER_SWEEPS])
def test_admission_and_the_crd_refuse_the_same_user_params(case: dict[str, Any]) -> None:
    spec = patched(searchSpace=case["searchSpace"])
    errors = sweep_spec_errors(spec)
    assert any(p == case["path"] and case["fragment"] in m for p, m in errors), errors
    violations = cel_violations(spec, spec_schema("Sweep"))
    assert any(case["cel"] in v for v in violations), violations


def test_choice_values_of_the_wrong_type_are_refused() -> None:
    spec = patched(searchSpace={"window": {"type": "choice", "values": [1, 2.5]}})
    errors = sweep_spec_errors(spec)
    assert any(
        p == "spec.searchSpace.window" and "declared int, got 2.5" in m for p, m in errors
    ), errors


def test_an_unknown_name_without_declared_parameters_says_how_to_declare_one() -> None:
    spec = {"searchSpace": {"threshold": {"type": "uniform", "low": 0.1, "high": 0.9}}}
    errors = sweep_spec_errors(spec)
    assert errors and errors[0][0] == "spec.searchSpace.threshold (key)"
    assert "declare it in trainer.parameters" in errors[0][1]
    assert any(
        "searchSpace names a trainer" in v for v in cel_violations(spec, spec_schema("Sweep"))
    )


def test_an_unknown_name_is_reported_with_the_specs_other_errors() -> None:
    spec = patched(searchSpace={"windw": {"type": "randint", "low": 1, "high": 3}}, maxTrials=0)
    paths = {p for p, _ in sweep_spec_errors(spec)}
    assert {"spec.searchSpace.windw (key)", "spec.maxTrials"} <= paths


def test_the_python_backend_needs_an_entrypoint_in_the_crd_too() -> None:
    spec = copy.deepcopy(PY_SWEEP)
    del spec["trainer"]["entrypoint"]
    assert any(
        "backend python needs entrypoint" in v for v in cel_violations(spec, spec_schema("Sweep"))
    )
    assert any(p == "spec.trainer.entrypoint" for p, _ in sweep_spec_errors(spec))


def test_trial_params_keep_the_users_names_in_the_spec_model() -> None:
    spec = SweepSpec.model_validate(PY_SWEEP)
    assert set(spec.search_space) >= {"threshold", "window", "rule", "smooth"}


def test_validate_shows_an_unknown_parameter_and_the_declared_ones(tmp_path: Path) -> None:
    manifest = tmp_path / "sweep.yaml"
    manifest.write_text(
        "apiVersion: tunixrt.io/v1alpha1\nkind: Sweep\nmetadata: {name: py}\nspec:\n"
        "  trainer: {backend: python, entrypoint: 'mypkg.train:train', "
        "parameters: {threshold: float}}\n"
        "  searchSpace:\n    threshhold: {type: uniform, low: 0.1, high: 0.9}\n"
    )
    result = CliRunner().invoke(app, ["validate", str(manifest)])
    assert result.exit_code == ExitCode.INVALID, result.output
    assert "spec.searchSpace.threshhold (key)" in result.output
    assert "the declared trainer.parameters ['threshold']" in result.output
    manifest.write_text(manifest.read_text().replace("threshhold", "threshold"))
    result = CliRunner().invoke(app, ["validate", str(manifest)])
    assert result.exit_code == 0, result.output
    assert "Sweep/py is valid" in result.output
