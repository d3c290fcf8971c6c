"""The README's "Run on Kubernetes" commands, run in the order written against a real API
server with the chart installed and its operator running as the chart's ServiceAccount."""

from __future__ import annotations

from support.control_plane import ChartOperator, ControlPlane, wait_for_json
from support.readme import kubernetes_quick_path


def test_readme_kubernetes_commands_run_in_order(operator: ChartOperator) -> None:
    plane = operator.plane
    applied: list[tuple[str, str]] = []
    commands = kubernetes_quick_path()
    start = next(i for i, c in enumerate(commands) if c[0] == "kubectl" and "apply" in c)
    assert start > 0 and any(c[0] == "helm" for c in commands[:start])  # conftest ran those
    for command in commands[start:]:
        args = [a for a in command[1:] if a not in ("-w", "--watch")]  # a watch never ends
        out = plane.run(command[0], *args)
        if "apply" in args:
            ns = args[args.index("-n") + 1]
            applied += [(ns, line.split()[0]) for line in out.stdout.splitlines() if line]
    kinds = {ref.split("/")[0] for _, ref in applied}
    assert kinds == {"sweep.tunixrt.io", "rehearsal.tunixrt.io"}, applied

    # The Sweep it applied gets its RayJob in the watched namespace, owned by the Sweep.
    ns, ref = next((ns, ref) for ns, ref in applied if ref.startswith("sweep."))
    name = ref.split("/")[1]
    rayjob = wait_for_json(
        plane,
        f"RayJob sweep-{name}",
        lambda: (
            plane.kubectl(
                "-n", ns, "get", "rayjob", f"sweep-{name}", "-o", "json", check=False
            ).stdout
        ),
    )
    assert f'"name": "{name}"' in rayjob and '"kind": "Sweep"' in rayjob
    table = plane.kubectl("-n", ns, "get", "sweeps").stdout
    assert name in table and "PHASE" in table.upper()


def test_chart_objects_are_all_on_the_server(installed: ControlPlane) -> None:
    """Every object of the rendered release was accepted and is there to read back."""
    manifest = installed.helm("get", "manifest", "tunix-rt", "-n", "tunix-rt-system").stdout
    refs = installed.kubectl("get", "-f", "-", "-o", "name", input=manifest).stdout.split()
    kinds = {r.split("/")[0] for r in refs}
    assert {"deployment.apps", "serviceaccount", "role.rbac.authorization.k8s.io",
            "rolebinding.rbac.authorization.k8s.io", "service"} <= kinds, kinds  # fmt: skip
    for crd in ("sweeps.tunixrt.io", "rehearsals.tunixrt.io"):
        got = installed.get_json("crd", crd)
        established = {c["type"]: c["status"] for c in got["status"]["conditions"]}
        assert established["Established"] == "True" and established["NamesAccepted"] == "True"
