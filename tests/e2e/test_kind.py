"""End to end on a real cluster: scripts/kind-e2e.sh (kind, KubeRay, the chart, the images,
examples/sweep-smoke.yaml to Succeeded with a primaryScore).

It needs a Docker engine, kind, kubectl and helm; where any is missing it is skipped with
the reason. Where they are all there it still takes 10-20 minutes and builds a cluster,
so it runs only when asked for: `uv run pytest -m kind -s` (or TUNIX_RT_E2E=1).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "kind-e2e.sh"
TOOLS = ("docker", "kind", "kubectl", "helm")


def missing_prerequisite() -> str | None:
    """Why the end-to-end run cannot happen here, or None when it can."""
    absent = [tool for tool in TOOLS if shutil.which(tool) is None]
    if absent:
        return f"requires a Docker engine and kind; none here ({', '.join(absent)} not on PATH)"
    try:
        info = subprocess.run(["docker", "info"], capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"requires a Docker engine and kind; none here (docker info: {exc})"
    if info.returncode != 0:
        return "requires a Docker engine and kind; none here (docker info fails: no Docker engine)"
    return None


def asked_for(config: pytest.Config) -> bool:
    """`-m kind` (or any marker expression naming kind positively), or TUNIX_RT_E2E=1."""
    markexpr = str(config.getoption("markexpr", "") or "")
    named = "kind" in markexpr.split() and "not kind" not in markexpr
    return named or os.environ.get("TUNIX_RT_E2E") == "1"


@pytest.mark.kind
@pytest.mark.timeout(3600)
def test_smoke_sweep_succeeds_on_kind(request: pytest.FixtureRequest) -> None:
    reason = missing_prerequisite()
    if reason:
        pytest.skip(reason)
    if not asked_for(request.config):
        pytest.skip("kind end-to-end takes 10-20 minutes: run it with -m kind or TUNIX_RT_E2E=1")
    env = dict(os.environ)
    env.setdefault("TUNIX_RT_E2E_TIMEOUT", "1500")
    result = subprocess.run(["bash", str(SCRIPT)], cwd=ROOT, env=env, timeout=3500, check=False)
    assert result.returncode == 0, f"{SCRIPT.name} failed with exit code {result.returncode}"


def test_script_is_a_strict_executable_bash_script() -> None:
    """Checked everywhere, Docker or not: the script stays runnable and fails fast."""
    assert os.access(SCRIPT, os.X_OK)
    text = SCRIPT.read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)
    for step in (
        "kind create cluster",
        "docker build -f Dockerfile",
        "docker build -f images/trainer/Dockerfile",
        "kind load docker-image",
        "kuberay/kuberay-operator",
        "charts/tunix-rt",
        "examples/sweep-smoke.yaml",
        "Succeeded",
        "primaryScore",
    ):
        assert step in text, f"kind-e2e.sh lost its step: {step}"


def test_script_exits_cleanly_without_its_tools(tmp_path: Path) -> None:
    """With none of the tools on PATH it says which one is missing and exits 2, touching nothing."""
    bash = shutil.which("bash")
    assert bash
    for tool in ("dirname", "cat"):
        found = shutil.which(tool)
        assert found
        (tmp_path / tool).symlink_to(found)
    result = subprocess.run(
        [bash, str(SCRIPT)],
        env={"PATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "docker not found" in result.stderr
