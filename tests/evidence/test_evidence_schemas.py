"""The JSON Schemas of the evidence files: shipped, valid, enforced, and (failure.json)
built from its model."""

from __future__ import annotations

import copy
import json
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from support.evidence import sample_manifest, sample_rows, sample_summary
from tunix_rt.evidence import EvidenceError, schema_errors, validate
from tunix_rt.evidence.schema_build import BUILT, main, render
from tunix_rt.evidence.validation import SCHEMA_FILES, load_schema
from tunix_rt.scoring import compute_primary_score

MANIFEST_REQUIRED = [
    "commit_sha",
    "model_id",
    "dataset",
    "config_path",
    "config_sha256",
    "config",
    "command",
    "seed",
    "start_time",
    "end_time",
    "versions",
    "devices",
    "image",
    "source",
]
SUMMARY_REQUIRED = ["primary_score", "metrics", "rows"]


@pytest.mark.parametrize("name", sorted(SCHEMA_FILES))
def test_schemas_ship_as_package_data_and_are_2020_12(name: str) -> None:
    text = (resources.files("tunix_rt.evidence") / "schemas" / SCHEMA_FILES[name]).read_text()
    schema = json.loads(text)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)
    assert load_schema(name) == schema


def test_built_documents_are_valid() -> None:
    rows = sample_rows()
    manifest = sample_manifest()
    summary = sample_summary(rows)
    assert schema_errors("run_manifest", manifest) == []
    assert schema_errors("eval_summary", summary) == []
    for key in MANIFEST_REQUIRED:
        assert key in manifest, key
    assert set(manifest["dataset"]) >= {"name", "sha256"}
    assert set(manifest["versions"]) >= {"tunix-rt", "jax", "flax", "optax", "ray", "python"}
    assert summary["primary_score"] == compute_primary_score(rows) == 0.75
    assert summary["rows"] == {
        "eval_rows": 4,
        "scored_rows": 4,
        "correct_rows": 3,
        "format_valid_rows": 4,
        "capped_rows": 0,
        "rows_file": "eval_rows.jsonl",
    }
    assert summary["metrics"]["nan_metric"] is None  # non-finite metrics are null, not NaN
    json.dumps(summary, allow_nan=False)


@pytest.mark.parametrize("key", MANIFEST_REQUIRED)
def test_manifest_missing_a_required_key_is_rejected(key: str) -> None:
    manifest = copy.deepcopy(sample_manifest())
    del manifest[key]
    errors = schema_errors("run_manifest", manifest)
    assert any(f"'{key}' is a required property" in e for e in errors), errors
    with pytest.raises(EvidenceError, match=rf"run_manifest.json does not match.*'{key}'"):
        validate("run_manifest", manifest, label="run_manifest.json")


@pytest.mark.parametrize("key", SUMMARY_REQUIRED)
def test_summary_missing_a_required_key_is_rejected(key: str) -> None:
    summary = copy.deepcopy(sample_summary(sample_rows()))
    del summary[key]
    assert any(
        f"'{key}' is a required property" in e for e in schema_errors("eval_summary", summary)
    )


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("dataset", "sha256"), "not-a-digest"),
        (("commit_sha",), "HEAD"),
        (("start_time",), "yesterday"),
        (("config_sha256",), "abc"),
        (("command",), []),
    ],
)
def test_manifest_bad_values_are_rejected(path: tuple[str, ...], value: Any) -> None:
    manifest = copy.deepcopy(sample_manifest())
    target = manifest
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    assert schema_errors("run_manifest", manifest)


def test_summary_score_out_of_range_is_rejected() -> None:
    summary = copy.deepcopy(sample_summary(sample_rows()))
    summary["primary_score"] = 1.5
    assert schema_errors("eval_summary", summary)


def test_builder_refuses_invalid_manifest() -> None:
    with pytest.raises(EvidenceError, match="dataset"):
        sample_manifest(dataset={"name": "x"})


def test_written_evidence_files_validate(evidence_dir: Path) -> None:
    manifest = json.loads((evidence_dir / "run_manifest.json").read_text())
    summary = json.loads((evidence_dir / "eval_summary.json").read_text())
    validate("run_manifest", manifest)
    validate("eval_summary", summary)
    rows = [
        json.loads(line) for line in (evidence_dir / "eval_rows.jsonl").read_text().splitlines()
    ]
    for row in rows:
        validate("eval_row", row)
    assert summary["primary_score"] == compute_primary_score(rows)


@pytest.mark.parametrize("name", sorted(BUILT))
def test_built_schemas_ship_up_to_date(name: str) -> None:
    """failure.schema.json is built from RehearsalFailure: the shipped copy must match."""
    text = (resources.files("tunix_rt.evidence") / "schemas" / SCHEMA_FILES[name]).read_text()
    assert text == render(BUILT[name]()), (
        f"{SCHEMA_FILES[name]} is stale: run `python -m tunix_rt.evidence.schema_build`"
    )
    assert main(["--check"]) == 0
