"""Admission refuses what cannot run, before anything runs (issue 14, items 1 and 2).

One case per class of input that used to be accepted and fail later (or never be
scheduled): each asserts the wire field path and a piece of the message, through
``check_document`` (what ``tunix-rt validate`` and the operator use). Where the API server
can refuse the same input, a CEL case checks that the CRD's rules agree.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError
from test_api_crd import cel_violations, spec_schema

from support.manifests import rehearsal_manifest, sweep_manifest
from tunix_rt.api.errors import describe
from tunix_rt.api.manifests import check_document
from tunix_rt.api.names import label_value
from tunix_rt.api.placement import check_placement
from tunix_rt.api.rehearsal import RehearsalSpec
from tunix_rt.api.sweep import SweepSpec
from tunix_rt.api.trainer import TrainerConfig, check_overrides, trainer_field_names
from tunix_rt.api.trial_metrics import METRIC_BACKENDS, REPORTED_METRICS
from tunix_rt.kuberay import Owner, build_sweep_rayjob
from tunix_rt.kuberay.client import is_owned_by
from tunix_rt.kuberay.metadata import SWEEP_LABEL

LR = {"type": "loguniform", "low": 1e-4, "high": 3e-2}
GPU_POOL = {"name": "gpu", "accelerator": "gpu", "gpusPerPod": 1, "cpu": "8", "memory": "32Gi"}
V6E_4X4 = {
    "name": "v6e",
    "accelerator": "tpu",
    "tpuAccelerator": "tpu-v6e-slice",
    "tpuTopology": "4x4",
    "cpu": "40",
    "memory": "160Gi",
}


def sweep_spec(**spec: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"searchSpace": {"learningRate": LR}}
    out.update(spec)
    return out


def sweep_doc(name: str = "s", **spec: Any) -> dict[str, Any]:
    return sweep_manifest(name, sweep_spec(**spec))


def rehearsal_doc(**spec: Any) -> dict[str, Any]:
    return rehearsal_manifest("r", spec)


def errors(doc: dict[str, Any]) -> list[tuple[str, str]]:
    return check_document(doc).errors


def assert_refused(doc: dict[str, Any], field: str, *fragments: str) -> None:
    found = errors(doc)
    assert any(p == field and all(f in m for f in fragments) for p, m in found), found
    for _, message in found:  # never an internal class name
        assert "SweepSpec" not in message and "SearchParam" not in message


# ----------------------------------------------------------------------------- metrics

SWEEP_CASES: list[tuple[str, dict[str, Any], str, tuple[str, ...]]] = [
    (
        "objective metric nobody reports",
        {"objective": {"metric": "accuracy"}},
        "spec.objective.metric",
        ("does not report 'accuracy'", "primary_score", "loss"),
    ),
    (
        "scheduler metric nobody reports",
        {"scheduler": {"type": "asha", "metric": "acc"}},
        "spec.scheduler.metric",
        ("does not report 'acc'", "use one of loss"),
    ),
    (
        "scheduler metric reported only at the end",
        {"scheduler": {"type": "median", "metric": "train_seconds"}},
        "spec.scheduler.metric",
        ("only when a trial ends",),
    ),
    (
        "asha on primary_score without intermediate evals",
        {"scheduler": {"type": "asha", "metric": "primary_score", "mode": "max"}},
        "spec.scheduler.metric",
        ("evalEvery is 0", "set trainer.eval.evalEvery", "scheduler.metric loss"),
    ),
    (
        "median on primary_score with evals only at the last step",
        {
            "scheduler": {"type": "median", "metric": "primary_score", "mode": "max"},
            "trainer": {"eval": {"evalEvery": 300}},
            "budget": {"smokeSteps": 300},
        },
        "spec.scheduler.metric",
        ("not below budget.smokeSteps",),
    ),
    # ------------------------------------------------------------------ search space
    (
        "uniform on an integer parameter",
        {"searchSpace": {"warmupSteps": {"type": "uniform", "low": 1, "high": 50}}},
        "spec.searchSpace.warmupSteps.type",
        ("takes integers", "randint", "choice"),
    ),
    (
        "loguniform on an integer parameter",
        {"searchSpace": {"batch_size": {"type": "loguniform", "low": 8, "high": 128}}},
        "spec.searchSpace.batchSize.type",
        ("takes integers",),
    ),
    (
        "infinite bound",
        {"searchSpace": {"learningRate": {"type": "uniform", "low": 1e-3, "high": float("inf")}}},
        "spec.searchSpace.learningRate.high",
        ("finite",),
    ),
    (
        "NaN bound",
        {"searchSpace": {"learningRate": {"type": "uniform", "low": float("nan"), "high": 0.1}}},
        "spec.searchSpace.learningRate.low",
        ("finite",),
    ),
    (
        "searching maxSteps",
        {"searchSpace": {"maxSteps": {"type": "choice", "values": [100, 200]}}},
        "spec.searchSpace.maxSteps",
        ("budget.smokeSteps", "overrides trainer.maxSteps"),
    ),
    (
        "one parameter under both spellings",
        {"searchSpace": {"learningRate": LR, "learning_rate": LR}},
        "spec.searchSpace.learning_rate",
        ("learningRate and learning_rate name the same parameter", "keep one"),
    ),
    # ------------------------------------------------------------------ strict types
    (
        "maxTrials as a string",
        {"maxTrials": "5"},
        "spec.maxTrials",
        ("expected an integer", "the string '5'", "without quotes"),
    ),
    (
        "learningRate as a string",
        {"trainer": {"learningRate": "0.01"}},
        "spec.trainer.learningRate",
        ("expected a number",),
    ),
    (
        "a bound as a string",
        {"searchSpace": {"learningRate": {"type": "uniform", "low": "0.001", "high": 0.1}}},
        "spec.searchSpace.learningRate.low",
        ("expected a number",),
    ),
    (
        "a choice value as a string",
        {"searchSpace": {"learningRate": {"type": "choice", "values": ["0.01"]}}},
        "spec.searchSpace.learningRate",
        ("expected a number",),
    ),
    ("a boolean as a number", {"seed": True}, "spec.seed", ("expected an integer, got true",)),
    ("s3 without a bucket", {"storage": "s3:///prefix"}, "spec.storage", ("names no bucket",)),
    ("gs without a bucket", {"storage": "gs:///x"}, "spec.storage", ("gs://BUCKET/PREFIX",)),
    # ------------------------------------------------------------------ clearer messages
    (
        "memory that is not a quantity",
        {"resources": {"memory": "lots"}},
        "spec.resources.memory",
        ("a quantity such as 4Gi",),
    ),
    (
        "null searchSpace",
        {"searchSpace": None},
        "spec.searchSpace",
        ("expected a mapping", "got null"),
    ),
    (
        "mistyped search parameter",
        {"searchSpace": {"learningRate": "x"}},
        "spec.searchSpace.learningRate",
        ("expected a mapping of fields", "the string 'x'"),
    ),
    (
        "pools as a string",
        {"cluster": {"pools": "x"}},
        "spec.cluster.pools",
        ("expected a list",),
    ),
    # ------------------------------------------------------------------ pools
    (
        "pool cpu that is not a quantity",
        {"cluster": {"pools": [{"name": "w", "cpu": "lots"}]}},
        "spec.cluster.pools[0].cpu",
        ("not a quantity", "500m"),
    ),
    (
        "pool memory that is not a quantity",
        {"cluster": {"pools": [{"name": "w", "memory": "8 GB"}]}},
        "spec.cluster.pools[0].memory",
        ("a quantity such as 4Gi",),
    ),
    (
        "head memory that is not a quantity",
        {"cluster": {"headMemory": "lots"}},
        "spec.cluster.headMemory",
        ("a quantity such as 4Gi",),
    ),
    (
        "minReplicas above replicas",
        {"cluster": {"pools": [{"name": "w", "replicas": 1, "minReplicas": 3}]}},
        "spec.cluster.pools[0].minReplicas",
        ("minReplicas (3) exceeds replicas (1)",),
    ),
    (
        "maxReplicas below replicas",
        {"cluster": {"pools": [{"name": "w", "replicas": 3, "maxReplicas": 2}]}},
        "spec.cluster.pools[0].maxReplicas",
        ("maxReplicas (2) is below replicas (3)",),
    ),
    (
        "TPU topology the accelerator does not offer",
        {"cluster": {"pools": [{**V6E_4X4, "tpuTopology": "3x3"}]}},
        "spec.cluster.pools[0].tpuTopology",
        ("not offered for tpu-v6e-slice", "2x4"),
    ),
    (
        "3D topology with a chip count no v5p slice has",
        {
            "cluster": {
                "pools": [{**V6E_4X4, "tpuAccelerator": "tpu-v5p-slice", "tpuTopology": "1x1x3"}]
            }
        },
        "spec.cluster.pools[0].tpuTopology",
        ("multiple of 4",),
    ),
    (
        "unknown TPU accelerator",
        {"cluster": {"pools": [{**V6E_4X4, "tpuAccelerator": "tpu-v9"}]}},
        "spec.cluster.pools[0].tpuAccelerator",
        ("unknown TPU accelerator 'tpu-v9'", "tpu-v6e-slice"),
    ),
    (
        "TPU fields on a CPU pool",
        {"cluster": {"pools": [{"name": "w", "tpuAccelerator": "tpu-v6e-slice"}]}},
        "spec.cluster.pools[0].tpuAccelerator",
        ("only valid with accelerator: tpu",),
    ),
    # ------------------------------------------------------------------ placement
    (
        "more GPUs than a pod has",
        {"resources": {"gpu": 2}, "cluster": {"pools": [GPU_POOL]}},
        "spec.resources.gpu",
        (
            "a trial asks 2 GPUs but the largest GPU pod offers 1 (pool 'gpu', gpusPerPod 1); "
            "lower resources.gpu or raise gpusPerPod",
        ),
    ),
    (
        "a GPU with no GPU pool",
        {"resources": {"gpu": 1}, "cluster": {"pools": [{"name": "cpu", "cpu": "4"}]}},
        "spec.resources.gpu",
        ("asks 1 GPU but no pool has GPUs", "accelerator: gpu"),
    ),
    (
        "more CPUs than a pod has",
        {"resources": {"cpu": 80}, "cluster": {"pools": [{"name": "cpu", "cpu": "2"}]}},
        "spec.resources.cpu",
        ("asks 80 CPUs but the largest pod offers 2 (pool 'cpu', cpu 2)",),
    ),
    (
        "more memory than a pod has",
        {"resources": {"memory": "64Gi"}, "cluster": {"pools": [{"name": "cpu"}, GPU_POOL]}},
        "spec.resources.memory",
        ("asks memory 64Gi but the largest pod offers 32Gi (pool 'gpu', memory 32Gi)",),
    ),
    (
        "more TPU chips than a host of the slice has",
        {"resources": {"tpu": 8}, "cluster": {"pools": [V6E_4X4]}},
        "spec.resources.tpu",
        ("asks 8 TPU chips but the largest TPU host offers 4", "4x4: 4 hosts of 4 chips"),
    ),
    (
        "a TPU chip count Ray does not hand a trial",
        {"resources": {"tpu": 3}, "cluster": {"pools": [V6E_4X4]}},
        "spec.resources.tpu",
        ("tpu is 3", "1, 2, 4 or 8"),
    ),
    (
        "CPUs the GPU pods lack (a bigger CPU pool does not help a GPU trial)",
        {
            "resources": {"cpu": 4, "gpu": 1},
            "cluster": {"pools": [{"name": "big", "cpu": "8"}, {**GPU_POOL, "cpu": "2"}]},
        },
        "spec.resources.cpu",
        ("the largest GPU pod offers 2 (pool 'gpu', cpu 2)",),
    ),
    (
        "every resource fits some pod, but no pod fits them all",
        {
            "resources": {"cpu": 6, "memory": "30Gi"},
            "cluster": {
                "pools": [
                    {"name": "wide", "cpu": "8", "memory": "8Gi"},
                    {"name": "deep", "cpu": "2", "memory": "64Gi"},
                ]
            },
        },
        "spec.resources",
        ("no single pod holds", "'wide'", "'deep'"),
    ),
]


@pytest.mark.parametrize(
    ("case", "spec", "field", "fragments"), SWEEP_CASES, ids=[c[0] for c in SWEEP_CASES]
)
def test_sweep_is_refused_naming_the_field(
    case: str, spec: dict[str, Any], field: str, fragments: tuple[str, ...]
) -> None:
    assert_refused(sweep_doc(**spec), field, *fragments)


def test_null_or_mistyped_spec_names_the_shape() -> None:
    assert_refused({**sweep_doc(), "spec": "x"}, "spec", "expected a mapping", "the string 'x'")
    assert_refused({**sweep_doc(), "spec": None}, "spec", "expected a mapping", "got null")
    assert_refused({**rehearsal_doc(), "spec": []}, "spec", "expected a mapping", "a list")


def test_bad_name_says_dns_1123() -> None:
    assert_refused(sweep_doc(name="My_Sweep"), "metadata.name", "a lowercase DNS-1123 name")
    assert_refused(sweep_doc(name="a" * 254), "metadata.name", "at most 253 characters")


def test_good_inputs_stay_accepted() -> None:
    good = [
        sweep_doc(),
        sweep_doc(maxTrials=5, trainer={"learningRate": 1}),  # a JSON int for a number
        sweep_doc(searchSpace={"warmupSteps": {"type": "randint", "low": 1, "high": 50}}),
        sweep_doc(searchSpace={"batchSize": {"type": "choice", "values": [32, 64]}}),
        sweep_doc(
            scheduler={"type": "asha", "metric": "primary_score", "mode": "max"},
            trainer={"eval": {"evalEvery": 50}},
        ),
        sweep_doc(objective={"metric": "loss", "mode": "min"}),
        sweep_doc(resources={"gpu": 1, "cpu": 4, "memory": "16Gi"}, cluster={"pools": [GPU_POOL]}),
        sweep_doc(resources={"tpu": 4}, cluster={"pools": [V6E_4X4]}),
        sweep_doc(
            cluster={"pools": [{**V6E_4X4, "tpuAccelerator": "v5p", "tpuTopology": "2x2x2"}]}
        ),
        sweep_doc(
            resources={"cpu": 0.5, "memory": "1Gi"},
            cluster={"pools": [{"name": "w", "cpu": "500m", "memory": "1.5Gi"}]},
        ),
        sweep_doc(storage="s3://bucket"),
        sweep_doc(name="a" * 200),
        sweep_doc(resources={"cpu": 8}),  # no pools declared: checked where pools are known
    ]
    for doc in good:
        assert errors(doc) == [], doc


# ----------------------------------------------------------------------------- rehearsal


@pytest.mark.parametrize(
    ("spec", "field", "fragment"),
    [
        (
            {"trainer": {}, "overrides": {"maxStep": 3}},
            "spec.overrides.maxStep",
            "unknown trainer field",
        ),
        ({"trainer": {}, "overrides": {"maxSteps": 0}}, "spec.overrides.maxSteps", "greater than"),
        ({"trainer": {}, "overrides": {"width": 100}}, "spec.overrides.width", "must divide"),
        (
            {"fromSweep": "s", "overrides": {"maxStep": 3}},
            "spec.overrides.maxStep",
            "unknown trainer field",
        ),
        (
            {"fromSweep": "s", "overrides": {"learningRate": "x"}},
            "spec.overrides.learningRate",
            "expected a number",
        ),
        (
            {"fromSweep": "s", "overrides": {"eval": {"evalEvery": -1}}},
            "spec.overrides.eval.evalEvery",
            "greater than",
        ),
        (
            {"fromSweep": "s", "overrides": {"model": 3}},
            "spec.overrides.model",
            "expected a mapping",
        ),
        (
            {"fromSweep": "s", "resources": {"gpu": 1}, "cluster": {"pools": [{"name": "c"}]}},
            "spec.resources.gpu",
            "no pool has GPUs",
        ),
    ],
)
def test_rehearsal_is_refused_naming_the_field(
    spec: dict[str, Any], field: str, fragment: str
) -> None:
    assert_refused(rehearsal_doc(**spec), field, fragment)


def test_from_sweep_overrides_that_depend_on_the_sweep_are_left_to_it() -> None:
    # width 100 with the Sweep's heads unknown: fine now, checked when the Sweep is resolved.
    assert errors(rehearsal_doc(fromSweep="s", overrides={"width": 100, "maxSteps": 2000})) == []
    assert check_overrides({"width": 100}, TrainerConfig()) != []


# ----------------------------------------------------------------------------- placement


def test_check_placement_with_operator_default_pools() -> None:
    """Pools left out of the spec: the model cannot know them; the operator checks after
    filling in its defaults (reason Unschedulable)."""
    spec = SweepSpec.model_validate(sweep_spec(resources={"gpu": 1}))
    assert check_placement(spec)[0][0] == "spec.resources.gpu"
    with_pools = SweepSpec.model_validate(
        sweep_spec(resources={"gpu": 1}, cluster={"pools": [GPU_POOL]})
    )
    assert check_placement(with_pools) == []
    rehearsal = RehearsalSpec.model_validate({"fromSweep": "s", "resources": {"tpu": 8}})
    problems = check_placement(rehearsal)
    assert problems[0][0] == "spec.resources.tpu" and "the run asks 8 TPU chips" in problems[0][1]


def test_placement_can_be_left_to_the_caller() -> None:
    from tunix_rt.api.placement import SKIP_PLACEMENT

    wire = sweep_spec(resources={"gpu": 2}, cluster={"pools": [GPU_POOL]})
    spec = SweepSpec.model_validate(wire, context=SKIP_PLACEMENT)
    assert "2 GPUs" in check_placement(spec)[0][1]


# ----------------------------------------------------------------------------- long names


def test_long_names_get_a_hashed_label() -> None:
    long = "a" * 100
    assert label_value("short") == "short"
    value = label_value(long)
    assert len(value) <= 63 and value == label_value(long) and value != label_value("a" * 101)
    spec = SweepSpec.model_validate(sweep_spec())
    owner = Owner("tunixrt.io/v1alpha1", "Sweep", long, "uid-1")
    rayjob = build_sweep_rayjob(name=long, namespace="ml", spec=spec, owner=owner)
    labels = [rayjob["metadata"]["labels"]]
    cluster = rayjob["spec"]["rayClusterSpec"]
    labels.append(cluster["headGroupSpec"]["template"]["metadata"]["labels"])
    labels += [g["template"]["metadata"]["labels"] for g in cluster["workerGroupSpecs"]]
    for found in labels:
        assert all(len(v) <= 63 for v in found.values())
        assert found[SWEEP_LABEL] == value
    orphan = copy.deepcopy(rayjob)
    orphan["metadata"].pop("ownerReferences")
    assert is_owned_by(orphan, None, {SWEEP_LABEL: long})


# ----------------------------------------------------------------------------- CEL


CEL_CASES: list[tuple[str, dict[str, Any]]] = [
    ("does not report this metric", {"objective": {"metric": "accuracy"}}),
    ("reported while trials train", {"scheduler": {"type": "asha", "metric": "acc"}}),
    ("reported while trials train", {"scheduler": {"type": "asha", "metric": "eval_seconds"}}),
    (
        "reported only at evals",
        {"scheduler": {"type": "asha", "metric": "primary_score", "mode": "max"}},
    ),
    (
        "take randint or choice",
        {"searchSpace": {"warmupSteps": {"type": "uniform", "low": 1, "high": 50}}},
    ),
    (
        "budget.smokeSteps sets",
        {"searchSpace": {"max_steps": {"type": "choice", "values": [1, 2]}}},
    ),
    ("named twice", {"searchSpace": {"learningRate": LR, "learning_rate": LR}}),
    ("minReplicas must not exceed", {"cluster": {"pools": [{"name": "w", "minReplicas": 2}]}}),
    (
        "maxReplicas must not be below",
        {"cluster": {"pools": [{"name": "w", "replicas": 2, "maxReplicas": 1}]}},
    ),
    ("offers the topologies", {"cluster": {"pools": [{**V6E_4X4, "tpuTopology": "3x3"}]}}),
    (
        "take 3 dimensions",
        {"cluster": {"pools": [{**V6E_4X4, "tpuAccelerator": "v5p", "tpuTopology": "2x2"}]}},
    ),
    ("unknown TPU accelerator", {"cluster": {"pools": [{**V6E_4X4, "tpuAccelerator": "tpu-v9"}]}}),
    (
        "only valid with accelerator: tpu",
        {"cluster": {"pools": [{"name": "w", "tpuTopology": "2x2"}]}},
    ),
    ("no pool offers the GPUs", {"resources": {"gpu": 2}, "cluster": {"pools": [GPU_POOL]}}),
]


@pytest.mark.parametrize(("message", "patch"), CEL_CASES, ids=[m for m, _ in CEL_CASES])
def test_cel_refuses_what_the_models_refuse(message: str, patch: dict[str, Any]) -> None:
    spec = sweep_spec(**patch)
    violations = cel_violations(spec, spec_schema("Sweep"))
    assert any(message in v for v in violations), violations
    assert errors(sweep_doc(**patch)) != []


def reporting(metric: str) -> dict[str, Any]:
    """The objective ``metric`` with a trainer whose backend reports it."""
    backends = METRIC_BACKENDS.get(metric)
    if backends is None:
        return {"objective": {"metric": metric}}
    trainer = {"backend": backends[0], "model": {"name": "gemma3-tiny"}}
    return {"objective": {"metric": metric}, "trainer": trainer}


def test_cel_accepts_what_the_models_accept() -> None:
    for patch in [reporting(m) for m in REPORTED_METRICS] + [
        {
            "scheduler": {"type": "asha", "metric": "primary_score"},
            "trainer": {"eval": {"evalEvery": 50}},
        },
        {"scheduler": {"type": "fifo", "gracePeriod": 50, "metric": "loss", "mode": "min"}},
        {"searchSpace": {"warmupSteps": {"type": "randint", "low": 1, "high": 50}}},
        {
            "cluster": {
                "pools": [
                    V6E_4X4,
                    {**V6E_4X4, "name": "p", "tpuAccelerator": "v5p", "tpuTopology": "2x2x4"},
                ]
            }
        },
        {"resources": {"gpu": 1}, "cluster": {"pools": [GPU_POOL]}},
    ]:
        assert cel_violations(sweep_spec(**patch), spec_schema("Sweep")) == [], patch
        assert errors(sweep_doc(**patch)) == [], patch


def test_rehearsal_overrides_declare_the_trainer_fields_and_nothing_else() -> None:
    """The API server refuses another key as an unknown field (strict field validation;
    tests/control_plane checks it there). A CEL rule over the keys, which cel-python
    evaluated here, does not compile on a real server: a preserved object is not a map."""
    overrides = spec_schema("Rehearsal")["properties"]["overrides"]
    assert "x-kubernetes-preserve-unknown-fields" not in overrides
    assert sorted(overrides["properties"]) == sorted(trainer_field_names())
    assert all(v["x-kubernetes-preserve-unknown-fields"] for v in overrides["properties"].values())
    ok = {"fromSweep": "s", "overrides": {"maxSteps": 1, "learning_rate": 0.1, "eval": {}}}
    assert cel_violations(ok, spec_schema("Rehearsal")) == []


def test_storage_uri_with_credentials_is_refused_without_echoing_them() -> None:
    """A key in the URI would be copied into the spec, status, RayJob and evidence."""
    secret = "canary-Secret-123"
    with pytest.raises(ValidationError) as info:
        SweepSpec.model_validate(
            {
                "searchSpace": {"learningRate": {"type": "loguniform", "low": 1e-4, "high": 1e-2}},
                "storage": f"s3://AKIA:{secret}@bucket/prefix",
            }
        )
    message = describe(info.value)
    assert "spec.storage" in message and "credentials" in message
    assert secret not in message
