"""KubeLivePhases: every Sweep and Rehearsal the API server holds, listed through the
operator's API client, reused for ``ttl`` seconds, the last answer kept when the API
cannot be reached."""

from __future__ import annotations

from typing import Any

from tunix_rt.kuberay.client import KubeApiError
from tunix_rt.ui.live import KubeLivePhases


class FakeApi:
    """Answers list requests from a dict of path -> items; records the paths asked."""

    def __init__(self, items: dict[str, list[dict[str, Any]]]) -> None:
        self.items = items
        self.asked: list[str] = []
        self.down = False

    async def request(self, method: str, path: str) -> dict[str, Any]:
        assert method == "GET"
        self.asked.append(path)
        if self.down:
            raise KubeApiError(0, "ClientConnectorError", "connection refused")
        return {"items": self.items.get(path, [])}


def obj(namespace: str, name: str, phase: str | None) -> dict[str, Any]:
    return {
        "metadata": {"namespace": namespace, "name": name},
        "status": {"phase": phase} if phase else {},
    }


async def test_lists_both_kinds_across_the_cluster() -> None:
    api = FakeApi(
        {
            "/apis/tunixrt.io/v1alpha1/sweeps": [obj("a", "s1", "Running"), obj("b", "s2", None)],
            "/apis/tunixrt.io/v1alpha1/rehearsals": [obj("a", "r1", "Succeeded")],
        }
    )
    phases = await KubeLivePhases(api)()
    assert phases == {
        ("a", "Sweep", "s1"): "Running",
        ("b", "Sweep", "s2"): "Pending",  # no status yet
        ("a", "Rehearsal", "r1"): "Succeeded",
    }


async def test_lists_only_its_namespaces_when_given() -> None:
    api = FakeApi(
        {"/apis/tunixrt.io/v1alpha1/namespaces/team-a/sweeps": [obj("team-a", "s", "Failed")]}
    )
    phases = await KubeLivePhases(api, ["team-a"])()
    assert phases == {("team-a", "Sweep", "s"): "Failed"}
    assert api.asked == [
        "/apis/tunixrt.io/v1alpha1/namespaces/team-a/sweeps",
        "/apis/tunixrt.io/v1alpha1/namespaces/team-a/rehearsals",
    ]


async def test_reuses_its_answer_for_ttl_seconds_and_keeps_it_when_the_api_is_down() -> None:
    api = FakeApi({"/apis/tunixrt.io/v1alpha1/sweeps": [obj("a", "s", "Running")]})
    live = KubeLivePhases(api, ttl=3600)
    first = await live()
    await live()
    assert len(api.asked) == 2  # one list per kind, once
    live.ttl = 0
    api.down = True
    assert await live() == first  # the API is down: the last answer stands
    api.down = False
    api.items["/apis/tunixrt.io/v1alpha1/sweeps"] = [obj("a", "s", "Succeeded")]
    assert await live() == {("a", "Sweep", "s"): "Succeeded"}
