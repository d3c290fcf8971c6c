"""CRDs generated from the pydantic models: the models are the single source of truth.

``manifests()`` returns the Sweep and Rehearsal CustomResourceDefinitions; ``crds/`` holds
them as YAML (``make crds`` rewrites them; a test fails when they are stale).

The pydantic JSON schema is turned into a *structural* OpenAPI v3 schema, as the
Kubernetes API server requires: ``$ref`` inlined, ``anyOf [X, null]`` becomes
``nullable: true``, ``const`` becomes a one-value ``enum``, numeric ``exclusiveMinimum``
becomes the OpenAPI 3.0 boolean form, free-form maps (params, values) get
``x-kubernetes-preserve-unknown-fields``. Field descriptions are kept (``kubectl explain``),
spec defaults are kept, and each model's CEL rules (``x-kubernetes-validations``, written
next to the pydantic check they mirror) are copied. Anything the converter does not know
is an error rather than a silently wrong CRD.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from tunix_rt.api.base import EXACTLY_ONE_OF
from tunix_rt.api.common import CATEGORY, GROUP, RUNTIME_DEFAULT, VERSION
from tunix_rt.api.rehearsal import RehearsalSpec, RehearsalStatus
from tunix_rt.api.sweep import SweepSpec
from tunix_rt.api.sweep_status import SweepStatus
from tunix_rt.reading import kube_yaml

Schema = dict[str, Any]

HEADER = (
    "# Generated from the pydantic models in tunix_rt.api by `make crds`"
    " (tunix-rt crds --write crds).\n# Do not edit by hand: a test fails when this file is stale.\n"
)

_DROP = {"title", "examples", "discriminator"}
_PASS = {
    "type",
    "description",
    "format",
    "enum",
    "pattern",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "uniqueItems",
    "multipleOf",
    "x-kubernetes-validations",
}


class SchemaError(ValueError):
    """The pydantic schema holds a construct that has no structural-schema equivalent."""


class _Converter:
    def __init__(self, defs: dict[str, Schema], keep_defaults: bool) -> None:
        self.defs = defs
        self.keep_defaults = keep_defaults

    def convert(self, node: Schema, path: str) -> Schema:
        node = dict(node)
        for key in _DROP:
            node.pop(key, None)
        if "$ref" in node:
            return self._merge(self._ref(node.pop("$ref"), path), node, path)
        if "allOf" in node:
            parts = node.pop("allOf")
            if len(parts) != 1:
                raise SchemaError(f"{path}: allOf with {len(parts)} parts is not supported")
            return self._merge(self.convert(parts[0], path), node, path)
        if "anyOf" in node or "oneOf" in node:
            options = node.pop("anyOf", None) or node.pop("oneOf")
            real = [o for o in options if o.get("type") != "null"]
            if len(real) != 1:
                raise SchemaError(f"{path}: unions other than `X | None` are not supported")
            out = self._merge(self.convert(real[0], path), node, path)
            if len(real) < len(options):
                out["nullable"] = True
            return out
        return self._plain(node, path)

    def _ref(self, ref: str, path: str) -> Schema:
        name = ref.rsplit("/", 1)[-1]
        if name not in self.defs:
            raise SchemaError(f"{path}: unknown $ref {ref}")
        return self.convert(self.defs[name], path)

    def _merge(self, base: Schema, siblings: Schema, path: str) -> Schema:
        """A resolved schema plus the keys written next to it (description, default)."""
        out = dict(base)
        extra = self._plain(siblings, path, typed=False)
        if "properties" in extra:  # a free-form map given declared keys: only those
            out.pop("x-kubernetes-preserve-unknown-fields", None)
        out.update(extra)
        return out

    def _plain(self, node: Schema, path: str, typed: bool = True) -> Schema:
        out: Schema = {}
        for key, value in node.items():
            if key in _PASS:
                out[key] = copy.deepcopy(value)
            elif key == "const":
                out["enum"] = [value]
            elif key in ("exclusiveMinimum", "exclusiveMaximum"):
                bound = "minimum" if key == "exclusiveMinimum" else "maximum"
                if isinstance(value, bool):
                    out[key] = value
                else:
                    out[bound] = value
                    out[key] = True
            elif key == RUNTIME_DEFAULT:
                continue
            elif key == EXACTLY_ONE_OF:
                out["oneOf"] = [{"required": [name]} for name in value]
            elif key == "default":
                if self.keep_defaults and value is not None and not node.get(RUNTIME_DEFAULT):
                    out["default"] = copy.deepcopy(value)
            elif key in ("properties", "required", "additionalProperties", "items"):
                continue  # handled below
            elif key in _DROP:
                continue
            else:
                raise SchemaError(f"{path}: unsupported schema keyword {key!r}")

        if "const" in node and "type" not in out:
            out["type"] = _json_type(node["const"], path)
        if "enum" in out and "type" not in out:
            types = {_json_type(v, path) for v in out["enum"]}
            if len(types) != 1:
                raise SchemaError(f"{path}: enum mixes types {sorted(types)}")
            out["type"] = types.pop()

        kind = out.get("type")
        if kind == "object" or "properties" in node:
            out["type"] = "object"
            props = node.get("properties")
            extra = node.get("additionalProperties")
            if props:
                out["properties"] = {
                    name: self.convert(sub, f"{path}.{name}") for name, sub in props.items()
                }
                if node.get("required"):
                    out["required"] = list(node["required"])
            elif isinstance(extra, dict) and extra:
                out["additionalProperties"] = self.convert(extra, f"{path}.*")
            else:
                # dict[str, Any]: a free-form map (trial params, overrides).
                out["x-kubernetes-preserve-unknown-fields"] = True
        elif kind == "array":
            items = node.get("items")
            if not items:
                out["items"] = {"x-kubernetes-preserve-unknown-fields": True}
            else:
                out["items"] = self.convert(items, f"{path}[]")
        elif typed and kind is None:
            if node.keys() - {"description", "default"}:
                raise SchemaError(f"{path}: schema without a type: {sorted(node)}")
            # typing.Any: any JSON value.
            out["x-kubernetes-preserve-unknown-fields"] = True
        return out


def _json_type(value: Any, path: str) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    raise SchemaError(f"{path}: enum/const value {value!r} has no scalar type")


_KEY_ORDER = [
    "type",
    "description",
    "nullable",
    "default",
    "enum",
    "format",
    "pattern",
    "minLength",
    "maxLength",
    "minimum",
    "exclusiveMinimum",
    "maximum",
    "exclusiveMaximum",
    "multipleOf",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-validations",
    "oneOf",
    "required",
    "properties",
    "additionalProperties",
    "items",
]


def _ordered(node: Schema) -> Schema:
    """Keys in a fixed, readable order (type and description first, children last)."""
    out: Schema = {}
    for key in sorted(node, key=lambda k: (_KEY_ORDER.index(k) if k in _KEY_ORDER else 99, k)):
        value = node[key]
        if key == "properties":
            value = {name: _ordered(sub) for name, sub in value.items()}
        elif key in ("additionalProperties", "items"):
            value = _ordered(value)
        elif key == "x-kubernetes-validations":
            value = [
                {k: rule[k] for k in ("rule", "message", "fieldPath") if k in rule}
                for rule in value
            ]
        out[key] = value
    return out


def openapi_schema(model: type[BaseModel], *, keep_defaults: bool, path: str = "") -> Schema:
    """The structural OpenAPI v3 schema of one model (wire names, refs inlined)."""
    schema = model.model_json_schema(by_alias=True, mode="validation")
    defs = schema.pop("$defs", {})
    return _ordered(_Converter(defs, keep_defaults).convert(schema, path or model.__name__))


_STATUS_DOC = "Written by the tunix-rt operator through the status subresource; never edit it."


def _root_schema(kind: str, spec: type[BaseModel], status: type[BaseModel], doc: str) -> Schema:
    spec_schema = openapi_schema(spec, keep_defaults=True, path="spec")
    status_schema = openapi_schema(status, keep_defaults=False, path="status")
    status_schema["description"] = f"{status_schema.get('description', '')} {_STATUS_DOC}".strip()
    return {
        "type": "object",
        "description": doc,
        "required": ["spec"],
        "properties": {
            "apiVersion": {
                "type": "string",
                "description": f"{GROUP}/{VERSION}",
            },
            "kind": {"type": "string", "description": kind},
            "metadata": {"type": "object"},
            "spec": spec_schema,
            "status": status_schema,
        },
    }


def _column(name: str, kind: str, json_path: str, description: str, priority: int = 0) -> Schema:
    column: Schema = {
        "name": name,
        "type": kind,
        "jsonPath": json_path,
        "description": description,
    }
    if priority:
        column["priority"] = priority
    return column


_PHASE = _column("Phase", "string", ".status.phase", "Pending, Running, Succeeded or Failed.")
_AGE = _column("Age", "date", ".metadata.creationTimestamp", "Time since creation.")


def _crd(
    kind: str,
    plural: str,
    short_names: list[str],
    models: tuple[type[BaseModel], type[BaseModel]],
    doc: str,
    columns: list[Schema],
) -> dict[str, Any]:
    """The CRD of one kind: its (spec, status) models' schema; Phase and Age columns
    around the kind's own."""
    spec, status = models
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{plural}.{GROUP}",
            "labels": {"app.kubernetes.io/part-of": "tunix-rt"},
        },
        "spec": {
            "group": GROUP,
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": short_names,
                "categories": [CATEGORY],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": copy.deepcopy([_PHASE, *columns, _AGE]),
                    "schema": {"openAPIV3Schema": _root_schema(kind, spec, status, doc)},
                }
            ],
        },
    }


_SWEEP_DOC = (
    "A hyperparameter sweep of trace-first post-training runs (Ray Tune on KubeRay): "
    "trials over a search space, each scored by primary_score."
)
_REHEARSAL_DOC = (
    "One full training + evaluation run of a fixed config (inline, or a Sweep's best "
    "trial) that leaves an evidence bundle in the store."
)
_SWEEP_COLUMNS = [
    _column("Trials", "string", ".status.trialsProgress", "Trials finished / planned."),
    _column("Best score", "number", ".status.primaryScore", "Best primary_score so far."),
    _column(
        "Acc-hours",
        "number",
        ".status.acceleratorHoursUsed",
        "Accelerator-hours used (budget.acceleratorHours caps it).",
    ),
    _column("Attempts", "integer", ".status.attempts", "RayJobs started.", priority=1),
    _column("Algorithm", "string", ".spec.algorithm", "Search algorithm.", priority=1),
    _column("Best trial", "string", ".status.bestTrial.id", "Best trial id.", priority=1),
]
_REHEARSAL_COLUMNS = [
    _column(
        "Source",
        "string",
        ".status.sourceSweep",
        "Sweep whose best trial is rehearsed (fromSweep, or a promoted manifest's).",
    ),
    _column("Score", "number", ".status.primaryScore", "primary_score of the run."),
    _column("Evidence", "string", ".status.evidenceUri", "Evidence folder.", priority=1),
]


def sweep_crd() -> dict[str, Any]:
    models = (SweepSpec, SweepStatus)
    return _crd("Sweep", "sweeps", ["sw"], models, _SWEEP_DOC, _SWEEP_COLUMNS)


def rehearsal_crd() -> dict[str, Any]:
    models = (RehearsalSpec, RehearsalStatus)
    return _crd("Rehearsal", "rehearsals", ["rh"], models, _REHEARSAL_DOC, _REHEARSAL_COLUMNS)


def manifests() -> list[dict[str, Any]]:
    """Both CRDs (Sweep, Rehearsal) as Kubernetes objects."""
    return [sweep_crd(), rehearsal_crd()]


def file_name(crd: dict[str, Any]) -> str:
    """``tunixrt.io_sweeps.yaml`` (the controller-gen naming convention)."""
    spec = crd["spec"]
    return f"{spec['group']}_{spec['names']['plural']}.yaml"


def render(crd: dict[str, Any]) -> str:
    """One CRD as the YAML text in ``crds/`` (deterministic)."""
    body = kube_yaml.dump(crd, sort_keys=False, width=100, allow_unicode=True)
    return HEADER + body


def render_all() -> str:
    """Both CRDs as one multi-document YAML stream (``tunix-rt crds``)."""
    return "---\n".join(render(crd) for crd in manifests())


def files() -> dict[str, str]:
    """File name -> YAML text, as ``crds/`` should hold them."""
    return {file_name(crd): render(crd) for crd in manifests()}


def write(directory: str | Path) -> list[Path]:
    """(Re)write the CRD files into ``directory``; returns the paths written."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in files().items():
        path = out / name
        path.write_text(text)
        written.append(path)
    return written
