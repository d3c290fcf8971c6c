"""The operator's imports and login stay light: kopf without the Kubernetes client
libraries' models (:mod:`tunix_rt.kopf_lean`), credentials read by kopf's own readers
unless the kubeconfig needs a client-library plugin (:mod:`tunix_rt.controller.settings`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import kopf
import pytest
import yaml

from tunix_rt.controller.settings import from_kubeconfig, in_cluster


def test_operator_imports_no_kubernetes_client_models() -> None:
    code = (
        "import sys, tunix_rt.cli, tunix_rt.cli.operator, tunix_rt.controller\n"
        "print(sorted(m for m in sys.modules if m.startswith(('kubernetes', 'pykube'))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "[]"


def kubeconfig(path: Path, user: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "k", "cluster": {"server": "https://k.example:6443"}}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
    }))  # fmt: skip
    return path


def test_kubeconfig_with_a_token_is_read_by_kopf(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig(tmp_path / "kc", {"token": "t0k"})))
    info = from_kubeconfig(kopf.OperatorSettings())
    assert info is not None and info.server == "https://k.example:6443" and info.token == "t0k"


def test_kubeconfig_with_an_exec_plugin_is_left_to_the_client_library(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugin = {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "gke-auth"}}
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig(tmp_path / "kc", plugin)))
    assert from_kubeconfig(kopf.OperatorSettings()) is None


def test_in_cluster_needs_the_service_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert in_cluster(kopf.OperatorSettings()) is None
