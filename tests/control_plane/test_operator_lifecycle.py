"""The operator's whole job against a real API server, logged in as the chart's
ServiceAccount: watch, RayJobs, Events, status through the status subresource, conditions
that ``kubectl wait`` reads, spec edits, deletion with the finalizer, garbage collection."""

from __future__ import annotations

import json
from typing import Any

import pytest

from support.argocd import health
from support.control_plane import ChartOperator, ControlPlane, wait_for_json
from support.operator import sweep_body, write_summary, write_trial
from tunix_rt.api.trial import TrialState
from tunix_rt.storage import Store

NS = "ml-sweeps"  # the README's watched namespace
SA = "system:serviceaccount:tunix-rt-system:tunix-rt"


def status_phase(plane: ControlPlane, name: str, phase: str) -> Any:
    return wait_for_json(
        plane, f"Sweep {name} {phase}",
        lambda: (obj := plane.get_object("sweep", NS, name)) and
        (obj.get("status") or {}).get("phase") == phase and obj,
    )  # fmt: skip


def job_status(plane: ControlPlane, name: str, **status: str) -> None:
    """What the KubeRay operator would write (it is not running in this suite)."""
    plane.kubectl("-n", NS, "patch", "rayjob", name, "--subresource=status", "--type=merge",
                  "-p", json.dumps({"status": status}))  # fmt: skip


def events_for(plane: ControlPlane, name: str) -> list[dict[str, Any]]:
    items = plane.get_json("events", "-n", NS, "--field-selector", f"involvedObject.name={name}")
    return list(items["items"])


def new_sweep(plane: ControlPlane, name: str, **spec: Any) -> dict[str, Any]:
    plane.apply(sweep_body(name, NS, **spec))
    return dict(
        wait_for_json(
            plane, f"RayJob sweep-{name}", lambda: plane.get_object("rayjob", NS, f"sweep-{name}")
        )
    )


def test_sweep_runs_to_success_with_kubectl_wait(operator: ChartOperator, store_uri: str) -> None:
    plane, store = operator.plane, Store(store_uri)
    rayjob = new_sweep(plane, "cp-ok")
    owner = rayjob["metadata"]["ownerReferences"][0]
    sweep = plane.get_object("sweep", NS, "cp-ok")
    assert sweep and owner["uid"] == sweep["metadata"]["uid"] and owner["controller"] is True
    pending = status_phase(plane, "cp-ok", "Pending")
    assert pending["status"]["observedGeneration"] == pending["metadata"]["generation"] == 1

    job_status(plane, "sweep-cp-ok", jobDeploymentStatus="Running", jobStatus="RUNNING")
    trials = [
        write_trial(store, NS, "cp-ok", "t_00000", TrialState.SUCCEEDED, 0.5, learningRate=0.001),
        write_trial(store, NS, "cp-ok", "t_00001", TrialState.SUCCEEDED, 0.75, learningRate=0.003),
    ]
    write_summary(store, NS, "cp-ok", trials, best="t_00001")
    job_status(plane, "sweep-cp-ok", jobDeploymentStatus="Complete", jobStatus="SUCCEEDED")
    plane.kubectl("-n", NS, "wait", "sweep/cp-ok", "--for=condition=Succeeded", "--timeout=120s")
    plane.kubectl("-n", NS, "wait", "sweep/cp-ok", "--for=condition=Reconciling=False",
                  "--timeout=60s")  # fmt: skip
    done = plane.get_object("sweep", NS, "cp-ok")
    assert done is not None
    status = done["status"]  # written through the status subresource, kept by the server
    assert status["phase"] == "Succeeded" and status["primaryScore"] == 0.75
    assert status["bestTrial"] == {"id": "t_00001", "params": {"learningRate": 0.003},
                                   "primaryScore": 0.75}  # fmt: skip
    assert [t["id"] for t in status["trials"]] == ["t_00000", "t_00001"]
    table = plane.kubectl("-n", NS, "get", "sweep", "cp-ok").stdout.split("\n")
    header, row = table[0].split(), table[1].split()
    assert "Succeeded" in row and "0.75" in row and "2/2" in " ".join(row), (header, row)
    reasons = {e["reason"] for e in events_for(plane, "cp-ok")}  # Events the server took
    assert {"RayJobCreated", "Succeeded"} <= reasons, reasons
    assert health(done) == ("Healthy", health(done)[1])  # Argo CD's Lua on the stored object


def test_failed_sweep_is_stalled_and_waitable(operator: ChartOperator) -> None:
    plane = operator.plane
    new_sweep(plane, "cp-fail")
    job_status(plane, "sweep-cp-fail", jobDeploymentStatus="Failed", jobStatus="FAILED",
               message="driver exited 1")  # fmt: skip
    plane.kubectl("-n", NS, "wait", "sweep/cp-fail", "--for=condition=Reconciling=False",
                  "--timeout=120s")  # fmt: skip
    plane.kubectl("-n", NS, "wait", "sweep/cp-fail", "--for=condition=Stalled",
                  "--timeout=30s")  # fmt: skip
    failed = plane.get_object("sweep", NS, "cp-fail")
    assert failed is not None and failed["status"]["phase"] == "Failed"
    assert health(failed)[0] == "Degraded"
    warnings = [e for e in events_for(plane, "cp-fail") if e["type"] == "Warning"]
    assert warnings, "a failed Sweep posts a Warning Event"


def test_spec_edit_while_running_is_recorded_not_applied(operator: ChartOperator) -> None:
    plane = operator.plane
    rayjob = new_sweep(plane, "cp-edit")
    job_status(plane, "sweep-cp-edit", jobDeploymentStatus="Running", jobStatus="RUNNING")
    status_phase(plane, "cp-edit", "Running")
    plane.kubectl("-n", NS, "patch", "sweep", "cp-edit", "--type=merge",
                  "-p", '{"spec": {"maxTrials": 6}}')  # fmt: skip
    edited = wait_for_json(
        plane, "SpecChangeIgnored",
        lambda: (obj := plane.get_object("sweep", NS, "cp-edit")) and any(
            c["type"] == "SpecChangeIgnored" and c["status"] == "True"
            for c in obj["status"].get("conditions", [])) and obj,
    )  # fmt: skip
    assert edited["metadata"]["generation"] == 2  # the server bumps it, not the operator
    after = plane.get_object("rayjob", NS, "sweep-cp-edit")
    assert after and after["spec"] == rayjob["spec"], "the running RayJob keeps its spec"


def test_deleting_a_sweep_removes_its_rayjob(operator: ChartOperator) -> None:
    plane = operator.plane
    new_sweep(plane, "cp-del")
    status_phase(plane, "cp-del", "Pending")
    sweep = plane.get_object("sweep", NS, "cp-del")
    assert sweep and "tunixrt.io/finalizer" in sweep["metadata"]["finalizers"]
    plane.kubectl("-n", NS, "delete", "sweep", "cp-del", "--timeout=120s")
    wait_for_json(
        plane, "the RayJob gone", lambda: plane.get_object("rayjob", NS, "sweep-cp-del") is None
    )


def test_garbage_collector_removes_rayjobs_the_operator_never_saw_deleted(
    operator: ChartOperator,
) -> None:
    """With the operator stopped (no finalizer run), the real garbage collector still
    removes every RayJob owned by the Sweep, of every attempt."""
    plane = operator.plane
    new_sweep(plane, "cp-gc")
    sweep = plane.get_object("sweep", NS, "cp-gc")
    assert sweep is not None
    owner = {"apiVersion": "tunixrt.io/v1alpha1", "kind": "Sweep", "name": "cp-gc",
             "uid": sweep["metadata"]["uid"], "controller": False,
             "blockOwnerDeletion": True}  # fmt: skip
    base = plane.get_object("rayjob", NS, "sweep-cp-gc")
    assert base is not None
    for attempt in (2, 3):  # what two retries leave (sweep-<name>-<attempt>, owned the same)
        body = {"apiVersion": "ray.io/v1", "kind": "RayJob",
                "metadata": {"name": f"sweep-cp-gc-{attempt}", "namespace": NS,
                             "labels": base["metadata"].get("labels", {}),
                             "ownerReferences": [owner]},
                "spec": base["spec"]}  # fmt: skip
        plane.apply(body)
    plane.kubectl("-n", NS, "patch", "sweep", "cp-gc", "--type=json",
                  "-p", '[{"op": "remove", "path": "/metadata/finalizers"}]')  # fmt: skip
    plane.kubectl("-n", NS, "delete", "sweep", "cp-gc", "--wait=true", "--timeout=60s")

    def left() -> list[str]:
        names = plane.kubectl("-n", NS, "get", "rayjobs", "-o", "name").stdout.split()
        return [n for n in names if "sweep-cp-gc" in n]

    wait_for_json(plane, "every RayJob of cp-gc collected", lambda: not left(), timeout=120)


FORBIDDEN = [
    ("create", "pods", NS), ("get", "secrets", NS), ("list", "secrets", "tunix-rt-system"),
    ("delete", "namespaces", ""), ("create", "rayjobs.ray.io", "default"),
    ("patch", "sweeps.tunixrt.io", "default"), ("create", "clusterrolebindings", ""),
    ("update", "sweeps.tunixrt.io", NS), ("create", "pods/exec", NS),
]  # fmt: skip
ALLOWED = [
    ("create", "rayjobs.ray.io", NS), ("delete", "rayjobs.ray.io", NS),
    ("patch", "sweeps.tunixrt.io/status", NS), ("patch", "rehearsals.tunixrt.io/status", NS),
    ("watch", "sweeps.tunixrt.io", NS), ("create", "events", NS),
    ("list", "customresourcedefinitions.apiextensions.k8s.io", ""),
]  # fmt: skip


@pytest.mark.parametrize(("verb", "resource", "ns"), FORBIDDEN + ALLOWED)
def test_service_account_has_exactly_the_verbs_it_needs(
    installed: ControlPlane, verb: str, resource: str, ns: str
) -> None:
    where = ["-n", ns] if ns else []
    out = installed.kubectl("auth", "can-i", verb, resource, *where, f"--as={SA}", check=False)
    expected = "yes" if (verb, resource, ns) in ALLOWED else "no"
    assert out.stdout.strip() == expected, (verb, resource, ns, out.stdout, out.stderr)


def test_kubectl_explain_reads_the_crd_schema(installed: ControlPlane) -> None:
    out = installed.kubectl("explain", "sweep.spec").stdout
    for field in ("searchSpace", "maxTrials", "budget", "trainer", "objective"):
        assert field in out, field
    deep = installed.kubectl("explain", "sweep.spec.budget.smokeSteps").stdout
    assert "integer" in deep
