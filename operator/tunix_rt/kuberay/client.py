"""A thin async client for the few objects the operator reads and writes besides its own.

kopf only watches; this client gets, creates and deletes RayJobs (and reads the Sweep a
Rehearsal refers to) over plain HTTP with the credentials kopf logged in with
(:class:`kopf.ConnectionInfo`), so there is one source of credentials.

``ensure`` is how the operator stays idempotent: GET by the deterministic name first,
create only if absent, and treat a 409 on create as "someone (an earlier operator
process or another replica) created it": read it back and adopt it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

import aiohttp

from tunix_rt import kopf_lean  # noqa: F401  # isort: skip  (before kopf: see there)
import kopf

from tunix_rt.api.common import GROUP, VERSION
from tunix_rt.api.names import label_value
from tunix_rt.kuberay.metadata import MANAGED_BY, MANAGED_BY_LABEL


@dataclass(frozen=True)
class ResourceRef:
    """group/version/plural of a namespaced resource."""

    group: str
    version: str
    plural: str

    def path(self, namespace: str, name: str | None = None, subresource: str | None = None) -> str:
        base = f"/api/{self.version}" if not self.group else f"/apis/{self.group}/{self.version}"
        path = f"{base}/namespaces/{quote(namespace, safe='')}/{self.plural}"
        if name is not None:
            path += f"/{quote(name, safe='')}"
        if subresource:
            path += f"/{subresource}"
        return path

    def __str__(self) -> str:
        return f"{self.plural}.{self.version}.{self.group}" if self.group else self.plural


RAYJOBS = ResourceRef("ray.io", "v1", "rayjobs")
SWEEPS = ResourceRef(GROUP, VERSION, "sweeps")
REHEARSALS = ResourceRef(GROUP, VERSION, "rehearsals")


class KubeApiError(RuntimeError):
    """A Kubernetes API request failed; ``status`` is the HTTP status (0: no response)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"HTTP {status} {reason}: {message}" if status else message)
        self.status = status
        self.reason = reason
        self.message = message


class ForeignObjectError(RuntimeError):
    """An object with the child's name exists but belongs to someone else."""


ConnectionSource = kopf.ConnectionInfo | Callable[[], kopf.ConnectionInfo | None]


class KubeClient:
    """GET / POST / DELETE of namespaced objects, JSON in and out."""

    def __init__(self, connection: ConnectionSource, *, timeout: float = 30.0) -> None:
        self._source = connection
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._info: kopf.ConnectionInfo | None = None
        self._lock = asyncio.Lock()

    def _current(self) -> kopf.ConnectionInfo:
        info = self._source() if callable(self._source) else self._source
        if info is None:
            raise KubeApiError(0, "NotLoggedIn", "no Kubernetes credentials yet (login pending)")
        return info

    async def _session_for(self) -> tuple[aiohttp.ClientSession, str]:
        info = self._current()
        async with self._lock:
            if self._session is None or self._session.closed or info is not self._info:
                if self._session is not None and not self._session.closed:
                    await self._session.close()
                self._session = aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(ssl=info.as_ssl_context()),
                    headers={**info.as_http_headers(), "User-Agent": "tunix-rt-operator"},
                    timeout=self._timeout,
                    trust_env=info.trust_env,
                )
                self._info = info
            return self._session, info.server.rstrip("/")

    async def request(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        content_type: str | None = None,
    ) -> dict[str, Any]:
        session, server = await self._session_for()
        kwargs: dict[str, Any] = {"json": body}
        if content_type is not None:
            kwargs = {"data": json.dumps(body), "headers": {"Content-Type": content_type}}
        try:
            async with session.request(method, server + path, **kwargs) as resp:
                text = await resp.text()
                if resp.status >= 400:
                    reason, message = resp.reason or "", text[:500]
                    try:
                        payload = await resp.json(content_type=None)
                        reason = str(payload.get("reason") or reason)
                        message = str(payload.get("message") or message)
                    except (ValueError, aiohttp.ContentTypeError, AttributeError):
                        pass
                    raise KubeApiError(resp.status, reason, message)
                data = await resp.json(content_type=None) if text else {}
                return data if isinstance(data, dict) else {}
        except (TimeoutError, aiohttp.ClientError) as exc:
            cause = self.cause(exc)
            raise KubeApiError(0, type(exc).__name__, f"{method} {path}: {cause}") from exc

    def cause(self, exc: BaseException) -> str:
        """What went wrong, in words: a timeout prints as an empty string by itself."""
        text = str(exc).strip()
        if isinstance(exc, TimeoutError):
            limit = f" after {self._timeout.total:g} s" if self._timeout.total else ""
            detail = f" ({text})" if text else ""
            return f"timed out{limit}{detail}"
        return text or type(exc).__name__

    async def get(self, ref: ResourceRef, namespace: str, name: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        try:
            return await self.request("GET", ref.path(namespace, name))
        except KubeApiError as exc:
            if exc.status == 404:
                return None
            raise

    async def create(
        self, ref: ResourceRef, namespace: str, body: Mapping[str, Any]
    ) -> dict[str, Any]:
        return await self.request("POST", ref.path(namespace), body)

    async def patch_status(
        self, ref: ResourceRef, namespace: str, name: str, status: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Merge-patch the ``/status`` subresource (what kopf does with a handler's patch)."""
        path = ref.path(namespace, name, "status")
        body = {"status": dict(status)}
        return await self.request("PATCH", path, body, "application/merge-patch+json")

    async def delete(self, ref: ResourceRef, namespace: str, name: str) -> bool:
        """Delete (background propagation); False when it was already gone."""
        try:
            await self.request(
                "DELETE",
                ref.path(namespace, name),
                {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"},
            )
        except KubeApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    async def close(self) -> None:
        async with self._lock:
            if self._session is not None and not self._session.closed:
                await self._session.close()
            self._session = None


def is_owned_by(obj: Mapping[str, Any], owner_uid: str | None, labels: Mapping[str, str]) -> bool:
    """Whether an existing child is ours: owned by the parent's uid, or (no ownerReferences at
    all, e.g. created by an older operator) labelled as ours for this parent."""
    meta = obj.get("metadata") or {}
    refs = meta.get("ownerReferences") or []
    if refs:
        return any(ref.get("uid") == owner_uid for ref in refs if ref.get("controller", True))
    have = meta.get("labels") or {}
    return have.get(MANAGED_BY_LABEL) == MANAGED_BY and all(
        have.get(k) == label_value(v) for k, v in labels.items()
    )


@dataclass(frozen=True)
class Ensured:
    obj: dict[str, Any]
    action: Literal["created", "adopted"]


class RayJobClient:
    """RayJob get / create-or-adopt / delete (and Sweep reads for Rehearsals)."""

    def __init__(self, kube: KubeClient) -> None:
        self.kube = kube

    async def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self.kube.get(RAYJOBS, namespace, name)

    async def ensure(self, manifest: Mapping[str, Any], owner_uid: str | None) -> Ensured:
        """Create the RayJob unless it exists; adopt an existing one that is ours.

        Raises ForeignObjectError when the name is taken by an object of someone else
        (another parent, or not managed by tunix-rt).
        """
        meta = manifest["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        match_labels = {
            k: v for k, v in meta.get("labels", {}).items() if k.startswith("tunixrt.io/")
        }
        action: Literal["created", "adopted"] = "created"
        try:  # create first: a new object's RayJob (the common case) costs one request
            existing = await self.kube.create(RAYJOBS, namespace, manifest)
        except KubeApiError as exc:
            if exc.status != 409:
                raise
            action = "adopted"
            found = await self.get(namespace, name)
            if found is None:  # deleted in between: let the caller retry
                raise
            existing = found
        if not is_owned_by(existing, owner_uid, match_labels):
            deleting = bool((existing.get("metadata") or {}).get("deletionTimestamp"))
            raise ForeignObjectError(
                f"RayJob {namespace}/{name} already exists and is not owned by this object"
                + (" (it is being deleted; retrying)" if deleting else "")
            )
        return Ensured(existing, action)

    async def delete_owned(
        self, namespace: str, name: str, owner_uid: str | None, labels: Mapping[str, str]
    ) -> bool:
        """Delete the RayJob if it exists and is ours; True when a delete was issued."""
        existing = await self.get(namespace, name)
        if existing is None or not is_owned_by(existing, owner_uid, labels):
            return False
        return await self.kube.delete(RAYJOBS, namespace, name)

    async def get_sweep(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self.kube.get(SWEEPS, namespace, name)
