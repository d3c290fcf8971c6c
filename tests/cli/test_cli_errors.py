"""One error style and one set of exit codes across commands, "did you mean" for
misspelt fields and searchSpace parameters (no Ray here)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from support.cli import invoke as invoke_wide
from support.cli import validate_text
from tunix_rt.cli.suggest import closest, hint
from tunix_rt.contract.exits import ExitCode

HEAD = "apiVersion: tunixrt.io/v1alpha1\nkind: Sweep\nmetadata: {name: typos}\n"

FIELDS = textwrap.dedent(
    """\
    spec:
      maxConcurentTrials: 2
      budget: {smokeStep: 3}
      trainer: {model: {layerz: 2}}
      searchSpace:
        learningRate: {type: loguniform, low: 1.0e-4, high: 3.0e-2}
    """
)
PARAMS = textwrap.dedent(
    """\
    spec:
      searchSpace:
        learningRat: {type: loguniform, low: 1.0e-4, high: 3.0e-2}
    """
)
CASES = [
    (
        FIELDS,
        {
            "spec.maxConcurentTrials": "maxConcurrentTrials",
            "spec.budget.smokeStep": "smokeSteps",
            "spec.trainer.model.layerz": "layers",
        },
    ),
    (PARAMS, {"spec.searchSpace.learningRat (key)": "learningRate"}),
]


def invoke(*args: str) -> Any:
    return invoke_wide(*args, columns=400)


@pytest.mark.parametrize(("body", "expected"), CASES)
@pytest.mark.parametrize("command", [("validate",), ("sweep", "run")])
def test_misspelt_names_get_did_you_mean_in_one_style(
    tmp_path: Path, command: tuple[str, ...], body: str, expected: dict[str, str]
) -> None:
    path = tmp_path / "typos.yaml"
    path.write_text(HEAD + body)
    store = ["--storage", f"file://{tmp_path}/r"] if command[0] == "sweep" else []
    result = invoke(*command, str(path), *store)
    assert result.exit_code == ExitCode.INVALID, result.output
    where = f"{path}: Sweep/typos" if command == ("validate",) else str(path)
    lines = [line for line in result.output.splitlines() if line.startswith("error: ")]
    for field, near in expected.items():
        line = next((ln for ln in lines if ln.startswith(f"error: {where}: {field}: ")), None)
        assert line is not None, result.output
        assert line.endswith(f"did you mean `{near}`?"), line
    assert len(lines) == len(expected), result.output
    assert not (tmp_path / "r").exists()  # nothing ran


def test_a_declared_parameter_is_suggested_too() -> None:
    doc = {"spec": {"trainer": {"parameters": {"threshold": "float"}}}}
    assert hint("spec.searchSpace.threshhold (key)", "x", "Sweep", doc) == "threshold"
    assert hint("spec.searchSpace.zzz (key)", "x", "Sweep", doc) is None


def test_closest_is_none_for_nothing_near_and_catches_case() -> None:
    assert closest("maxconcurrenttrials", ["maxConcurrentTrials", "maxTrials"]) == (
        "maxConcurrentTrials"
    )
    assert closest("qqqq", ["maxConcurrentTrials", "maxTrials"]) is None
    # Not every error is about a name: a bad value gets no suggestion.
    assert hint("spec.maxTrials", "Input should be greater than 0") is None


def test_a_rehearsal_field_gets_did_you_mean(tmp_path: Path) -> None:
    result = validate_text(
        tmp_path / "r.yaml",
        "apiVersion: tunixrt.io/v1alpha1\nkind: Rehearsal\nmetadata: {name: r}\n"
        "spec: {trainer: {maxStep: 3}}\n",
        columns=400,
    )
    assert result.exit_code == ExitCode.INVALID, result.output
    assert "spec.trainer.maxStep: Extra inputs are not permitted; did you mean `maxSteps`?" in (
        result.output
    )


@pytest.mark.parametrize(
    "args",
    [
        ("validate", "{missing}"),
        ("sweep", "run", "{missing}"),
        ("rehearsal", "run", "{missing}"),
    ],
)
def test_a_missing_file_is_invalid_input_in_every_command(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    missing = tmp_path / "nope.yaml"
    result = invoke(*(a.format(missing=missing) for a in args))
    assert result.exit_code == ExitCode.INVALID, result.output
    first = result.output.strip().splitlines()[0]
    assert first.startswith(f"error: {missing}") or first.startswith(
        f"error: cannot read {missing}"
    ), result.output
    assert "Traceback" not in result.output


def test_a_usage_error_exits_2() -> None:
    result = invoke("sweep", "run")
    assert result.exit_code == ExitCode.INVALID
    assert "Missing argument" in result.output


def test_exit_codes_are_documented(repo_root: Path) -> None:
    docs = (repo_root / "docs" / "cli.md").read_text()
    for code in ExitCode:
        assert f"| {int(code)} |" in docs, code
