"""RBAC least privilege (issue 14, item 7): the verbs each rendered Role / ClusterRole
grants, per resource, against an explicit table of what the operator calls.

Where each verb comes from:

* kopf (1.45): list + watch every served resource (``fetching``/``watching``), merge-
  and JSON-patch its finalizer and annotations (``patching.patch_obj``), patch the
  ``/status`` subresource, POST Events (``events.post_event``; it never patches one),
  list + watch CRDs and namespaces (``observation``), and, with peering, list + watch +
  patch its peering object.
* kopf: list + watch RayJobs (``tunix_rt.controller.wake``: a RayJob's status change
  moves its pending parent on).
* ``tunix_rt.kuberay.client``: RayJobs GET / POST / DELETE by name, Sweeps GET (a
  Rehearsal's ``fromSweep``), Sweeps and Rehearsals GET and ``/status`` PATCH (a pending
  parent woken by its RayJob's watch event).
* The API server: ``blockOwnerDeletion`` on the RayJob's ownerReference needs
  ``update`` on the owner's ``finalizers`` subresource.

Any verb beyond the table fails the test; so does a missing one.
"""

from __future__ import annotations

from typing import Any

import helm_python as helm
import pytest

from helm.test_chart import VALUE_SETS, Manifest, render

Grants = dict[tuple[str, str], set[str]]

WORKLOAD: Grants = {
    ("tunixrt.io", "sweeps"): {"get", "list", "watch", "patch"},
    ("tunixrt.io", "rehearsals"): {"get", "list", "watch", "patch"},
    ("tunixrt.io", "sweeps/status"): {"patch"},
    ("tunixrt.io", "rehearsals/status"): {"patch"},
    ("tunixrt.io", "sweeps/finalizers"): {"update"},
    ("tunixrt.io", "rehearsals/finalizers"): {"update"},
    ("ray.io", "rayjobs"): {"get", "list", "watch", "create", "delete"},
    ("", "events"): {"create"},
}
"""In each watched namespace (a Role each), or cluster-wide (the one ClusterRole)."""

DISCOVERY: Grants = {
    ("apiextensions.k8s.io", "customresourcedefinitions"): {"list", "watch"},
    ("", "namespaces"): {"list", "watch"},
}
"""Cluster-wide, read-only: kopf's observation of CRDs and namespaces."""

PEERING_NS: Grants = {("kopf.dev", "kopfpeerings"): {"list", "watch", "patch"}}
PEERING_CLUSTER: Grants = {("kopf.dev", "clusterkopfpeerings"): {"list", "watch", "patch"}}


def grants(role: Manifest) -> Grants:
    out: Grants = {}
    for rule in role.get("rules", []):
        assert not rule.get("resourceNames") or rule["apiGroups"] == ["kopf.dev"]
        assert not rule.get("nonResourceURLs"), "no non-resource URLs"
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                out.setdefault((group, resource), set()).update(rule["verbs"])
    return out


def expected(values: dict[str, Any]) -> dict[str, Grants]:
    """kind/name-ish key → the table that role must grant exactly."""
    watch = values.get("watch", {})
    peering = values.get("peering", {}).get("enabled", False)
    out: dict[str, Grants] = {}
    if watch.get("allNamespaces"):
        out["ClusterRole"] = WORKLOAD | (PEERING_CLUSTER if peering else {}) | DISCOVERY
        return out
    namespaces = watch.get("namespaces") or ["tunix-system"]
    for ns in namespaces:
        out[f"Role/{ns}"] = WORKLOAD | (PEERING_NS if peering else {})
    out["ClusterRole/discovery"] = DISCOVERY
    return out


def actual(docs: list[Manifest]) -> dict[str, Grants]:
    out: dict[str, Grants] = {}
    for doc in docs:
        if doc["kind"] == "Role":
            out[f"Role/{doc['metadata']['namespace']}"] = grants(doc)
        elif doc["kind"] == "ClusterRole":
            key = (
                "ClusterRole/discovery"
                if doc["metadata"]["name"].endswith("-discovery")
                else "ClusterRole"
            )
            assert key not in out, f"two {key}s"
            out[key] = grants(doc)
    return out


@pytest.mark.reliability(
    "security",
    "RBAC: every rendered Role grants exactly what is called",
    result="no verb beyond the table of the operator's calls, none missing (5 value sets)",
)
@pytest.mark.parametrize("values", sorted(VALUE_SETS))
def test_roles_grant_exactly_the_verbs_the_operator_calls(chart: helm.Chart, values: str) -> None:
    docs, _ = render(chart, VALUE_SETS[values])
    want = expected(VALUE_SETS[values])
    have = actual(docs)
    assert set(have) == set(want), f"{values}: roles {sorted(have)} != {sorted(want)}"
    for role, table in want.items():
        got = have[role]
        extra = {
            f"{g or 'core'}/{r}: {sorted(got[(g, r)] - table.get((g, r), set()))}"
            for (g, r) in got
            if got[(g, r)] - table.get((g, r), set())
        }
        missing = {
            f"{g or 'core'}/{r}: {sorted(table[(g, r)] - got.get((g, r), set()))}"
            for (g, r) in table
            if table[(g, r)] - got.get((g, r), set())
        }
        assert not extra, f"{values} {role} grants more than the operator calls: {extra}"
        assert not missing, f"{values} {role} lacks what the operator calls: {missing}"


def test_without_peering_no_peering_rights(chart: helm.Chart) -> None:
    docs, _ = render(chart, {"watch": {"allNamespaces": True}})
    (role,) = [d for d in docs if d["kind"] == "ClusterRole"]
    assert not any(g == "kopf.dev" for g, _ in grants(role))


def test_table_covers_the_client_calls() -> None:
    """The operator's own client talks to RayJobs and Sweeps only (the table lists them)."""
    from tunix_rt.kuberay import client

    refs = {(v.group, v.plural) for v in vars(client).values() if isinstance(v, client.ResourceRef)}
    assert refs <= {(g, r) for g, r in WORKLOAD}
