"""The chart's web view (``ui.*``): off by default (no port, no Service, no argument); on,
the operator's ``--ui-port``, a named container port and a Service to it; Promote adds
its repository, the forge token as a mounted file and the CSRF secret, and nothing of
that without it; the schema and the templates refuse what cannot work, naming the value."""

from __future__ import annotations

from typing import Any

import helm_python as helm
import pytest

from helm.test_chart import (
    CHART,
    IMAGES,
    KUBE_VERSION,
    RELEASE,
    RELEASE_NS,
    Manifest,
    env_of,
    of_kind,
    one,
    operator_container,
    render,
    schema_refusal,
    validate_manifests,
)
from tunix_rt.cli.operator import UiOptions, build_config
from tunix_rt.controller import OperatorConfig

STORE = {"storage": {"uri": "s3://ml-bucket/tunix-rt"}}
UI_ON = STORE | {"ui": {"enabled": True}}
PROMOTE = STORE | {
    "ui": {
        "enabled": True,
        "promote": {
            "enabled": True,
            "repo": "https://github.com/acme/models.git",
            "tokenSecret": "tunix-rt-git",
            "csrfSecret": "tunix-rt-ui-csrf",
        },
    }
}
TOKEN_DIR = "/var/run/secrets/tunix-rt/git"


def ui_service(docs: list[Manifest]) -> Manifest | None:
    found = [s for s in of_kind(docs, "Service") if s["metadata"]["name"].endswith("-ui")]
    return found[0] if found else None


def flag(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args else None


def test_off_by_default_no_port_no_service_no_argument(chart: helm.Chart) -> None:
    docs, notes = render(chart, STORE)
    container = operator_container(docs)
    assert not [a for a in container["args"] if a.startswith("--ui")]
    assert "ui" not in {p["name"] for p in container["ports"]}
    assert ui_service(docs) is None
    assert not {"TUNIX_RT_GIT_TOKEN_FILE", "TUNIX_RT_UI_SECRET"} & set(env_of(container))
    assert "port-forward svc/tunix-rt-ui" not in notes
    # Promote's values do nothing while the view is off... and are refused as such.
    with pytest.raises(helm.HelmError, match=r"ui\.promote\.enabled needs ui\.enabled=true"):
        render(chart, STORE | {"ui": {"promote": {"enabled": True, "repo": "x"}}})


def test_on_the_port_the_service_and_the_argument(chart: helm.Chart) -> None:
    docs, notes = render(chart, UI_ON | {"ui": {"enabled": True, "port": 9000}})
    validate_manifests(docs)
    container = operator_container(docs)
    args = container["args"]
    assert flag(args, "--ui-port") == "9000" and "--ui-promote-repo" not in args
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["ui"] == 9000
    service = ui_service(docs)
    assert service is not None and service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 80, "targetPort": "ui", "protocol": "TCP"}
    ]
    pod_labels = one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert "kubectl -n tunix-system port-forward svc/tunix-rt-ui 8765:80" in notes
    # Read-only: no token, no CSRF secret from the chart.
    assert not {"TUNIX_RT_GIT_TOKEN_FILE", "TUNIX_RT_UI_SECRET"} & set(env_of(container))
    assert not [m for m in container["volumeMounts"] if m["mountPath"] == TOKEN_DIR]


def test_the_operator_reads_the_arguments_the_chart_gives(chart: helm.Chart) -> None:
    """The rendered args, through the CLI's own config builder: the view on its port,
    reading storage.uri (TUNIX_RT_DEFAULT_STORAGE, from the chart's env)."""
    docs, _ = render(chart, UI_ON)
    container = operator_container(docs)
    env = {k: v for k, v in env_of(container).items() if isinstance(v, str)}
    args = container["args"]
    config = build_config(
        namespaces=None, all_namespaces=False, peering=None, standalone=True, liveness=None,
        metrics_port=None, ui=UiOptions(port=int(flag(args, "--ui-port") or 0)),
        base=OperatorConfig.from_env(env),
    )  # fmt: skip
    assert config.ui_port == 8765 and config.ui_store_uri == "s3://ml-bucket/tunix-rt"


def test_promote_mounts_the_token_and_sets_the_csrf_secret(chart: helm.Chart) -> None:
    docs, notes = render(chart, PROMOTE)
    validate_manifests(docs)
    container = operator_container(docs)
    assert flag(container["args"], "--ui-promote-repo") == "https://github.com/acme/models.git"
    env = env_of(container)
    assert env["TUNIX_RT_GIT_TOKEN_FILE"] == f"{TOKEN_DIR}/token"
    assert env["TUNIX_RT_UI_SECRET"] == {
        "secretKeyRef": {"name": "tunix-rt-ui-csrf", "key": "secret"}
    }
    assert not {"GITHUB_TOKEN", "GITLAB_TOKEN"} & set(env)  # a file, never an env var
    [mount] = [m for m in container["volumeMounts"] if m["name"] == "git-token"]
    assert mount == {"name": "git-token", "mountPath": TOKEN_DIR, "readOnly": True}
    volumes = one(docs, "Deployment")["spec"]["template"]["spec"]["volumes"]
    [volume] = [v for v in volumes if v["name"] == "git-token"]
    assert volume["secret"]["secretName"] == "tunix-rt-git"
    assert volume["secret"]["items"] == [{"key": "token", "path": "token"}]
    assert "Promote button" in notes and 'Secret "tunix-rt-git"' in notes
    assert "CSRF secret: random per pod" not in notes


def test_without_a_csrf_secret_the_notes_say_it_is_per_pod(chart: helm.Chart) -> None:
    values: dict[str, Any] = PROMOTE | {
        "ui": {"enabled": True, "promote": {"enabled": True, "repo": "git@gitlab.com:g/m.git"}}
    }
    docs, notes = render(chart, values)
    env = env_of(operator_container(docs))
    assert "TUNIX_RT_UI_SECRET" not in env and "TUNIX_RT_GIT_TOKEN_FILE" not in env
    assert "CSRF secret: random per pod" in notes and "more than one replica" in notes
    assert "no request is opened" in notes


def test_promote_values_without_promote_enabled_mount_nothing(chart: helm.Chart) -> None:
    values = UI_ON | {"ui": {"enabled": True, "promote": {"tokenSecret": "tunix-rt-git"}}}
    docs, _ = render(chart, values)
    container = operator_container(docs)
    assert "TUNIX_RT_GIT_TOKEN_FILE" not in env_of(container)
    volumes = one(docs, "Deployment")["spec"]["template"]["spec"]["volumes"]
    assert [v["name"] for v in volumes] == ["tmp"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"ui": {"enabled": True}}, r"ui\.enabled needs storage\.uri"),
        (
            STORE | {"ui": {"enabled": True, "promote": {"enabled": True}}},
            r"ui\.promote\.enabled needs ui\.promote\.repo",
        ),
    ],
)
def test_settings_that_cannot_work_are_refused(
    chart: helm.Chart, values: dict[str, Any], message: str
) -> None:
    with pytest.raises(helm.HelmError, match=message):
        chart.render(IMAGES | values, name=RELEASE, namespace=RELEASE_NS)


BAD_UI_VALUES: dict[str, tuple[dict[str, Any], str]] = {
    "unknown ui key": ({"ui": {"enable": True}}, "additional properties 'enable'"),
    "unknown service key": ({"ui": {"service": {"nodePort": 1}}}, "'nodePort'"),
    "unknown promote key": ({"ui": {"promote": {"token": "x"}}}, "additional properties 'token'"),
    "enabled as text": ({"ui": {"enabled": "yes"}}, "/ui/enabled"),
    "privileged port": ({"ui": {"port": 80}}, "/ui/port"),
    "service type": ({"ui": {"service": {"type": "Ingress"}}}, "/ui/service/type"),
    "service port": ({"ui": {"service": {"port": 0}}}, "/ui/service/port"),
    "token secret name": ({"ui": {"promote": {"tokenSecret": "Git Token"}}}, "tokenSecret"),
    "csrf secret name": ({"ui": {"promote": {"csrfSecret": "A_B"}}}, "csrfSecret"),
    "credentials in the repo": (
        {"ui": {"promote": {"repo": "https://bot:pw@github.com/a/m.git"}}},
        "/ui/promote/repo",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_UI_VALUES))
def test_the_schema_checks_every_ui_key(chart: helm.Chart, case: str) -> None:
    values, message = BAD_UI_VALUES[case]
    assert message in schema_refusal(chart, values)


def test_the_good_ui_values_pass_the_schema_and_lint(chart: helm.Chart) -> None:
    for values in (UI_ON, PROMOTE):
        chart.validate_schema(values)
    chart.validate_schema({"ui": chart.values["ui"]})  # the defaults themselves
    assert chart.values["ui"]["enabled"] is False
    assert chart.values["ui"]["promote"]["enabled"] is False
    report = helm.lint(CHART, {**IMAGES, **PROMOTE}, strict=True, kube_version=f"v{KUBE_VERSION}.0")
    assert not [m for m in report["messages"] if m["severity"] >= 2] and not report["errors"]
