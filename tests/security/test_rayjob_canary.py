"""Defence in depth (issue 23): the RayJob the operator builds never carries a credential,
even from a spec that skipped validation (``model_copy`` / ``model_construct``).

Every string-valued field of SweepSpec and RehearsalSpec is found by walking the models
(strings, optional strings, string lists and maps, maps of any value, list items), a
canary credential is planted there without validation, and the builder must refuse it:
a :class:`ManifestError` naming the field, the canary nowhere in the message. Were a
RayJob returned instead, the canary must appear nowhere in it, neither in plain text
(the ``tunixrt.io/spec`` annotation, the command line) nor base64-encoded (``--spec-b64``).

The builder refuses rather than masks: a masked storage URI or dataset path would run
something other than what was written and fail later; the refusal fails the object once
(InvalidSpec) with the field and the fix named.
"""

from __future__ import annotations

import base64
import json
import shlex
import types
from pathlib import Path
from typing import Any, Union, get_args, get_origin

import pytest
import yaml
from pydantic import BaseModel

from tunix_rt.api.rehearsal import RehearsalSpec, SourceTrial
from tunix_rt.api.sweep import SweepSpec
from tunix_rt.kuberay import ManifestError
from tunix_rt.kuberay.metadata import Owner
from tunix_rt.kuberay.rayjob import build_rehearsal_rayjob, build_sweep_rayjob

ROOT = Path(__file__).resolve().parents[2]
OWNER = Owner("tunixrt.io/v1alpha1", "Sweep", "s", "uid-1")

# Distinct canaries, one per credential shape; each is the secret part to look for.
AWS_SECRET = "Zq9XcanaryK7MDENG/bPxRfiCYcanary0KEYa1b2"
CANARIES: dict[str, tuple[str, str]] = {
    # shape: (planted value, the secret that must not appear)
    "userinfo with / in the secret": (
        f"s3://AKIAIOSFODNN7EXAMPLE:{AWS_SECRET}@bucket/x",
        AWS_SECRET,
    ),
    "presigned S3 URL": (
        "https://b.s3.amazonaws.com/x.jsonl?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Signature=c4nary5ign4ture0fa5igned0rl",
        "c4nary5ign4ture0fa5igned0rl",
    ),
    "Hugging Face token": ("hf_CanaryTokenValue0123456789abcdefXYZ", "CanaryTokenValue0123"),
    "AWS access key id": ("s3://bucket/AKIACANARY0000000XYZ/x", "AKIACANARY0000000XYZ"),
}


def _unwrap(annotation: Any) -> Any:
    """``X | None`` -> ``X``; anything else unchanged."""
    if get_origin(annotation) in (Union, types.UnionType):
        options = [a for a in get_args(annotation) if a is not type(None)]
        if len(options) == 1:
            return options[0]
    return annotation


def _base_type(annotation: Any) -> Any:
    """``Annotated[str, …]`` -> ``str``."""
    while hasattr(annotation, "__metadata__"):
        annotation = get_args(annotation)[0]
    return annotation


def string_fields(model: type[BaseModel], path: tuple[str, ...] = ()) -> list[tuple[Any, ...]]:
    """``(path, leaf kind)`` of every field that can hold a string: ``str`` (plain), ``list``
    (a list holding strings), ``map`` (a mapping whose values may be strings); nested models
    (and lists of them, at index 0) are walked."""
    out: list[tuple[Any, ...]] = []
    for name, info in model.model_fields.items():
        annotation = _base_type(_unwrap(info.annotation))
        origin = get_origin(annotation)
        where = (*path, name)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            out.extend(string_fields(annotation, where))
        elif annotation is str:
            out.append((where, "str"))
        elif origin is list:
            (item,) = get_args(annotation)
            item = _base_type(_unwrap(item))
            if isinstance(item, type) and issubclass(item, BaseModel):
                out.extend(string_fields(item, (*where, 0)))
            elif item in (str, Any):
                out.append((where, "list"))
        elif origin is dict:
            _, value = get_args(annotation)
            value = _base_type(_unwrap(value))
            if isinstance(value, type) and issubclass(value, BaseModel):
                out.extend(string_fields(value, (*where, "*")))
            elif value in (str, Any) or get_origin(value) is not None:
                out.append((where, "map"))
    return out


def plant(obj: Any, path: tuple[Any, ...], value: Any) -> Any:
    """``obj`` with ``value`` at ``path``, without validation (``model_copy``); ``"*"``
    is the first key of a mapping of models."""
    if not path:
        return value
    head, *rest = path
    if isinstance(obj, BaseModel):
        child = getattr(obj, head)
        if child is None and rest:  # an optional section left out: an unvalidated one
            section = _base_type(_unwrap(type(obj).model_fields[head].annotation))
            if get_origin(section) is list:  # an optional list of models: one item
                (item,) = get_args(section)
                child = [empty(_base_type(_unwrap(item)))]
            else:
                child = empty(section)
        return obj.model_copy(update={head: plant(child, tuple(rest), value)})
    if isinstance(obj, list):
        items = list(obj)
        items[head] = plant(items[head], tuple(rest), value)
        return items
    if isinstance(obj, dict):
        key = next(iter(obj)) if head == "*" else head
        return {**obj, key: plant(obj[key], tuple(rest), value)}
    raise AssertionError(f"cannot plant at {path} in {type(obj).__name__}")


def empty(model: type[BaseModel]) -> BaseModel:
    """An unvalidated instance: defaults, and ``"x"`` for each required field."""
    required = {n: "x" for n, info in model.model_fields.items() if info.is_required()}
    return model.model_construct(**required)


def wire_path(path: tuple[Any, ...], spec: Any) -> str:
    """The field's wire path as the builder names it (``spec.trainer.dataset.trainPath``),
    read from the planted spec."""
    out, current = "spec", spec
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
            current = current[part]
        elif part == "*":
            key = next(iter(current))
            out += f".{key}"
            current = current[key]
        else:
            info = type(current).model_fields[part]
            out += f".{info.alias or part}"
            current = getattr(current, part)
    return out


def leaf_value(kind: str, canary: str) -> Any:
    return {"str": canary, "list": [canary], "map": {"k": canary}}[kind]


def base_specs() -> dict[str, Any]:
    """A valid spec of each kind, with a python trainer (userParams, entrypoint) and an
    env, pools and a queue, so that every optional string has a parent to sit in."""
    sweep_doc = yaml.safe_load((ROOT / "examples" / "sweep-python.yaml").read_text())
    sweep_doc["spec"]["cluster"] = {"env": {"A": "1"}, "pools": [{"nodeSelector": {"x": "y"}}]}
    rehearsal_doc = yaml.safe_load((ROOT / "examples" / "rehearsal-smoke.yaml").read_text())
    spec = rehearsal_doc["spec"]
    spec.pop("fromSweep", None)
    spec["trainer"] = sweep_doc["spec"]["trainer"]
    spec["overrides"] = {"maxSteps": 10}
    return {
        "Sweep": SweepSpec.model_validate(sweep_doc["spec"]),
        "Rehearsal": RehearsalSpec.model_validate(spec),
    }


BASES = base_specs()
FIELDS = [
    (kind, path, leaf)
    for kind, model in (("Sweep", SweepSpec), ("Rehearsal", RehearsalSpec))
    for path, leaf in string_fields(model)
]


def build(kind: str, spec: Any) -> dict[str, Any]:
    if kind == "Sweep":
        return build_sweep_rayjob(name="s", namespace="ns", spec=spec, owner=OWNER)
    return build_rehearsal_rayjob(name="r", namespace="ns", spec=spec, owner=OWNER)


def encodings(secret: str) -> list[str]:
    """The secret as it would appear inside any base64 text (three alignments, the edge
    characters that depend on neighbours dropped)."""
    out = []
    for pad in range(3):
        encoded = base64.b64encode(b"x" * pad + secret.encode()).decode()
        out.append(encoded[(4 * pad + 2) // 3 + 1 : -3])
    return out


def assert_no_canary(manifest: dict[str, Any], secret: str) -> None:
    text = json.dumps(manifest)
    assert secret not in text
    assert not any(e in text for e in encodings(secret))
    command = shlex.split(manifest["spec"]["entrypoint"])
    decoded = base64.b64decode(command[command.index("--spec-b64") + 1]).decode()
    assert secret not in decoded


def test_the_walk_finds_every_string_field() -> None:
    """The walk reaches the fields the issue names (and more): if a model changes shape,
    this says so rather than silently planting fewer canaries."""
    names = {(kind, ".".join(map(str, path))) for kind, path, _ in FIELDS}
    for kind in ("Sweep", "Rehearsal"):
        for wanted in (
            "storage",
            "trainer.model.checkpoint",
            "trainer.model.tokenizer",
            "trainer.dataset.train_path",
            "trainer.dataset.eval_path",
            "trainer.entrypoint",
            "trainer.user_params",
            "cluster.env",
            "cluster.image",
            "cluster.service_account",
            "cluster.pools.0.image",
            "cluster.pools.0.node_selector",
            "queue_name",
        ):
            assert (kind, wanted) in names, (kind, wanted)
    assert ("Rehearsal", "overrides") in names
    assert ("Sweep", "search_space.*.values") in names
    assert len(FIELDS) >= 40


@pytest.mark.reliability(
    "security",
    "canary credential planted unvalidated in every string field of both specs",
    result="the RayJob builder refuses it (field named); never in the RayJob, plain or base64",
)
@pytest.mark.parametrize("shape", sorted(CANARIES))
@pytest.mark.parametrize(
    ("kind", "path", "leaf"),
    [pytest.param(*f, id=f"{f[0]}:{'.'.join(map(str, f[1]))}") for f in FIELDS],
)
def test_the_rayjob_never_carries_a_planted_credential(
    kind: str, path: tuple[Any, ...], leaf: str, shape: str
) -> None:
    value, secret = CANARIES[shape]
    base = BASES[kind]
    spec = plant(base, path, leaf_value(leaf, value))
    try:
        manifest = build(kind, spec)
    except ManifestError as exc:
        assert wire_path(path, spec) in str(exc)
        assert "storage.credentialsSecret" in str(exc)
        assert secret not in str(exc)
        return
    assert_no_canary(manifest, secret)
    pytest.fail(f"{kind} {path}: built a RayJob from a spec holding {shape}")


def test_rehearsal_params_from_the_sweep_are_checked_too() -> None:
    """The source annotation (params of the Sweep's best trial) is part of the RayJob."""
    value, secret = CANARIES["Hugging Face token"]
    with pytest.raises(ManifestError) as info:
        build_rehearsal_rayjob(
            name="r",
            namespace="ns",
            spec=BASES["Rehearsal"],
            owner=OWNER,
            source=SourceTrial("s", "t_0"),
            params={"optimizer": value},
        )
    assert "params.optimizer" in str(info.value) and secret not in str(info.value)


def test_a_clean_spec_still_builds_and_its_annotation_round_trips() -> None:
    for kind, spec in BASES.items():
        manifest = build(kind, spec)
        annotation = json.loads(manifest["metadata"]["annotations"]["tunixrt.io/spec"])
        assert annotation == spec.to_wire()


def test_the_base64_probe_finds_an_encoded_secret() -> None:
    """The probe used above would see the secret in base64 at any alignment."""
    secret = CANARIES["Hugging Face token"][1]
    for pad in range(3):
        text = base64.b64encode(b"{" * pad + b'"a":"' + secret.encode() + b'"}').decode()
        assert any(e in text for e in encodings(secret))
