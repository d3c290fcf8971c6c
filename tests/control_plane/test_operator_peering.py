"""Two operator replicas with the chart's kopf peering, against a real API server: exactly
one of them acts on a Sweep (one RayJob, one RayJobCreated Event); when it dies, the other
takes over."""

from __future__ import annotations

import signal

from support.control_plane import ChartOperator, ControlPlane, wait_for_json
from support.operator import sweep_body

RELEASE, NS, WATCHED = "tunix-rt-peer", "tunix-rt-peer", "ml-peer"
LIFETIME = {"TUNIX_RT_PEERING_LIFETIME": "15"}
"""Each replica's peering entry holds 15 s, not kopf's 60 (``operator.extraEnv`` sets it
the same way): the survivor takes over that long after the killed one's last keep-alive,
and the test waits for that, not for a minute of nothing."""


def created_events(plane: ControlPlane, name: str) -> int:
    items = plane.get_json("events", "-n", WATCHED, "--field-selector",
                           f"involvedObject.name={name},reason=RayJobCreated")["items"]  # fmt: skip
    return sum(e.get("count") or 1 for e in items)


def test_two_replicas_with_peering_one_acts(installed: ControlPlane, store_uri: str) -> None:
    plane = installed
    plane.kubectl("create", "namespace", WATCHED)
    plane.helm("install", RELEASE, "charts/tunix-rt", "-n", NS, "--create-namespace",
               "-f", plane.images_values(), "--set", f"watch.namespaces={{{WATCHED}}}",
               "--set", "peering.enabled=true",
               "--set", "storage.uri=s3://bucket/peer")  # fmt: skip
    replicas = [ChartOperator(plane, namespace=NS, deployment=RELEASE, storage=store_uri,
                              extra_env=LIFETIME).start() for _ in range(2)]  # fmt: skip
    try:
        plane.apply(sweep_body("peer-one", WATCHED))
        wait_for_json(plane, "the RayJob",
                      lambda: plane.kubectl("-n", WATCHED, "get", "rayjob", "sweep-peer-one",
                                            check=False).returncode == 0)  # fmt: skip
        wait_for_json(plane, "Pending",
                      lambda: (plane.get_json("sweep", "peer-one", "-n", WATCHED).get("status")
                               or {}).get("phase") == "Pending")  # fmt: skip
        assert created_events(plane, "peer-one") == 1
        acting = [
            r for r in replicas if "RayJobCreated" in r.output() or "sweep-peer-one" in r.output()
        ]
        assert len(acting) <= 1, [r.output()[-2000:] for r in replicas]

        # The one that acts dies (kill -9): the other resumes once the peering entry expires.
        leader = acting[0] if acting else replicas[0]
        leader.kill(signal.SIGKILL)
        plane.apply(sweep_body("peer-two", WATCHED))
        wait_for_json(plane, "the survivor's RayJob",
                      lambda: plane.kubectl("-n", WATCHED, "get", "rayjob", "sweep-peer-two",
                                            check=False).returncode == 0, timeout=240)  # fmt: skip
        # The Event follows the RayJob: wait for it, then check there is only one.
        wait_for_json(plane, "the survivor's RayJobCreated Event",
                      lambda: created_events(plane, "peer-two"))  # fmt: skip
        assert created_events(plane, "peer-two") == 1
    finally:
        for replica in replicas:
            replica.kill(signal.SIGTERM)
