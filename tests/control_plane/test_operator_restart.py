"""kill -9 of the operator with 20 Sweeps in flight, against a real API server: after the
restart every Sweep has exactly one RayJob and no Event was posted twice."""

from __future__ import annotations

import collections
import signal

from support.control_plane import ChartOperator, wait_for_json
from support.operator import sweep_body

NS = "ml-sweeps"
COUNT = 20


def test_kill_9_with_20_sweeps_in_flight_converges_without_duplicates(
    operator: ChartOperator,
) -> None:
    plane = operator.plane
    names = [f"restart-{i:02d}" for i in range(COUNT)]
    plane.apply({"apiVersion": "v1", "kind": "List",
                 "items": [sweep_body(n, NS) for n in names]})  # fmt: skip

    def rayjobs() -> list[str]:
        items = plane.get_json("rayjobs", "-n", NS, "-l", "tunixrt.io/sweep")["items"]
        labels = [i["metadata"]["labels"]["tunixrt.io/sweep"] for i in items]
        return [n for n in labels if n.startswith("restart-")]

    wait_for_json(plane, "the first RayJobs", lambda: len(rayjobs()) >= 3, timeout=120)
    operator.kill(signal.SIGKILL)  # mid-flight: some Sweeps done, some not started
    by_first = set(rayjobs())  # what the killed process created (it can create no more)
    operator.start()

    def all_pending() -> bool:
        items = plane.get_json("sweeps", "-n", NS)["items"]
        phases = {i["metadata"]["name"]: (i.get("status") or {}).get("phase") for i in items}
        return all(phases.get(n) == "Pending" for n in names)

    wait_for_json(plane, "20 Sweeps Pending", all_pending, timeout=240)
    per_sweep = collections.Counter(rayjobs())
    assert per_sweep == dict.fromkeys(names, 1), per_sweep

    events = plane.get_json("events", "-n", NS)["items"]
    posted = collections.Counter(
        (e["involvedObject"]["name"], e["reason"], e["message"])
        for e in events
        if e["involvedObject"]["name"].startswith("restart-")
        for _ in range(e.get("count") or 1)
    )
    twice = {k: v for k, v in posted.items() if v > 1}
    assert not twice, twice
    created = {name for name, reason, _ in posted if reason in ("RayJobCreated", "RayJobAdopted")}
    # kill -9 drops the Events kopf had queued but not yet posted, so a RayJob the first
    # process created just before the kill may have none (seen once on a loaded machine);
    # every RayJob the restarted process created or adopted has its Event.
    missing = set(names) - created
    assert missing <= by_first, (missing, by_first)
    assert created <= set(names)
