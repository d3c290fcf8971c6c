"""The CRDs in crds/: generated from the models, structural, explained, and guarded by CEL.

CEL rules are evaluated here with cel-python, on values converted the way the API server
converts them (``type: number`` fields are doubles), for objects the pydantic models also
accept or reject: the two layers must agree.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import celpy
import jsonschema
import pytest
from celpy import celtypes
from pydantic import ValidationError

from tunix_rt.api import crd
from tunix_rt.api.rehearsal import Rehearsal
from tunix_rt.api.sweep import Sweep

Schema = dict[str, Any]
FORBIDDEN = {
    "anyOf",
    "oneOf",
    "allOf",
    "not",
    "$ref",
    "$defs",
    "const",
    "title",
    "examples",
    "definitions",
}


def versions(kind: str) -> Schema:
    manifest = crd.sweep_crd() if kind == "Sweep" else crd.rehearsal_crd()
    version: Schema = manifest["spec"]["versions"][0]
    return version


def root_schema(kind: str) -> Schema:
    schema: Schema = versions(kind)["schema"]["openAPIV3Schema"]
    return schema


def walk(node: Schema, path: str = "") -> Iterator[tuple[str, Schema]]:
    yield path, node
    for name, sub in node.get("properties", {}).items():
        yield from walk(sub, f"{path}.{name}")
    if isinstance(node.get("additionalProperties"), dict):
        yield from walk(node["additionalProperties"], f"{path}.*")
    if "items" in node:
        yield from walk(node["items"], f"{path}[]")


def test_crds_folder_is_up_to_date(repo_root: Path) -> None:
    expected = crd.files()
    assert sorted(expected) == ["tunixrt.io_rehearsals.yaml", "tunixrt.io_sweeps.yaml"]
    for name, text in expected.items():
        path = repo_root / "crds" / name
        assert path.exists(), f"{path} is missing: run `make crds`"
        assert path.read_text() == text, f"{path} is stale: run `make crds` and commit it"


def test_render_all_is_both_documents() -> None:
    import yaml

    docs = list(yaml.safe_load_all(crd.render_all()))
    assert [d["metadata"]["name"] for d in docs] == ["sweeps.tunixrt.io", "rehearsals.tunixrt.io"]
    assert docs == crd.manifests()


@pytest.mark.parametrize("kind", ["Sweep", "Rehearsal"])
def test_names_scope_and_subresources(kind: str) -> None:
    manifest = crd.sweep_crd() if kind == "Sweep" else crd.rehearsal_crd()
    spec = manifest["spec"]
    plural = kind.lower() + "s"
    assert manifest["metadata"]["name"] == f"{plural}.tunixrt.io"
    assert spec["group"] == "tunixrt.io" and spec["scope"] == "Namespaced"
    assert spec["names"]["plural"] == plural and spec["names"]["kind"] == kind
    assert spec["names"]["shortNames"] == (["sw"] if kind == "Sweep" else ["rh"])
    assert spec["names"]["categories"] == ["tunixrt"]
    version = versions(kind)
    assert version["name"] == "v1alpha1" and version["served"] and version["storage"]
    assert version["subresources"] == {"status": {}}


def test_sweep_printer_columns() -> None:
    columns = {c["name"]: c for c in versions("Sweep")["additionalPrinterColumns"]}
    assert columns["Phase"]["jsonPath"] == ".status.phase"
    assert columns["Trials"]["jsonPath"] == ".status.trialsProgress"
    assert columns["Best score"]["jsonPath"] == ".status.primaryScore"
    assert columns["Best score"]["type"] == "number"
    assert columns["Age"]["jsonPath"] == ".metadata.creationTimestamp"
    assert columns["Age"]["type"] == "date"
    shown = [
        c["name"] for c in versions("Sweep")["additionalPrinterColumns"] if not c.get("priority")
    ]
    assert shown == ["Phase", "Trials", "Best score", "Acc-hours", "Age"]
    assert columns["Acc-hours"]["jsonPath"] == ".status.acceleratorHoursUsed"
    status = root_schema("Sweep")["properties"]["status"]["properties"]
    for column in columns.values():
        parts = column["jsonPath"].split(".")[1:]
        if parts[0] == "status":
            node: Schema = root_schema("Sweep")
            for part in parts:
                node = node["properties"][part]
            assert node["type"] in ("string", "number", "integer")
    assert "trialsProgress" in status


@pytest.mark.parametrize("kind", ["Sweep", "Rehearsal"])
def test_schema_is_structural(kind: str) -> None:
    root = root_schema(kind)
    assert root["properties"]["metadata"] == {"type": "object"}
    for path, node in walk(root):
        junctor = node.get("oneOf", [])  # structural: only value validations (required) inside
        assert all(set(branch) == {"required"} for branch in junctor), f"{kind}{path}: {junctor}"
        banned = FORBIDDEN - {"oneOf"}
        assert not banned & node.keys(), f"{kind}{path}: {sorted(banned & node.keys())}"
        free = node.get("x-kubernetes-preserve-unknown-fields") is True
        assert "type" in node or free, f"{kind}{path} has no type"
        if "properties" in node:
            assert node["type"] == "object" and "additionalProperties" not in node, path
        if node.get("additionalProperties") is not None:
            assert isinstance(node["additionalProperties"], dict), (
                f"{kind}{path}: boolean additionalProperties"
            )
        if "enum" in node:
            assert node["type"] == "string" and node["enum"], path
        if "exclusiveMinimum" in node:
            assert node["exclusiveMinimum"] is True and "minimum" in node, path
        for rule in node.get("x-kubernetes-validations", []):
            assert (
                set(rule) <= {"rule", "message", "fieldPath"} and rule["rule"] and rule["message"]
            )


@pytest.mark.parametrize("kind", ["Sweep", "Rehearsal"])
def test_every_spec_and_status_field_is_described(kind: str) -> None:
    root = root_schema(kind)
    for part in ("spec", "status"):
        for path, node in walk(root["properties"][part], part):
            if path.endswith((".*", "[]")) or path == part:
                continue
            assert node.get("description"), f"{kind}.{path} has no description (kubectl explain)"


def test_free_form_maps_keep_unknown_fields() -> None:
    sweep = root_schema("Sweep")["properties"]
    values = sweep["spec"]["properties"]["searchSpace"]["additionalProperties"]["properties"][
        "values"
    ]
    assert values["items"] == {"x-kubernetes-preserve-unknown-fields": True}
    params = sweep["status"]["properties"]["trials"]["items"]["properties"]["params"]
    assert params["x-kubernetes-preserve-unknown-fields"] is True
    overrides = root_schema("Rehearsal")["properties"]["spec"]["properties"]["overrides"]
    assert "x-kubernetes-preserve-unknown-fields" not in overrides  # only the trainer fields
    assert all(v["x-kubernetes-preserve-unknown-fields"] for v in overrides["properties"].values())


def test_bounds_enums_and_defaults() -> None:
    spec = root_schema("Sweep")["properties"]["spec"]["properties"]
    assert spec["maxTrials"] == {
        "type": "integer",
        "description": spec["maxTrials"]["description"],
        "default": 5,
        "minimum": 1,
        "maximum": 200,
    }
    assert spec["algorithm"]["enum"] == ["random", "grid", "tpe", "cmaes", "qmc", "gp"]
    assert spec["scheduler"]["properties"]["type"]["enum"] == ["fifo", "asha", "median", "pbt"]
    param = spec["searchSpace"]["additionalProperties"]["properties"]["type"]
    assert param["enum"] == ["uniform", "loguniform", "randint", "choice", "grid"]
    assert spec["objective"]["properties"]["metric"]["default"] == "primary_score"
    assert spec["storage"]["pattern"].startswith("^(file://.+|(s3|gs)://")
    assert "default" not in str(root_schema("Sweep")["properties"]["status"])


@pytest.mark.parametrize("kind", ["Sweep", "Rehearsal"])
def test_storage_has_no_server_side_default(kind: str) -> None:
    """The API server must not fill in file://./runs: the operator's configured store applies."""
    storage = root_schema(kind)["properties"]["spec"]["properties"]["storage"]
    assert "default" not in storage
    assert not any(key.startswith("x-tunix-rt") for key in storage)


def rules_at(schema: Schema) -> list[str]:
    return [r["rule"] for r in schema.get("x-kubernetes-validations", [])]


def test_cel_rules_are_where_they_belong() -> None:
    sweep = root_schema("Sweep")["properties"]["spec"]
    assert any("maxConcurrentTrials <=" in r for r in rules_at(sweep))
    param = sweep["properties"]["searchSpace"]["additionalProperties"]
    assert "!has(self.low) || !has(self.high) || self.low < self.high" in rules_at(param)
    rehearsal = root_schema("Rehearsal")["properties"]["spec"]
    assert "has(self.trainer) != has(self.fromSweep)" in rules_at(rehearsal)


# ----------------------------------------------------------------------------- CEL


def to_cel(value: Any, schema: Schema) -> Any:
    """A JSON value as the API server hands it to CEL (numbers per the schema's type)."""
    if value is None:
        return None
    if schema.get("x-kubernetes-preserve-unknown-fields") and "type" not in schema:
        return celpy.adapter.json_to_cel(value)
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        out = {}
        for key, item in value.items():
            sub = props.get(key) if props else extra
            if sub is None:
                sub = {"x-kubernetes-preserve-unknown-fields": True}
            out[celtypes.StringType(key)] = to_cel(item, sub)
        return celtypes.MapType(out)
    if kind == "array":
        return celtypes.ListType([to_cel(item, schema["items"]) for item in value])
    if kind == "number":
        return celtypes.DoubleType(float(value))
    if kind == "integer":
        return celtypes.IntType(int(value))
    if kind == "boolean":
        return celtypes.BoolType(bool(value))
    return celtypes.StringType(str(value))


ENV = celpy.Environment()


@functools.cache
def cel_program(rule: str) -> Any:
    """A rule compiled once: parsing CEL is most of what checking a manifest costs."""
    return ENV.program(ENV.compile(rule))


def cel_violations(value: Any, schema: Schema, path: str = "") -> list[str]:
    """Every failing x-kubernetes-validations rule in ``value`` (messages with paths)."""
    out: list[str] = []
    if value is None:
        return out
    rules = schema.get("x-kubernetes-validations", [])
    activation = {"self": to_cel(value, schema)} if rules else {}
    for rule in rules:
        result = cel_program(rule["rule"]).evaluate(activation)
        if not result:
            out.append(f"{path}{rule.get('fieldPath', '')}: {rule['message']}")
    if schema.get("type") == "object" and isinstance(value, dict):
        props = schema.get("properties") or {}
        for key, item in value.items():
            sub = props.get(key) or schema.get("additionalProperties")
            if isinstance(sub, dict):
                out += cel_violations(item, sub, f"{path}.{key}")
    if schema.get("type") == "array" and isinstance(value, list):
        for index, item in enumerate(value):
            out += cel_violations(item, schema["items"], f"{path}[{index}]")
    return out


@pytest.mark.parametrize("kind", ["Sweep", "Rehearsal"])
def test_every_cel_rule_compiles(kind: str) -> None:
    rules = [
        r["rule"]
        for _, node in walk(root_schema(kind))
        for r in node.get("x-kubernetes-validations", [])
    ]
    assert len(rules) >= (8 if kind == "Sweep" else 5)
    for rule in rules:
        ENV.compile(rule)


LR = {"type": "loguniform", "low": 1e-4, "high": 3e-2}
GOOD_SWEEP: dict[str, Any] = {
    "trainer": {"learningRate": 0.003, "model": {"width": 64, "heads": 4}},
    "searchSpace": {
        "learningRate": LR,
        "batchSize": {"type": "choice", "values": [32, 64]},
        "warmupSteps": {"type": "randint", "low": 1, "high": 50},
    },
    "algorithm": "tpe",
    "maxTrials": 8,
    "maxConcurrentTrials": 2,
    "cluster": {"pools": [{"name": "cpu"}, {"name": "gpu", "accelerator": "gpu", "gpusPerPod": 1}]},
}

BAD_SWEEPS: list[tuple[str, dict[str, Any]]] = [
    (
        "low must be less than high",
        {"searchSpace": {"learningRate": {"type": "uniform", "low": 0.5, "high": 0.1}}},
    ),
    (
        "loguniform needs low > 0",
        {"searchSpace": {"learningRate": {"type": "loguniform", "low": 0, "high": 0.1}}},
    ),
    (
        "take low and high",
        {"searchSpace": {"learningRate": {"type": "choice", "low": 0.1, "high": 0.2}}},
    ),
    ("take low and high", {"searchSpace": {"learningRate": {"type": "uniform", "values": [0.1]}}}),
    ("maxConcurrentTrials must not exceed maxTrials", {"maxTrials": 2, "maxConcurrentTrials": 3}),
    (
        "maxConcurrentTrials must not exceed maxTrials",
        {"maxTrials": None, "maxConcurrentTrials": 6},
    ),
    (
        "not tpe",
        {"algorithm": "tpe", "searchSpace": {"learningRate": {"type": "grid", "values": [0.1]}}},
    ),
    (
        "not tpe, cmaes, qmc or gp",
        {"algorithm": "qmc", "searchSpace": {"learningRate": {"type": "grid", "values": [0.1]}}},
    ),
    (
        "cmaes and gp model uniform, loguniform and randint",
        {"algorithm": "cmaes", "searchSpace": {"batchSize": {"type": "choice", "values": [8]}}},
    ),
    (
        "cmaes and gp model uniform, loguniform and randint",
        {"algorithm": "gp", "searchSpace": {"batchSize": {"type": "choice", "values": [8, 16]}}},
    ),
    ("grid or choice", {"algorithm": "grid", "searchSpace": {"learningRate": LR}}),
    ("heads must divide width", {"trainer": {"model": {"width": 100, "heads": 8}}}),
    ("heads must divide width", {"trainer": {"model": {"width": 130}}}),
    ("model.heads must divide width", {"trainer": {"width": 66}}),
    ("trainPath and evalPath", {"trainer": {"dataset": {"trainPath": "t.jsonl"}}}),
    ("unknown built-in dataset", {"trainer": {"dataset": {"name": "mine"}}}),
    (
        "set model.context to at least 65",
        {"trainer": {"dataset": {"name": "dev-reasoning-v2-hard"}, "model": {"context": 64}}},
    ),
    ("at least 36", {"trainer": {"model": {"context": 32}}}),
    (
        "set eval.maxTraceTokens to at least 68",
        {"trainer": {"dataset": {"name": "dev-reasoning-v2-hardest"}, "model": {"context": 96}}},
    ),
    ("set eval.maxTraceTokens to at least 26", {"trainer": {"eval": {"maxTraceTokens": 20}}}),
    ("pool names must be unique", {"cluster": {"pools": [{"name": "a"}, {"name": "a"}]}}),
    ("pool names must be unique", {"cluster": {"pools": [{}, {"name": "workers"}]}}),
    ("tpu pool needs", {"cluster": {"pools": [{"name": "t", "accelerator": "tpu"}]}}),
    ("gpu pool needs gpusPerPod", {"cluster": {"pools": [{"name": "g", "accelerator": "gpu"}]}}),
    ("only valid with accelerator: gpu", {"cluster": {"pools": [{"name": "c", "gpusPerPod": 1}]}}),
]


def spec_schema(kind: str) -> Schema:
    schema: Schema = root_schema(kind)["properties"]["spec"]
    return schema


def test_cel_accepts_a_good_sweep() -> None:
    Sweep.model_validate({"metadata": {"name": "s"}, "spec": GOOD_SWEEP})
    assert cel_violations(GOOD_SWEEP, spec_schema("Sweep")) == []


@pytest.mark.parametrize("algorithm", ["random", "tpe", "cmaes", "qmc", "gp"])
def test_every_sampler_takes_ranged_and_choice_entries(algorithm: str) -> None:
    """A space of ranged and choice entries runs with every sampler (cmaes and gp sample
    the choice entry at random): CEL and the model both accept it."""
    spec = copy.deepcopy(GOOD_SWEEP) | {"algorithm": algorithm}
    assert cel_violations(spec, spec_schema("Sweep")) == []
    Sweep.model_validate({"metadata": {"name": "s"}, "spec": spec})


@pytest.mark.parametrize(("message", "patch"), BAD_SWEEPS, ids=[m for m, _ in BAD_SWEEPS])
def test_cel_and_pydantic_reject_the_same_sweeps(message: str, patch: dict[str, Any]) -> None:
    spec = copy.deepcopy(GOOD_SWEEP)
    spec["algorithm"] = "random"
    spec.update(patch)
    spec = {k: v for k, v in spec.items() if v is not None}  # None: the field left out
    violations = cel_violations(spec, spec_schema("Sweep"))
    assert any(message in v for v in violations), violations
    with pytest.raises(ValidationError):
        Sweep.model_validate({"metadata": {"name": "s"}, "spec": spec})


@pytest.mark.parametrize(
    "trainer",
    [
        {"dataset": {"name": "dev-reasoning-v2-hardest"}, "model": {"context": 96},
         "eval": {"maxTraceTokens": 68}},
        {"eval": {"maxTraceTokens": 26}},
        # Tunix and a user's trainer count tokens their own way: not the built-in bound
        {"backend": "tunix-sft", "model": {"name": "gemma3-tiny"}, "eval": {"maxTraceTokens": 16}},
        {"dataset": {"name": "d", "trainPath": "t.jsonl", "evalPath": "e.jsonl"},
         "eval": {"maxTraceTokens": 16}},
    ],
)  # fmt: skip
def test_cel_and_pydantic_accept_a_trace_cap_that_fits(trainer: dict[str, Any]) -> None:
    spec = copy.deepcopy(GOOD_SWEEP) | {"trainer": trainer}
    assert cel_violations(spec, spec_schema("Sweep")) == []
    Sweep.model_validate({"metadata": {"name": "s"}, "spec": spec})


@pytest.mark.parametrize(
    ("spec", "ok"),
    [
        ({"fromSweep": "s"}, True),
        ({"trainer": {"maxSteps": 1000}}, True),
        ({}, False),
        ({"fromSweep": "s", "trainer": {}}, False),
    ],
)
def test_rehearsal_cel_matches_pydantic(spec: dict[str, Any], ok: bool) -> None:
    violations = cel_violations(spec, spec_schema("Rehearsal"))
    assert (violations == []) is ok, violations
    doc = {"metadata": {"name": "r"}, "spec": spec}
    if ok:
        Rehearsal.model_validate(doc)
    else:
        with pytest.raises(ValidationError):
            Rehearsal.model_validate(doc)


# ----------------------------------------------------------------------------- OpenAPI


def as_json_schema(node: Any) -> Any:
    """OpenAPI v3.0 -> JSON Schema draft 4 (nullable -> allow null) for jsonschema."""
    if isinstance(node, list):
        return [as_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {
        k: as_json_schema(v)
        for k, v in node.items()
        if not k.startswith("x-kubernetes") and k != "nullable"
    }
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if "properties" in node and isinstance(node["properties"], dict):
        out["properties"] = {k: as_json_schema(v) for k, v in node["properties"].items()}
    return out


def openapi_errors(kind: str, doc: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft4Validator(as_json_schema(root_schema(kind)))
    return [
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)
    ]


def test_openapi_schema_accepts_model_output_and_rejects_bad_values() -> None:
    doc = Sweep.model_validate({"metadata": {"name": "s"}, "spec": GOOD_SWEEP}).to_wire()
    doc["status"] = {
        "phase": "Running",
        "trials": [{"id": "t", "params": {"learningRate": 0.01}, "state": "Running"}],
        "trialsProgress": "0/8",
    }
    assert openapi_errors("Sweep", doc) == []
    bad = copy.deepcopy(doc)
    bad["spec"]["algorithm"] = "bayes"
    bad["spec"]["maxTrials"] = 500
    bad["spec"]["searchSpace"]["learningRate"]["low"] = "small"
    errors = openapi_errors("Sweep", bad)
    assert any(e.startswith("spec.algorithm") for e in errors)
    assert any(e.startswith("spec.maxTrials") for e in errors)
    assert any(e.startswith("spec.searchSpace.learningRate.low") for e in errors)
    rehearsal = Rehearsal.model_validate(
        {"metadata": {"name": "r"}, "spec": {"fromSweep": "s", "overrides": {"maxSteps": 9}}}
    ).to_wire()
    assert openapi_errors("Rehearsal", rehearsal) == []
