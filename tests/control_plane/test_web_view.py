"""The web view from the chart in the simulated cluster (issue 27): a release installed
with ``ui.enabled=true``, the operator run with the args its Deployment gives it and
logged in as its ServiceAccount, a Sweep applied with kubectl; the page lists the Sweep
with the phase the API holds (live), before the Sweep has any files, and follows it."""

from __future__ import annotations

import json
import re
import signal
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.control_plane import REPO, ChartOperator, ControlPlane, wait_for_json
from support.operator import sweep_body
from support.ui_store import build_store

RELEASE_NS = "tunix-rt-ui"
WATCHED = "ui-demo"


def http_get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return int(resp.status), resp.read().decode()


def listed_as(url: str, run: str, phase: str) -> str | None:
    """The list page's row of ``run`` when it shows ``phase`` from the API (live)."""
    status, html = http_get(url)
    row = re.search(rf'<tr data-kind="Sweep" data-run="{run}">(.*?)</tr>', html, re.S)
    if status != 200 or row is None:
        return None
    cells = row.group(1)
    return cells if f"phase-{phase}" in cells and ">live<" in cells else None


@pytest.fixture
def ui_release(installed: ControlPlane, tmp_path: Path) -> Iterator[ControlPlane]:
    """A second release of the chart, beside the README's, with the web view on: its own
    namespace and watched namespace (no clash with the other tests' operator)."""
    plane = installed
    store = build_store(tmp_path / "store")  # runs that are only in the store
    plane.kubectl("create", "namespace", WATCHED)
    plane.helm(
        "install", "tunix-rt", str(REPO / "charts" / "tunix-rt"), "-n", RELEASE_NS,
        "--create-namespace", "--skip-crds", "-f", plane.images_values(),
        "--set", "ui.enabled=true", "--set", f"storage.uri={store.uri}",
        "--set", f"watch.namespaces={{{WATCHED}}}",
    )  # fmt: skip
    try:
        yield plane
    finally:
        plane.helm("uninstall", "tunix-rt", "-n", RELEASE_NS, check=False)
        plane.kubectl("delete", "namespace", WATCHED, RELEASE_NS, "--wait=false", check=False)


def test_the_chart_serves_the_web_view_with_the_live_phase(ui_release: ControlPlane) -> None:
    plane = ui_release
    service = plane.get_json("service", "tunix-rt-ui", "-n", RELEASE_NS)
    assert service["spec"]["ports"][0]["targetPort"] == "ui"
    operator = ChartOperator(plane, namespace=RELEASE_NS).start()
    try:
        url = operator.ui_url
        assert url is not None, "the Deployment has no --ui-port"
        assert http_get(url + "healthz") == (200, "ok\n")
        plane.apply(sweep_body("ui-pending", WATCHED))
        row = wait_for_json(plane, "the Sweep listed Pending (live)",
                            lambda: listed_as(url, f"{WATCHED}/ui-pending", "Pending"))  # fmt: skip
        assert "(no files yet)" in row
        _, html = http_get(url)
        assert 'data-run="team-a/mixed"' in html  # the store's runs, beside the API's

        # The API moves on (what the KubeRay operator would write): so does the page.
        wait_for_json(plane, "the RayJob",
                      lambda: plane.kubectl("-n", WATCHED, "get", "rayjob", "sweep-ui-pending",
                                            check=False).returncode == 0)  # fmt: skip
        plane.kubectl("-n", WATCHED, "patch", "rayjob", "sweep-ui-pending",
                      "--subresource=status", "--type=merge", "-p",
                      json.dumps({"status": {"jobDeploymentStatus": "Running",
                                             "jobStatus": "RUNNING"}}))  # fmt: skip
        wait_for_json(plane, "the Sweep listed Running (live)",
                      lambda: listed_as(url, f"{WATCHED}/ui-pending", "Running"))  # fmt: skip
    finally:
        operator.kill(signal.SIGTERM)
    assert "web view of " in operator.output()
