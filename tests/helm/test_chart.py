"""The Helm chart, rendered offline by Helm's own Go SDK (helm-python-sdk).

Every rendered manifest is checked against the Kubernetes 1.30 OpenAPI schemas in strict
mode (kubernetes-validate ships them, no network), custom resources against their own
CRD schemas, and the values against values.schema.json as `helm install` would.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import helm_python as helm
import jsonschema
import kubernetes_validate
import pytest
import yaml

from support.images import built_values
from tunix_rt.api.cluster import NodePool

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "tunix-rt"
GENERATED_CRDS = ROOT / "crds"
KUBE_VERSION = "1.30"
RELEASE = "tunix-rt"
RELEASE_NS = "tunix-system"

Manifest = dict[str, Any]


def schema_refusal(chart: helm.Chart, values: dict[str, Any]) -> str:
    """What the chart's values schema says in refusing ``values``."""
    with pytest.raises(helm.HelmValuesError) as refused:
        chart.validate_schema(values)
    return str(refused.value)


# What `make images REGISTRY=registry.example.com/tunix-rt` writes (images.values.yaml):
# the chart installs nothing without it (no image is published for users).
IMAGES = built_values()


def render(
    chart: helm.Chart, values: dict[str, Any], *, images: bool = True
) -> tuple[list[Manifest], str]:
    """All manifests of an install with these values (hooks included), and NOTES.txt;
    ``images``: with the values ``make images`` writes underneath (as the README installs)."""
    values = {**IMAGES, **values} if images else values
    out = chart.render(values, name=RELEASE, namespace=RELEASE_NS, is_install=True)
    notes = ""
    docs: list[Manifest] = []
    for path, text in sorted(out.items()):
        if path.endswith("NOTES.txt"):
            notes = text
            continue
        docs.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return docs, notes


def of_kind(docs: list[Manifest], kind: str) -> list[Manifest]:
    return [d for d in docs if d["kind"] == kind]


def granted(role: Manifest) -> dict[tuple[str, str], set[str]]:
    """A Role's or ClusterRole's verbs by (API group, resource)."""
    return {
        (g, r): set(rule["verbs"])
        for rule in role["rules"]
        for g in rule["apiGroups"]
        for r in rule["resources"]
    }


def one(docs: list[Manifest], kind: str) -> Manifest:
    found = of_kind(docs, kind)
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def operator_container(docs: list[Manifest]) -> Manifest:
    containers = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["operator"]
    container: Manifest = containers[0]
    return container


def env_of(container: Manifest) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def crd_schema(crd: Manifest, version: str) -> dict[str, Any]:
    for v in crd["spec"]["versions"]:
        if v["name"] == version:
            schema: dict[str, Any] = v["schema"]["openAPIV3Schema"]
            return schema
    raise AssertionError(f"{crd['metadata']['name']} has no version {version}")


# prometheus-operator's monitoring.coreos.com/v1 ServiceMonitor, the part this chart uses:
# its CRD is not installed with the chart, so the fields the template writes are pinned here.
DURATION = (
    r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
)
SERVICE_MONITOR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": {
            "type": "object",
            "required": ["name", "namespace"],
            "properties": {
                "labels": {"type": "object", "additionalProperties": {"type": "string"}}
            },
        },
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["selector", "endpoints"],
            "properties": {
                "selector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "matchLabels": {
                            "type": "object",
                            "additionalProperties": {"type": "string"},
                        }
                    },
                },
                "namespaceSelector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "any": {"type": "boolean"},
                        "matchNames": {"type": "array", "items": {"type": "string"}},
                    },
                },
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "port": {"type": "string"},
                            "path": {"type": "string"},
                            "interval": {"type": "string", "pattern": DURATION},
                            "scrapeTimeout": {"type": "string", "pattern": DURATION},
                        },
                    },
                },
            },
        },
    },
}


def validate_manifests(docs: list[Manifest]) -> None:
    """Built-in kinds against Kubernetes' schemas; custom resources against their CRD."""
    crds = {
        (c["spec"]["group"], c["spec"]["names"]["kind"]): c
        for c in of_kind(docs, "CustomResourceDefinition")
    }
    for doc in docs:
        group, _, version = doc["apiVersion"].rpartition("/")
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        if doc["kind"] == "ServiceMonitor":
            jsonschema.validate(doc, SERVICE_MONITOR_SCHEMA)
        elif (group, doc["kind"]) in crds:
            jsonschema.validate(doc, crd_schema(crds[(group, doc["kind"])], version))
        else:
            try:
                kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
            except kubernetes_validate.ValidationError as exc:
                path = ".".join(str(p) for p in exc.path)
                pytest.fail(f"{where}: {path}: {exc.message}")
            except kubernetes_validate.SchemaNotFoundError as exc:
                pytest.fail(f"{where}: no Kubernetes {KUBE_VERSION} schema: {exc.message}")


# --- value sets ------------------------------------------------------------------------

POOLS = [
    {
        "name": "gpu",
        "accelerator": "gpu",
        "replicas": 4,
        "gpusPerPod": 1,
        "gpuType": "nvidia-l4",
        "cpu": "8",
        "memory": "32Gi",
    },
    {
        "name": "v6e",
        "accelerator": "tpu",
        "replicas": 1,
        "tpuAccelerator": "tpu-v6e-slice",
        "tpuTopology": "2x2",
    },
]

VALUE_SETS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "cluster-wide": {
        "watch": {"allNamespaces": True, "namespaces": []},
        "peering": {"enabled": True, "name": "tunix-rt"},
        "storage": {"uri": "gs://ml-bucket/tunix-rt"},
    },
    "namespace-scoped": {
        "watch": {"allNamespaces": False, "namespaces": ["team-a", "team-b"]},
        "peering": {"enabled": True, "name": "tunix-rt"},
        "storage": {"uri": "s3://ml-bucket/tunix-rt", "credentialsSecret": "tunix-rt-s3"},
        "defaultNodePools": POOLS,
        "image": {
            "repository": "registry.example.com:5000/ml/tunix-rt-operator",
            "tag": "0.1.0",
            "digest": "sha256:" + "a" * 64,
        },
        "serviceAccount": {
            "annotations": {"iam.gke.io/gcp-service-account": "x@p.iam.gserviceaccount.com"}
        },
    },
    # What scripts/kind-e2e.sh sets: images loaded into kind, an in-cluster S3 store.
    "kind-e2e": {
        "image": {"repository": "tunix-rt-operator", "tag": "e2e", "pullPolicy": "Never"},
        "trainerImages": {"cpu": "tunix-rt-trainer:e2e-cpu", "pullPolicy": "Never"},
        "watch": {"namespaces": ["tunix-e2e"]},
        "storage": {"uri": "s3://tunix-rt/e2e", "credentialsSecret": "tunix-rt-s3"},
    },
    "service-monitor": {
        "metrics": {
            "serviceMonitor": {"enabled": True, "interval": "15s", "labels": {"release": "kps"}}
        },
        "operator": {"livenessPort": 8181, "metricsPort": 9191, "extraArgs": ["--verbose"]},
        "tolerations": [{"key": "ops", "operator": "Exists", "effect": "NoSchedule"}],
        "nodeSelector": {"kubernetes.io/os": "linux"},
    },
}


@pytest.fixture(scope="module", params=sorted(VALUE_SETS))
def rendered(request: pytest.FixtureRequest, chart: helm.Chart) -> tuple[str, list[Manifest]]:
    name: str = request.param
    docs, _ = render(chart, VALUE_SETS[name])
    return name, docs


def test_every_rendered_manifest_validates(rendered: tuple[str, list[Manifest]]) -> None:
    _, docs = rendered
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "ServiceAccount", "Service"} <= kinds
    validate_manifests(docs)
    for doc in docs:
        if doc["kind"] not in {
            "ClusterRole",
            "ClusterRoleBinding",
            "CustomResourceDefinition",
            "ClusterKopfPeering",
        }:
            assert doc["metadata"].get("namespace"), f"{doc['kind']} without a namespace"


def test_operator_pod_is_locked_down(rendered: tuple[str, list[Manifest]]) -> None:
    _, docs = rendered
    deployment = one(docs, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    container = operator_container(docs)
    sc = container["securityContext"]
    assert sc["runAsNonRoot"] is True
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    # A read-only root needs a writable /tmp.
    tmp = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
    assert len(tmp) == 1
    assert next(v for v in pod["volumes"] if v["name"] == tmp[0]["name"])["emptyDir"] is not None
    assert container["resources"]["requests"] and container["resources"]["limits"]


def test_probes_hit_the_liveness_endpoint(rendered: tuple[str, list[Manifest]]) -> None:
    _, docs = rendered
    container = operator_container(docs)
    args = container["args"]
    liveness_url = args[args.index("--liveness") + 1]
    port = int(liveness_url.rsplit(":", 1)[1].split("/")[0])
    assert liveness_url == f"http://0.0.0.0:{port}/healthz"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["health"] == port
    assert ports["metrics"] == int(args[args.index("--metrics-port") + 1])
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        get = container[probe]["httpGet"]
        assert get["path"] == "/healthz"
        assert ports[get["port"]] == port


def test_namespaced_install_has_no_cluster_wide_workload_rights(chart: helm.Chart) -> None:
    docs, _ = render(chart, VALUE_SETS["namespace-scoped"])
    args = operator_container(docs)["args"]
    assert "--all-namespaces" not in args
    assert [args[i + 1] for i, a in enumerate(args) if a == "--namespace"] == ["team-a", "team-b"]
    roles = of_kind(docs, "Role")
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    for role in roles:
        verbs = granted(role)
        # Exactly what the operator does (docs/operator.md, tests/helm/test_rbac.py).
        assert verbs[("tunixrt.io", "sweeps")] == {"get", "list", "watch", "patch"}
        assert verbs[("tunixrt.io", "rehearsals")] == {"get", "list", "watch", "patch"}
        assert verbs[("tunixrt.io", "sweeps/status")] == {"patch"}
        assert verbs[("tunixrt.io", "rehearsals/status")] == {"patch"}
        assert verbs[("tunixrt.io", "sweeps/finalizers")] == {"update"}
        assert verbs[("tunixrt.io", "rehearsals/finalizers")] == {"update"}
        assert verbs[("ray.io", "rayjobs")] == {"get", "list", "watch", "create", "delete"}
        assert verbs[("", "events")] == {"create"}
        assert verbs[("kopf.dev", "kopfpeerings")] == {"list", "watch", "patch"}
    bindings = of_kind(docs, "RoleBinding")
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["team-a", "team-b"]
    sa = one(docs, "ServiceAccount")["metadata"]
    for binding in bindings:
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": sa["name"], "namespace": RELEASE_NS}
        ]
    # Cluster-wide: only kopf's read-only discovery of CRDs and namespaces.
    (cluster_role,) = of_kind(docs, "ClusterRole")
    cluster_rules = granted(cluster_role)
    assert cluster_rules == {
        ("apiextensions.k8s.io", "customresourcedefinitions"): {"list", "watch"},
        ("", "namespaces"): {"list", "watch"},
    }
    (cluster_binding,) = of_kind(docs, "ClusterRoleBinding")
    assert cluster_binding["roleRef"]["name"] == cluster_role["metadata"]["name"]
    # One KopfPeering per watched namespace (post-install hooks, after their CRD).
    peerings = of_kind(docs, "KopfPeering")
    assert sorted(p["metadata"]["namespace"] for p in peerings) == ["team-a", "team-b"]
    assert all("post-install" in p["metadata"]["annotations"]["helm.sh/hook"] for p in peerings)
    assert args[args.index("--peering") + 1] == "tunix-rt"


def test_default_install_watches_the_release_namespace(chart: helm.Chart) -> None:
    docs, notes = render(chart, {})
    args = operator_container(docs)["args"]
    assert args[args.index("--namespace") + 1] == RELEASE_NS
    assert "--standalone" in args and "--peering" not in args
    assert [r["metadata"]["namespace"] for r in of_kind(docs, "Role")] == [RELEASE_NS]
    assert not of_kind(docs, "CustomResourceDefinition")  # peering CRDs only with peering
    assert not of_kind(docs, "ServiceMonitor")
    assert "storage.uri is empty" in notes
    # Only the CRDs in charts/tunix-rt/crds/ (installed by Helm before the templates).
    assert sorted(c["name"] for c in chart.crds) == [
        "crds/tunixrt.io_rehearsals.yaml",
        "crds/tunixrt.io_sweeps.yaml",
    ]


def test_cluster_wide_install_uses_one_cluster_role(chart: helm.Chart) -> None:
    docs, notes = render(chart, VALUE_SETS["cluster-wide"])
    args = operator_container(docs)["args"]
    assert "--all-namespaces" in args and "--namespace" not in args
    assert not of_kind(docs, "Role") and not of_kind(docs, "RoleBinding")
    (role,) = of_kind(docs, "ClusterRole")
    verbs = granted(role)
    assert verbs[("tunixrt.io", "rehearsals")] == {"get", "list", "watch", "patch"}
    assert verbs[("ray.io", "rayjobs")] == {"get", "list", "watch", "create", "delete"}
    assert verbs[("kopf.dev", "clusterkopfpeerings")] == {"list", "watch", "patch"}
    assert ("kopf.dev", "kopfpeerings") not in verbs
    assert verbs[("apiextensions.k8s.io", "customresourcedefinitions")] == {"list", "watch"}
    (binding,) = of_kind(docs, "ClusterRoleBinding")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": role["metadata"]["name"],
    }
    crds = {c["metadata"]["name"]: c for c in of_kind(docs, "CustomResourceDefinition")}
    assert set(crds) == {"clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev"}
    assert crds["clusterkopfpeerings.kopf.dev"]["spec"]["scope"] == "Cluster"
    assert all(
        c["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep" for c in crds.values()
    )
    (peering,) = of_kind(docs, "ClusterKopfPeering")
    assert peering["metadata"]["name"] == args[args.index("--peering") + 1]
    assert "all namespaces" in notes


def test_rbac_is_least_privilege(rendered: tuple[str, list[Manifest]]) -> None:
    _, docs = rendered
    for role in of_kind(docs, "Role") + of_kind(docs, "ClusterRole"):
        for rule in role["rules"]:
            assert "*" not in rule["verbs"] and "*" not in rule["resources"]
            assert "*" not in rule["apiGroups"]
            # No secrets, pods or other workloads: the operator creates RayJobs only.
            assert not {"secrets", "pods", "pods/exec", "configmaps"} & set(rule["resources"])
            if rule["apiGroups"] == ["tunixrt.io"]:
                assert not {"create", "delete", "deletecollection"} & set(rule["verbs"]), (
                    "the operator never creates or deletes Sweeps/Rehearsals"
                )


def test_operator_env_carries_images_storage_and_pools(chart: helm.Chart) -> None:
    docs, _ = render(chart, VALUE_SETS["namespace-scoped"])
    container = operator_container(docs)
    env = env_of(container)
    built = IMAGES["trainerImages"]
    assert env["TUNIX_RT_IMAGE_CPU"] == built["cpu"]
    assert env["TUNIX_RT_IMAGE_GPU"] == built["gpu"]
    assert env["TUNIX_RT_IMAGE_TPU"] == built["tpu"]
    assert env["TUNIX_RT_DEFAULT_STORAGE"] == "s3://ml-bucket/tunix-rt"
    assert env["TUNIX_RT_STORAGE_SECRET"] == "tunix-rt-s3"
    assert container["envFrom"] == [{"secretRef": {"name": "tunix-rt-s3"}}]
    pools = json.loads(env["TUNIX_RT_DEFAULT_POOLS"])
    assert pools == POOLS
    # The operator reads them back as the same NodePool model a Sweep's pools use.
    assert [NodePool.model_validate(p).accelerator.value for p in pools] == ["gpu", "tpu"]
    assert container["image"] == (
        "registry.example.com:5000/ml/tunix-rt-operator:0.1.0@sha256:" + "a" * 64
    )
    sa = one(docs, "ServiceAccount")
    assert sa["metadata"]["annotations"] == {
        "iam.gke.io/gcp-service-account": "x@p.iam.gserviceaccount.com"
    }

    docs, _ = render(chart, {})
    env = env_of(operator_container(docs))
    assert not {
        "TUNIX_RT_DEFAULT_STORAGE",
        "TUNIX_RT_STORAGE_SECRET",
        "TUNIX_RT_DEFAULT_POOLS",
    } & set(env)
    assert operator_container(docs)["image"] == (
        f"{IMAGES['image']['repository']}:{IMAGES['image']['tag']}"
    )


def test_service_monitor_scrapes_the_metrics_service(chart: helm.Chart) -> None:
    docs, notes = render(chart, VALUE_SETS["service-monitor"])
    monitor = one(docs, "ServiceMonitor")
    service = one(docs, "Service")
    pod = one(docs, "Deployment")["spec"]["template"]
    container = operator_container(docs)
    # ServiceMonitor -> Service -> pod -> container port, all by name and labels.
    assert monitor["metadata"]["labels"]["release"] == "kps"
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"]["matchNames"] == [RELEASE_NS]
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]
    assert monitor["spec"]["endpoints"][0]["interval"] == "15s"
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    target = service["spec"]["ports"][0]["targetPort"]
    assert {p["name"]: p["containerPort"] for p in container["ports"]}[target] == 9191
    args = container["args"]
    assert args[args.index("--metrics-port") + 1] == "9191"
    assert args[-1] == "--verbose"
    assert "ServiceMonitor" in notes

    with pytest.raises(helm.HelmError, match=r"metrics\.service\.enabled"):
        chart.render(
            IMAGES
            | {"metrics": {"service": {"enabled": False}, "serviceMonitor": {"enabled": True}}},
            name=RELEASE,
            namespace=RELEASE_NS,
        )


# --- values.schema.json ----------------------------------------------------------------

BAD_VALUES: dict[str, dict[str, Any]] = yaml.safe_load(
    (Path(__file__).parent / "bad_values.yaml").read_text()
)
"""Values the schema refuses, by case name (``bad_values.yaml``)."""


@pytest.mark.parametrize("case", sorted(BAD_VALUES))
def test_bad_values_are_rejected_by_the_schema(chart: helm.Chart, case: str) -> None:
    values, refusal = BAD_VALUES[case]["values"], BAD_VALUES[case]["refusal"]
    assert refusal in schema_refusal(chart, values)
    # And an install/template with them stops before rendering anything.
    with pytest.raises(helm.HelmValuesError, match="values don't meet the specifications"):
        chart.render(values, name=RELEASE, namespace=RELEASE_NS)


def test_every_good_value_set_passes_the_schema(chart: helm.Chart) -> None:
    for values in VALUE_SETS.values():
        chart.validate_schema(values)


def test_pool_schema_matches_the_node_pool_model() -> None:
    """values.schema.json's pool fields are exactly NodePool's wire names (camelCase)."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    pool_fields = set(schema["properties"]["defaultNodePools"]["items"]["properties"])
    model_fields = {info.alias or name for name, info in NodePool.model_fields.items()}
    assert pool_fields == model_fields


def test_chart_metadata_and_default_images(chart: helm.Chart) -> None:
    meta = chart.metadata
    assert meta["apiVersion"] == "v2"
    assert meta["name"] == "tunix-rt"
    app_version = meta["appVersion"]
    assert app_version == "0.1.0"
    # `make images` tags every image <appVersion>-<commit> (the chart's defaults name none).
    assert IMAGES["image"]["tag"].startswith(f"{app_version}-")
    for kind in ("cpu", "gpu", "tpu"):
        ref = IMAGES["trainerImages"][kind]
        assert f":{app_version}-" in ref, f"trainerImages.{kind} is not at appVersion {app_version}"
    assert chart.schema is not None and chart.schema["additionalProperties"] is False


def test_helm_lint_is_clean() -> None:
    for name, values in VALUE_SETS.items():
        report = helm.lint(
            CHART, {**IMAGES, **values}, strict=True, kube_version=f"v{KUBE_VERSION}.0"
        )
        problems = [m for m in report["messages"] if m["severity"] >= 2]
        assert not problems and not report["errors"], (name, report)


# --- CRDs --------------------------------------------------------------------------------


def test_chart_crds_are_the_generated_crds() -> None:
    """charts/tunix-rt/crds/ holds byte-identical copies of crds/ (scripts/sync-chart-crds.sh)."""
    generated = sorted(p.name for p in GENERATED_CRDS.glob("*.yaml"))
    assert generated, "crds/ is empty: generate the CRDs first (make crds)"
    in_chart = sorted(p.name for p in (CHART / "crds").glob("*.yaml"))
    assert in_chart == generated, "chart CRDs differ: run scripts/sync-chart-crds.sh"
    for name in generated:
        assert (CHART / "crds" / name).read_bytes() == (GENERATED_CRDS / name).read_bytes(), (
            f"charts/tunix-rt/crds/{name} is stale: run scripts/sync-chart-crds.sh"
        )


def test_chart_crds_are_valid_and_served(chart: helm.Chart) -> None:
    crds = [yaml.safe_load(c["data"]) for c in chart.crds]
    by_plural = {c["spec"]["names"]["plural"]: c for c in crds}
    assert set(by_plural) == {"sweeps", "rehearsals"}
    for plural, crd in by_plural.items():
        kubernetes_validate.validate(crd, KUBE_VERSION, strict=True)
        assert crd["metadata"]["name"] == f"{plural}.tunixrt.io"
        assert crd["spec"]["group"] == "tunixrt.io"
        assert crd["spec"]["scope"] == "Namespaced"
        assert "tunixrt" in crd["spec"]["names"]["categories"]
        (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
        assert version["served"] and version["storage"]
        assert "status" in version["subresources"]


def test_operator_reads_the_env_the_chart_sets(chart: helm.Chart) -> None:
    """The chart's env, fed to the operator's own config loader, gives back the values."""
    from tunix_rt.controller.config import OperatorConfig

    values = VALUE_SETS["namespace-scoped"] | {
        "trainerImages": {
            "cpu": "registry.example.com/trainer:1-cpu",
            "gpu": "registry.example.com/trainer:1-cuda",
            "tpu": "registry.example.com/trainer:1-tpu",
            "pullPolicy": "IfNotPresent",
        }
    }
    docs, _ = render(chart, values)
    env = {k: v for k, v in env_of(operator_container(docs)).items() if isinstance(v, str)}
    config = OperatorConfig.from_env(env)
    assert config.image_cpu == "registry.example.com/trainer:1-cpu"
    assert config.image_gpu == "registry.example.com/trainer:1-cuda"
    assert config.image_tpu == "registry.example.com/trainer:1-tpu"
    assert config.image_pull_policy == "IfNotPresent"
    assert config.default_storage == "s3://ml-bucket/tunix-rt"
    assert config.storage_secret == "tunix-rt-s3"
    assert [p["name"] for p in config.default_pools] == ["gpu", "v6e"]
    assert config.default_pools[1]["tpuTopology"] == "2x2"
    # Installed with the CPU image only: the operator knows it has no GPU or TPU image
    # (empty, not its built-in name of an image nobody pushed).
    only_cpu = VALUE_SETS["namespace-scoped"] | built_values(kinds="operator,cpu")
    docs, _ = render(chart, only_cpu, images=False)
    env = {k: v for k, v in env_of(operator_container(docs)).items() if isinstance(v, str)}
    config = OperatorConfig.from_env(env)
    assert config.image_cpu == only_cpu["trainerImages"]["cpu"]
    assert config.image_gpu == "" and config.image_tpu == ""


def test_an_install_without_built_images_is_refused_and_says_how_to_build_them(
    chart: helm.Chart,
) -> None:
    """No registry holds tunix-rt's images until the user pushes them: the chart's
    defaults name none, and an install without them stops before anything is created."""
    assert chart.values["image"]["repository"] == ""
    assert set(chart.values["trainerImages"].values()) == {""}
    with pytest.raises(helm.HelmError, match=r"image\.repository is empty") as no_images:
        render(chart, {}, images=False)
    assert "make images REGISTRY=" in str(no_images.value)
    assert "-f images.values.yaml" in str(no_images.value)
    operator_only = {"image": IMAGES["image"]}
    with pytest.raises(helm.HelmError, match=r"trainerImages\.cpu is empty") as no_trainer:
        render(chart, operator_only, images=False)
    assert "make images REGISTRY=" in str(no_trainer.value)


def test_notes_name_the_trainer_images_and_the_missing_ones(chart: helm.Chart) -> None:
    _, notes = render(chart, built_values(kinds="operator,cpu,tpu"), images=False)
    cpu, tpu = IMAGES["trainerImages"]["cpu"], IMAGES["trainerImages"]["tpu"]
    assert f"Trainer images: cpu {cpu}, gpu (none), tpu {tpu}" in notes
    assert "No gpu trainer image" in notes and "refused as InvalidSpec" in notes
    _, notes = render(chart, {})
    assert "(none)" not in notes and "trainer image:" not in notes


def test_existing_service_account_and_no_rbac(chart: helm.Chart) -> None:
    docs, _ = render(
        chart, {"rbac": {"create": False}, "serviceAccount": {"create": False, "name": "ops-sa"}}
    )
    assert not {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding", "ServiceAccount"} & {
        d["kind"] for d in docs
    }
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "ops-sa"
    validate_manifests(docs)
    with pytest.raises(helm.HelmError, match=r"serviceAccount\.name is required"):
        chart.render(
            IMAGES | {"serviceAccount": {"create": False}}, name=RELEASE, namespace=RELEASE_NS
        )
