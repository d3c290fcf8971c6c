"""``load_trainer_config`` (``python -m tunix_rt.train --config FILE --set KEY=VALUE``)
applies its flags in the one override language (``api/overrides.py``): the keys it
accepted before (either spelling, dotted sections, a file in either spelling) and errors
that name the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tunix_rt.api.errors import ManifestError
from tunix_rt.train.config import load_trainer_config


def test_flags_replace_a_file_value_in_either_spelling(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("learning_rate: 0.1\nmodel:\n  mlp_ratio: 2\n  width: 64\n", encoding="utf-8")
    config = load_trainer_config(
        path, ["learningRate=2e-3", "model.mlpRatio=3", "eval.evalEvery=7"]
    )
    assert (config.learning_rate, config.model.mlp_ratio, config.model.width) == (2e-3, 3, 64)
    assert config.eval.eval_every == 7


def test_a_flag_may_mend_the_file(tmp_path: Path) -> None:
    """The flags apply to the file's fields before they are validated, as they always did."""
    path = tmp_path / "c.yaml"
    path.write_text("batchSize: 0\n", encoding="utf-8")
    assert load_trainer_config(path, ["batchSize=8"]).batch_size == 8
    with pytest.raises(ManifestError, match="batchSize: Input should be greater than"):
        load_trainer_config(path)


def test_a_dict_source_is_left_as_given() -> None:
    source: dict[str, Any] = {"max_steps": 9, "model": {"width": 64}}
    assert load_trainer_config(source, ["model.layers=3"]).model.layers == 3
    assert source == {"max_steps": 9, "model": {"width": 64}}


def test_user_params_flags_set_one_value() -> None:
    source = {
        "backend": "python",
        "entrypoint": "pkg.mod:train",
        "parameters": {"window": "int", "scale": "float"},
        "userParams": {"window": 3},
    }
    config = load_trainer_config(source, ["userParams.scale=0.5", "userParams.window=2.0"])
    assert config.user_params == {"window": 2, "scale": 0.5}


@pytest.mark.parametrize(
    ("flag", "field"),
    [
        ("batchSize=0", "batchSize"),
        ("epochs=3", "epochs"),
        ("model.depth=3", "model.depth"),
        ("model=3", "model"),
        ("learningRate=abc", "learningRate"),
        ("eval.maxTraceTokens=8", "eval.maxTraceTokens"),
    ],
)
def test_a_bad_flag_names_its_field(flag: str, field: str) -> None:
    with pytest.raises(ManifestError) as caught:
        load_trainer_config(None, [flag])
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")


def test_a_flag_without_a_value_is_refused() -> None:
    with pytest.raises(ValueError, match="expected KEY=VALUE"):
        load_trainer_config(None, ["learningRate"])
