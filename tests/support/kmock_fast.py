"""An API server emulator that keeps up under load (TESTING.md, "kmock under load").

kmock 0.8 keeps every request it has served and, for each new one, walks that whole
history through its reaction filters (``request in payload._source``); each GET, PATCH
or DELETE of one object walks every stored object. Both grow with the run, so a few
hundred Sweeps make the emulator, not the operator, the thing measured.

:class:`FastApiServer` is :class:`support.operator.ApiServer` (same API-server
behaviour) with two changes, by subclassing, not by editing kmock:

* a request is dropped from the history once it is answered (in-flight requests, open
  watches included, stay: the filters still see what they need);
* a request that names one object is answered by a key lookup.

Measured here: flat per-request cost (well under a millisecond at hundreds of objects).
Tests that count requests through kmock's DSL (``kmock[...]``) must keep ``ApiServer``;
this server's own ``writes`` log and ``count()`` still work.
"""

from __future__ import annotations

import time
from typing import Any

import attrs
import kmock

from support.operator import ApiServer


def _created_key(request: kmock.Request) -> tuple[str, str, str] | None:
    """(resource, namespace, name) of a CREATE (the name is in the body), else None."""
    if request.action != kmock.action.CREATE or request.resource is None:
        return None
    res = request.resource
    meta = (request.data or {}).get("metadata") or {}
    return (
        f"{res.group}/{res.version}/{res.plural}".lstrip("/"),
        str(request.namespace or meta.get("namespace")),
        str(meta.get("name")),
    )


@attrs.define(kw_only=True)
class FastApiServer(ApiServer):
    served: int = attrs.field(default=0, init=False)
    """Requests answered (the history itself is not kept)."""

    created: dict[tuple[str, str, str], float] = attrs.field(factory=dict, init=False)
    """(resource, namespace, name) → time.monotonic() when its first CREATE was answered."""

    creates: dict[tuple[str, str, str], int] = attrs.field(factory=dict, init=False)
    """(resource, namespace, name) → CREATE requests made for it (refused ones included)."""

    async def _handle(self, request: kmock.Request) -> Any:
        key = _created_key(request)
        if key is not None:
            self.creates[key] = self.creates.get(key, 0) + 1
        try:
            response = await super()._handle(request)
            if key is not None:
                self.created.setdefault(key, time.monotonic())
            return response
        finally:
            self.served += 1
            self._forget(request)

    def _forget(self, request: kmock.Request) -> None:
        history = self._requests
        for index in range(len(history) - 1, -1, -1):  # recent ones last: found at once
            if history[index] is request:
                del history[index]
                return

    def _KubernetesEmulator__get_objs(self, request: Any, strict: bool) -> list[Any]:
        """By key when the request names one object (kmock scans every object)."""
        if request.name is not None and (strict or request.namespace is not None):
            key = (request.resource, request.namespace, request.name)
            obj = self._objects._objects.get(key)
            return [obj] if obj is not None else []
        objs: list[Any] = super()._KubernetesEmulator__get_objs(request, strict)  # type: ignore[misc]
        return objs


# ----------------------------------------------------------------------------- a process


def _key_text(key: tuple[str, str, str]) -> str:
    return "|".join(key)


def _agent(request: kmock.Request) -> str:
    """Who sent it: ``kopf``, ``tunix-rt-operator`` (the RayJob client) or another client."""
    agent = str((request.headers or {}).get("User-Agent") or "")
    if agent.startswith("kopf/"):
        return "kopf"
    return "tunix-rt-operator" if agent.startswith("tunix-rt-operator") else "other"


@attrs.define(kw_only=True)
class CountingApiServer(FastApiServer):
    """:class:`FastApiServer` that also counts requests by sender (:func:`_agent`)."""

    by_agent: dict[str, int] = attrs.field(factory=dict, init=False)
    by_request: dict[str, int] = attrs.field(factory=dict, init=False)
    """``"<sender> <action> <plural>[/<subresource>]"`` → requests."""
    first: dict[str, float] = attrs.field(factory=dict, init=False)
    """``"<sender> <action> <plural>[/<sub>]|<namespace>|<name>"`` → when the operator
    first made that request for that object (where a Sweep's first second goes)."""

    async def _handle(self, request: kmock.Request) -> Any:
        agent = _agent(request)
        self.by_agent[agent] = self.by_agent.get(agent, 0) + 1
        action = request.action.value if request.action is not None else request.method
        plural = request.resource.plural if request.resource is not None else "-"
        what = f"{agent} {action} {plural}" + (
            f"/{request.subresource}" * bool(request.subresource)
        )
        self.by_request[what] = self.by_request.get(what, 0) + 1
        if agent != "other" and request.name and plural in ("sweeps", "rayjobs"):
            self.first.setdefault(f"{what}|{request.namespace}|{request.name}", time.monotonic())
        return await super()._handle(request)

    def stats(self) -> dict[str, Any]:
        """What a benchmark asks for: requests served (by sender), creates by object."""
        return {
            "served": self.served,
            "by_agent": dict(self.by_agent),
            "by_request": dict(self.by_request),
            "first": dict(self.first),
            "created": {_key_text(k): t for k, t in self.created.items()},
            "creates": {_key_text(k): count for k, count in self.creates.items()},
        }


async def _serve() -> None:
    """Serve until stdin closes; print the URL, then answer each ``stats`` line on stdin
    with a JSON line on stdout."""
    import asyncio
    import json
    import sys

    from support.operator import register_resources

    server = CountingApiServer()
    async with server, kmock.Server(server):
        register_resources(server)
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        print(json.dumps({"url": str(server.url)}), flush=True)
        while line := await reader.readline():
            if line.strip() == b"stats":
                print(json.dumps(server.stats()), flush=True)


if __name__ == "__main__":
    import asyncio

    asyncio.run(_serve())
