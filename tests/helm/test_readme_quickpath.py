"""The README's "Run on Kubernetes" commands, followed in the order written against a
small model of a cluster: every namespace and Secret exists before something needs it,
the chart renders (Helm's own Go SDK) with exactly the values the command sets, and each
manifest is valid, lands in a namespace the operator watches, and (a Rehearsal) comes
after the Sweep it rehearses."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml

from support.images import built_values, registry_of, script
from support.readme import kubernetes_quick_path as quick_path
from tunix_rt.api.rehearsal import Rehearsal
from tunix_rt.api.sweep import Sweep

ROOT = Path(__file__).resolve().parents[2]


def set_values(pairs: list[str]) -> dict[str, Any]:
    """Helm's ``--set a.b=c`` and ``--set 'a={x,y}'`` (the forms the README uses)."""
    values: dict[str, Any] = {}
    for pair in pairs:
        key, _, raw = pair.partition("=")
        value: Any = raw
        if raw.startswith("{") and raw.endswith("}"):
            value = [v for v in raw[1:-1].split(",") if v]
        node = values
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return values


def option(args: list[str], *names: str) -> list[str]:
    out = []
    for i, arg in enumerate(args):
        if arg in names and i + 1 < len(args):
            out.append(args[i + 1])
    return out


@dataclass
class Cluster:
    namespaces: set[str] = field(default_factory=lambda: {"default", "kube-system"})
    secrets: set[tuple[str, str]] = field(default_factory=set)
    watched: set[str] = field(default_factory=set)
    sweeps: set[tuple[str, str]] = field(default_factory=set)
    storage_secret: str | None = None
    installed: bool = False
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Values files the path wrote (``make images``: images.values.yaml)."""

    def need_namespace(self, ns: str, why: str) -> None:
        assert ns in self.namespaces, f"{why}: namespace {ns!r} does not exist yet"


def run_kubectl(cluster: Cluster, args: list[str]) -> None:
    ns = (option(args, "-n", "--namespace") or ["default"])[0]
    words, skip = [], False
    for arg in args[1:]:
        if skip:
            skip = False
        elif arg in ("-n", "--namespace", "-f", "--filename"):
            skip = True  # its value follows
        elif not arg.startswith("-"):
            words.append(arg)
    if words[:2] == ["create", "namespace"]:
        cluster.namespaces.add(words[2])
        return
    cluster.need_namespace(ns, shlex.join(args))
    if words[:3] == ["create", "secret", "generic"]:
        cluster.secrets.add((ns, words[3]))
    elif words[:1] == ["apply"]:
        apply(cluster, ns, ROOT / option(args, "-f")[0])
    elif words[:1] in (["get"], ["describe"], ["wait"]):
        assert cluster.installed, f"{shlex.join(args)} before the chart (and its CRDs) is in"


def apply(cluster: Cluster, ns: str, path: Path) -> None:
    assert cluster.installed, f"{path.name} applied before the chart installed the CRDs"
    assert ns in cluster.watched, f"{path.name} applied to {ns}, which the operator does not watch"
    doc = yaml.safe_load(path.read_text())
    assert "storage" not in doc["spec"], f"{path.name} overrides the chart's storage.uri"
    if doc["kind"] == "Sweep":
        sweep = Sweep.model_validate(doc)
        cluster.sweeps.add((ns, sweep.metadata.name or ""))
    else:
        rehearsal = Rehearsal.model_validate(doc)
        source = rehearsal.spec.from_sweep
        assert source is None or (ns, source) in cluster.sweeps, (
            f"{path.name} rehearses Sweep {source}, which this path never applied"
        )


def run_make(cluster: Cluster, args: list[str]) -> None:
    """``make images REGISTRY=…``: the values file it writes (what it builds is Docker's)."""
    cluster.files[script().VALUES_FILE] = built_values(registry_of(args))


def run_helm(cluster: Cluster, args: list[str]) -> None:
    assert args[1] == "install"
    name, chart_path = args[2], ROOT / args[3]
    ns = option(args, "-n", "--namespace")[0]
    if "--create-namespace" in args:
        cluster.namespaces.add(ns)
    cluster.need_namespace(ns, "helm install")
    values: dict[str, Any] = {}
    for path in option(args, "-f", "--values"):
        assert path in cluster.files, f"helm install -f {path} before anything wrote {path}"
        values |= cluster.files[path]
    values |= set_values(option(args, "--set"))
    watched = list(values.get("watch", {}).get("namespaces", []))
    for watched_ns in watched:
        cluster.need_namespace(watched_ns, f"the chart's Role/RoleBinding in {watched_ns}")
    secret = values.get("storage", {}).get("credentialsSecret")
    for needed_in in [ns, *watched]:
        assert not secret or (needed_in, secret) in cluster.secrets, (
            f"Secret {secret} is needed in {needed_in} (operator / Ray pods) before the install"
        )
    with helm.Chart.load(chart_path) as chart:
        rendered = chart.render(values, name=name, namespace=ns, is_install=True)
    docs = [
        d
        for path, text in sorted(rendered.items())
        if not path.endswith("NOTES.txt")
        for d in yaml.safe_load_all(text)
        if d
    ]
    for doc in docs:
        namespace = (doc.get("metadata") or {}).get("namespace")
        if namespace:
            cluster.need_namespace(namespace, f"the chart's {doc['kind']}")
    assert values["storage"]["uri"].startswith(("s3://", "gs://"))
    cluster.watched.update(watched)
    cluster.storage_secret = secret
    cluster.installed = True


def test_readme_kubernetes_path_works_in_the_order_written() -> None:
    commands = quick_path()
    tools = [c[0] for c in commands]
    assert "helm" in tools and tools.count("kubectl") >= 4
    cluster = Cluster()
    for command in commands:
        if command[0] == "kubectl":
            run_kubectl(cluster, command)
        elif command[0] == "helm":
            run_helm(cluster, command)
        elif command[0] == "make":
            run_make(cluster, command)
        else:
            pytest.fail(f"unexpected command in the README path: {shlex.join(command)}")
    assert cluster.installed and cluster.sweeps


def test_the_walk_refuses_an_install_before_the_images() -> None:
    cluster = Cluster(namespaces={"default", "tunix-rt-system"})
    with pytest.raises(AssertionError, match=r"-f images\.values\.yaml before anything wrote"):
        run_helm(
            cluster,
            shlex.split(
                "helm install tunix-rt charts/tunix-rt -n tunix-rt-system "
                "-f images.values.yaml --set storage.uri=s3://b/x"
            ),
        )


def test_the_walk_catches_the_order_it_guards() -> None:
    """The README before this fix installed the chart first: the walk must refuse that."""
    cluster = Cluster()
    with pytest.raises(AssertionError, match="does not exist yet"):
        run_helm(
            cluster,
            shlex.split(
                "helm install tunix-rt charts/tunix-rt -n tunix-rt-system --create-namespace "
                "--set 'watch.namespaces={ml-sweeps}' --set storage.uri=s3://b/x"
            ),
        )
