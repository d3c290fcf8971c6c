"""The thin RayJob client over real HTTP (kmock): create, adopt (also after a 409), refuse
foreign objects, delete only what is ours."""

from __future__ import annotations

from typing import Any

import kmock
import kopf
import pytest

from tunix_rt.api.sweep import SweepSpec
from tunix_rt.kuberay import Owner, build_sweep_rayjob
from tunix_rt.kuberay.client import (
    RAYJOBS,
    ForeignObjectError,
    KubeApiError,
    KubeClient,
    RayJobClient,
    ResourceRef,
)

SPEC = SweepSpec.model_validate(
    {"searchSpace": {"learningRate": {"type": "uniform", "low": 0.001, "high": 0.01}}}
)


def manifest(uid: str = "uid-1") -> dict[str, Any]:
    owner = Owner("tunixrt.io/v1alpha1", "Sweep", "s", uid)
    return build_sweep_rayjob(name="s", namespace="ml", spec=SPEC, owner=owner)


@pytest.fixture
def server(kmock: kmock.KubernetesEmulator) -> kmock.KubernetesEmulator:
    kmock.resources["ray.io/v1/rayjobs"] = {
        "kind": "RayJob", "singular": "rayjob", "namespaced": True,
        "verbs": ["get", "list", "create", "delete", "patch"],
    }  # fmt: skip
    return kmock


@pytest.fixture
async def client(server: kmock.KubernetesEmulator) -> Any:
    kube = KubeClient(kopf.ConnectionInfo(server=str(server.url), insecure=True))
    yield RayJobClient(kube)
    await kube.close()


class LaggingClient(KubeClient):
    """A GET that does not see the object (deleted between the 409 and the read)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.misses = 1

    async def get(self, ref: ResourceRef, namespace: str, name: str) -> dict[str, Any] | None:
        if self.misses:
            self.misses -= 1
            return None
        return await super().get(ref, namespace, name)


async def test_create_then_adopt(client: RayJobClient, server: kmock.KubernetesEmulator) -> None:
    first = await client.ensure(manifest(), "uid-1")
    assert first.action == "created"
    assert first.obj["metadata"]["name"] == "sweep-s"
    again = await client.ensure(manifest(), "uid-1")
    assert again.action == "adopted"
    assert len([k for k in server.objects if k[0] == "ray.io/v1/rayjobs"]) == 1


async def test_a_409_then_a_vanished_object_is_left_to_a_retry(
    client: RayJobClient, server: kmock.KubernetesEmulator
) -> None:
    """Created first, looked up only on a 409; gone by then: the 409 goes to the caller
    (the handler retries), nothing is created twice."""
    await client.ensure(manifest(), "uid-1")
    lagging = RayJobClient(
        LaggingClient(kopf.ConnectionInfo(server=str(server.url), insecure=True))
    )
    try:
        with pytest.raises(KubeApiError) as info:
            await lagging.ensure(manifest(), "uid-1")  # POST gets 409, the GET misses
        result = await lagging.ensure(manifest(), "uid-1")  # the retry adopts it
    finally:
        await lagging.kube.close()
    assert info.value.status == 409
    assert result.action == "adopted"
    assert result.obj["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    assert len([k for k in server.objects if k[0] == "ray.io/v1/rayjobs"]) == 1


async def test_foreign_objects_are_neither_adopted_nor_deleted(client: RayJobClient) -> None:
    await client.ensure(manifest("someone-else"), "someone-else")
    with pytest.raises(ForeignObjectError, match="not owned by this object"):
        await client.ensure(manifest("uid-1"), "uid-1")
    assert not await client.delete_owned("ml", "sweep-s", "uid-1", {"tunixrt.io/sweep": "s"})
    assert await client.get("ml", "sweep-s") is not None
    assert await client.delete_owned("ml", "sweep-s", "someone-else", {})
    assert await client.get("ml", "sweep-s") is None
    assert not await client.delete_owned("ml", "sweep-s", "someone-else", {})  # already gone


async def test_api_errors_carry_status_and_message(client: RayJobClient) -> None:
    with pytest.raises(KubeApiError) as info:  # listing a resource the server lacks
        await client.kube.request("GET", ResourceRef("ray.io", "v9", "nothings").path("ml"))
    assert info.value.status == 404 and info.value.reason == "Resource Not Found"
    assert "not declared" in info.value.message
    assert await client.kube.get(RAYJOBS, "ml", "absent") is None
