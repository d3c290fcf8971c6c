"""``helm upgrade`` and ``helm uninstall`` of the chart on a real API server, and what
happens to the CRDs and to existing Sweeps (docs/kubernetes.md says the same)."""

from __future__ import annotations

from support.control_plane import ControlPlane
from support.operator import sweep_body

RELEASE, NS, WATCHED = "tunix-rt-b", "tunix-rt-b", "ml-b"


def test_upgrade_then_uninstall_keeps_crds_and_sweeps(installed: ControlPlane) -> None:
    plane = installed
    plane.kubectl("create", "namespace", WATCHED)
    plane.helm("install", RELEASE, "charts/tunix-rt", "-n", NS, "--create-namespace",
               "-f", plane.images_values(), "--set", f"watch.namespaces={{{WATCHED}}}",
               "--set", "storage.uri=s3://bucket/tunix-rt-b", "--wait=false")  # fmt: skip
    plane.apply(sweep_body("kept", WATCHED))

    plane.helm("upgrade", RELEASE, "charts/tunix-rt", "-n", NS, "--reuse-values",
               "--set", "operator.extraArgs={--verbose}")  # fmt: skip
    history = plane.helm("history", RELEASE, "-n", NS, "-o", "json").stdout
    assert '"revision":2' in history.replace(" ", "") and '"status":"deployed"' in history.replace(
        " ", ""
    )
    deploy = plane.get_json("deployment", RELEASE, "-n", NS)
    assert "--verbose" in deploy["spec"]["template"]["spec"]["containers"][0]["args"]

    plane.helm("uninstall", RELEASE, "-n", NS, "--wait")
    for kind in ("deployment", "serviceaccount", "service"):
        out = plane.kubectl("get", kind, RELEASE, "-n", NS, check=False)
        assert out.returncode != 0 and "NotFound" in out.stderr, (kind, out.stdout)
    role = plane.kubectl("get", "role", RELEASE, "-n", WATCHED, check=False)
    assert role.returncode != 0, "the uninstall left the Role in the watched namespace"
    # Helm never deletes what it installed from crds/: the CRDs, and so every Sweep, stay.
    plane.kubectl("get", "crd", "sweeps.tunixrt.io", "rehearsals.tunixrt.io")
    assert plane.get_json("sweep", "kept", "-n", WATCHED)["metadata"]["name"] == "kept"
