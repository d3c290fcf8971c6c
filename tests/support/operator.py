"""Helpers for running the real operator (kopf) against the kmock Kubernetes emulator."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import os
import signal
import sys
import threading
import urllib.request
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import aiohttp
import attrs
import kmock
import kopf
import yaml
from kmock._internal import aiobus

from support.manifests import rehearsal_manifest, sweep_manifest
from support.net import free_port
from support.rayjob_schema import strict_schema
from tunix_rt.api.trial import SweepResult, TrialResult, TrialState
from tunix_rt.contract.layout import rehearsal_prefix, summary_key, trial_key
from tunix_rt.controller import OperatorConfig, Runtime, run_operator
from tunix_rt.storage import Store

T = TypeVar("T")
Probe = Callable[[], Awaitable[T | None]]

SWEEPS = "tunixrt.io/v1alpha1/sweeps"
REHEARSALS = "tunixrt.io/v1alpha1/rehearsals"
RAYJOBS = "ray.io/v1/rayjobs"
EVENTS = "v1/events"

NS = "ml"
"""The namespace the operator tests put their objects in."""

S3_ACCESS_KEY = "AKIATUNIXRTOPERATOR7"
"""The access key id the s3:// tests put in the environment (recognisable, to look for leaks)."""


@attrs.define(kw_only=True)
class ApiServer(kmock.KubernetesEmulator):
    """kmock's emulator plus the API-server behaviour kopf relies on:

    * a resourceVersion bumped on every write (and on deletion), generation bumped on
      spec changes, uid, creationTimestamp and generateName;
    * LIST answers the current resourceVersion and WATCH resumes from the one it is given
      (replaying what happened since, not the whole state again);
    * 422 for a failed JSON-patch test (kopf's optimistic concurrency).

    It also logs each Kubernetes request as (action, resource, name).
    """

    writes: list[tuple[str, str, str | None]] = attrs.field(factory=list, init=False)
    _rv: int = attrs.field(default=0, init=False)
    _events: list[tuple[Any, int, dict[str, Any]]] = attrs.field(factory=list, init=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self._buses = _Buses(self)

    def next_rv(self) -> int:
        self._rv += 1
        return self._rv

    async def _handle(self, request: kmock.Request) -> Any:
        resource, action = request.resource, request.action
        if resource is not None and action is not None:
            res = f"{resource.group}/{resource.version}/{resource.plural}".lstrip("/")
            self.writes.append((str(action.value), res, request.name))
            if action in (kmock.action.CREATE, kmock.action.UPDATE):
                self._bookkeep(request, action)
        try:
            return await super()._handle(request)
        except Exception as exc:
            if type(exc).__name__ != "JsonPatchTestFailed":  # jsonpatch, used by kmock
                raise
            raise kmock.KubernetesError(status=422, reason="Invalid", message=str(exc)) from exc

    def _bookkeep(self, request: kmock.Request, action: Any) -> None:
        rv = str(self.next_rv())
        data = request.data
        if action == kmock.action.CREATE and isinstance(data, dict):
            meta = data.setdefault("metadata", {})
            if not meta.get("name") and meta.get("generateName"):
                meta["name"] = f"{meta['generateName']}{rv.zfill(6)}"
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("creationTimestamp", datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
            meta.setdefault("generation", 1)
            meta["resourceVersion"] = rv
            return
        key = (request.resource, request.namespace, request.name)
        # ObjectsArray has no .get()
        current = self.objects[key] if key in self.objects else None  # noqa: SIM401
        generation = ((current or {}).get("metadata") or {}).get("generation", 1) if current else 1
        if isinstance(data, dict):
            meta = data.get("metadata")
            meta = data["metadata"] = dict(meta) if isinstance(meta, dict) else {}
            meta["resourceVersion"] = rv
            if "spec" in data and not request.subresource:
                meta["generation"] = generation + 1
        elif isinstance(data, list):
            data.append({"op": "add", "path": "/metadata/resourceVersion", "value": rv})
            if not request.subresource and any(
                str(op.get("path", "")).startswith("/spec") for op in data
            ):
                data.append({"op": "add", "path": "/metadata/generation", "value": generation + 1})

    async def _serve_list(self, request: kmock.Request) -> Any:
        result = await super()._serve_list(request)
        result["metadata"] = {"resourceVersion": str(self._rv)}
        return result

    async def _serve_watch(self, request: kmock.Request) -> Any:
        yield b""
        assert request.resource is not None
        since = str(request.params.get("resourceVersion") or "")
        bus = self._buses[request.resource]
        check = self._KubernetesEmulator__check  # type: ignore[attr-defined]
        async with self._lock:  # every write puts its event under this lock: nothing slips
            marker = await bus.mark()
            if since.isdigit():
                replay = [
                    event
                    for res, rv, event in self._events
                    if res == request.resource
                    and rv > int(since)
                    and check(request, res, _ns(event), _name(event), strict=False)
                ]
            else:
                objs = [
                    obj
                    for (res, ns, name), obj in self.objects.items()
                    if not obj.deleted and check(request, res, ns, name, strict=False)
                ]
                replay = [{"type": "ADDED", "object": obj.raw} for obj in objs]
        try:
            for event in replay:
                yield event
            async for event in bus.stream(since=marker):
                if check(request, request.resource, _ns(event), _name(event), strict=False):
                    yield event
        finally:
            await bus.unmark(marker)

    def count(self, action: str, resource: str, name: str | None = None) -> int:
        return sum(
            1
            for a, r, n in self.writes
            if a.lower() == action.lower() and r == resource and (name is None or n == name)
        )


def _ns(event: dict[str, Any]) -> str | None:
    ns = (event.get("object") or {}).get("metadata", {}).get("namespace")
    return str(ns) if ns else None


def _name(event: dict[str, Any]) -> str:
    return str((event.get("object") or {}).get("metadata", {}).get("name"))


@attrs.define(kw_only=True)
class _RecordingBus(aiobus.Bus[Any]):
    """A watch-event bus that also records events (with their resourceVersion) so that a
    WATCH can resume from a resourceVersion; a deletion gets a resourceVersion of its own."""

    server: ApiServer
    resource: Any

    async def put(self, *items: Any) -> None:
        recorded = []
        for item in items:
            if isinstance(item, dict) and isinstance(item.get("object"), dict):
                obj = item["object"]
                if item.get("type") == "DELETED":
                    obj = copy.deepcopy(obj)
                    obj.setdefault("metadata", {})["resourceVersion"] = str(self.server.next_rv())
                    item = {**item, "object": obj}
                rv = str((obj.get("metadata") or {}).get("resourceVersion") or "0")
                self.server._events.append((self.resource, int(rv) if rv.isdigit() else 0, item))
            recorded.append(item)
        await super().put(*recorded)


class _Buses(dict[Any, _RecordingBus]):
    def __init__(self, server: ApiServer) -> None:
        super().__init__()
        self.server = server

    def __missing__(self, key: Any) -> _RecordingBus:
        bus = self[key] = _RecordingBus(server=self.server, resource=key)
        return bus


def register_resources(k: ApiServer) -> None:
    """What kopf needs to start (TESTING.md), plus RayJobs and Events."""
    k.resources["v1/namespaces"] = {
        "kind": "Namespace", "singular": "namespace", "namespaced": False,
        "verbs": ["list", "watch", "get"],
    }  # fmt: skip
    k.resources["apiextensions.k8s.io/v1/customresourcedefinitions"] = {
        "kind": "CustomResourceDefinition", "singular": "customresourcedefinition",
        "namespaced": False, "verbs": ["list", "watch", "get"],
    }  # fmt: skip
    verbs = ["list", "watch", "get", "patch", "create", "delete"]
    k.resources[SWEEPS] = {
        "kind": "Sweep", "singular": "sweep", "namespaced": True, "verbs": verbs,
        "subresources": ["status"], "categories": ["tunixrt"],
    }  # fmt: skip
    k.resources[REHEARSALS] = {
        "kind": "Rehearsal", "singular": "rehearsal", "namespaced": True, "verbs": verbs,
        "subresources": ["status"], "categories": ["tunixrt"],
    }  # fmt: skip
    k.resources[RAYJOBS] = {
        "kind": "RayJob", "singular": "rayjob", "namespaced": True, "verbs": verbs,
        "subresources": ["status"],
    }  # fmt: skip
    k.resources[EVENTS] = {
        "kind": "Event", "singular": "event", "namespaced": True,
        "verbs": ["create", "list", "get"],
    }  # fmt: skip


def _path(
    resource: str, namespace: str, name: str | None = None, subresource: str | None = None
) -> str:
    parts = resource.split("/")
    base = f"/api/{parts[0]}" if len(parts) == 2 else f"/apis/{parts[0]}/{parts[1]}"
    path = f"{base}/namespaces/{namespace}/{parts[-1]}"
    if name:
        path += f"/{name}"
    if subresource:
        path += f"/{subresource}"
    return path


class Api:
    """A plain HTTP client of the emulator, like kubectl (no keep-alive: kopf cancels the
    emulator's connection tasks when it stops)."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    async def _call(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json"
    ) -> Any:
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(connector=connector) as session:
            kwargs: dict[str, Any] = {}
            if body is not None:
                kwargs["json"] = body
                kwargs["headers"] = {"Content-Type": content_type}
            async with session.request(method, self.url + path, **kwargs) as resp:
                if resp.status == 404:
                    return None
                assert resp.status < 400, f"{method} {path}: {resp.status} {await resp.text()}"
                return await resp.json(content_type=None)

    async def create(self, resource: str, body: dict[str, Any]) -> Any:
        ns = body["metadata"].get("namespace", "default")
        body["metadata"]["namespace"] = ns
        return await self._call("POST", _path(resource, ns), body)

    async def get(self, resource: str, namespace: str, name: str) -> dict[str, Any] | None:
        result: dict[str, Any] | None = await self._call("GET", _path(resource, namespace, name))
        return result

    async def list(self, resource: str, namespace: str) -> list[dict[str, Any]]:
        result = await self._call("GET", _path(resource, namespace))
        return list((result or {}).get("items") or [])

    async def patch(
        self,
        resource: str,
        namespace: str,
        name: str,
        body: dict[str, Any],
        subresource: str | None = None,
    ) -> Any:
        return await self._call(
            "PATCH",
            _path(resource, namespace, name, subresource),
            body,
            "application/merge-patch+json",
        )

    async def replace(
        self, resource: str, namespace: str, name: str, field: str, value: Any
    ) -> Any:
        """JSON-patch ``replace`` of a top-level field (a merge patch cannot turn a scalar
        into an object in kmock)."""
        ops = [{"op": "replace", "path": f"/{field}", "value": value}]
        path = _path(resource, namespace, name)
        return await self._call("PATCH", path, ops, "application/json-patch+json")

    async def delete(self, resource: str, namespace: str, name: str) -> Any:
        return await self._call("DELETE", _path(resource, namespace, name))

    async def events(self, namespace: str, name: str | None = None) -> list[dict[str, Any]]:
        items = await self.list(EVENTS, namespace)
        return [
            e for e in items if name is None or (e.get("involvedObject") or {}).get("name") == name
        ]

    async def job_status(self, namespace: str, name: str, **status: Any) -> None:
        """What KubeRay would do: patch the RayJob's status."""
        await self.patch(RAYJOBS, namespace, name, {"status": status}, subresource="status")

    async def job_running(self, namespace: str, name: str) -> None:
        """KubeRay has started the RayJob's driver."""
        await self.job_status(namespace, name, jobDeploymentStatus="Running", jobStatus="RUNNING")

    async def job_succeeded(self, namespace: str, name: str) -> None:
        """The RayJob's driver has exited 0."""
        await self.job_status(
            namespace, name, jobDeploymentStatus="Complete", jobStatus="SUCCEEDED"
        )


async def wait_for(
    probe: Callable[[], Awaitable[T | None]], timeout: float = 60.0, what: str = "condition"
) -> T:
    """Poll ``probe`` until it returns something truthy; fail with the last value. The bound is
    far above the normal time (well under a second): a loaded machine only makes it slower."""
    deadline = asyncio.get_running_loop().time() + timeout
    last: Any = None
    while True:
        last = await probe()
        if last:
            return last
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
        await asyncio.sleep(0.05)


def handler_runs(run: OperatorRun, kind: str = "sweep", handler: str = "follow") -> int:
    """How many times the operator ran one handler (its reconcile-duration histogram)."""
    assert run.runtime is not None, "the operator has not been started"
    value = run.runtime.metrics.registry.get_sample_value(
        "tunixrt_reconcile_duration_seconds_count", {"kind": kind, "handler": handler}
    )
    return int(value or 0)


async def polled(run: OperatorRun, times: int = 3, kind: str = "sweep") -> None:
    """Wait until the operator has followed (polled) ``times`` more times: a test that shows
    nothing changes over several polls waits for the polls, not for a period a loaded
    machine may not fit them in."""
    target = handler_runs(run, kind) + times

    async def enough() -> bool:
        return handler_runs(run, kind) >= target

    await wait_for(enough, what=f"{times} more {kind} polls")


async def status_of(api: Api, resource: str, name: str, namespace: str = NS) -> dict[str, Any]:
    """The object's status ({} while it has none or is gone)."""
    obj = await api.get(resource, namespace, name)
    return dict((obj or {}).get("status") or {})


async def phase_is(
    api: Api, resource: str, name: str, phase: str, namespace: str = NS
) -> dict[str, Any] | None:
    """The status once its phase is ``phase`` (else None): a probe for ``wait_for``."""
    status = await status_of(api, resource, name, namespace)
    return status if status.get("phase") == phase else None


def all_gone(api: Api, *objects: tuple[str, str], namespace: str = NS) -> Probe[bool]:
    """A probe for ``wait_for``: true once none of the (resource, name) objects is left."""

    async def probe() -> bool:
        return all([await api.get(resource, namespace, name) is None for resource, name in objects])

    return probe


async def events_of(
    api: Api,
    namespace: str,
    name: str,
    *,
    reasons: set[str] | frozenset[str] = frozenset(),
    warning_with: str | None = None,
) -> list[dict[str, Any]]:
    """The object's Events once they include every reason in ``reasons`` (and a Warning
    whose message contains ``warning_with``). kopf posts Events asynchronously, after
    the status patch a test may have just seen, so a test waits for them."""

    async def probe() -> list[dict[str, Any]] | None:
        events = await api.events(namespace, name)
        if not reasons <= {e["reason"] for e in events}:
            return None
        if warning_with is not None and not any(
            e["type"] == "Warning" and warning_with in e["message"] for e in events
        ):
            return None
        return events

    wanted = sorted(reasons) + ([f"Warning '{warning_with}'"] if warning_with else [])
    return await wait_for(probe, what=f"events {wanted} of {name}")


StartOperator = Callable[..., Awaitable["OperatorRun"]]


class OperatorRun:
    """The operator in a thread with its own event loop, stopped (and restarted) like a
    process. (kopf cancels every task of its loop that it did not start with when it
    stops, so it must not share the test's loop.)"""

    def __init__(self, config: OperatorConfig, server_url: str) -> None:
        self.config = config
        self.server_url = server_url
        self.thread: threading.Thread | None = None
        self.runtime: Runtime | None = None
        self.stop_flag = threading.Event()
        self.error: BaseException | None = None

    async def start(self) -> OperatorRun:
        self.stop_flag = threading.Event()
        ready = threading.Event()
        self.runtime = Runtime(
            config=self.config,
            fixed_connection=kopf.ConnectionInfo(server=self.server_url, insecure=True),
        )
        runtime = self.runtime

        def main() -> None:
            try:
                asyncio.run(
                    run_operator(
                        self.config, runtime=runtime, stop_flag=self.stop_flag, ready_flag=ready
                    )
                )
            except BaseException as exc:  # reported by stop()
                self.error = exc

        self.thread = threading.Thread(target=main, name="tunix-rt-operator", daemon=True)
        self.thread.start()
        assert await asyncio.to_thread(ready.wait, 20), f"operator did not start: {self.error}"
        return self

    async def stop(self) -> None:
        if self.thread is None:
            return
        self.stop_flag.set()
        await asyncio.to_thread(self.thread.join, 30)
        assert not self.thread.is_alive(), "the operator did not stop"
        self.thread = None
        assert self.error is None, f"the operator failed: {self.error!r}"


class OperatorProcess:
    """``tunix-rt operator`` as a process logged in with a kubeconfig, that a test can kill
    with SIGKILL like a pod (no cleanup, kopf's progress annotations left as they were)."""

    def __init__(self, server_url: str, folder: Any, **env: str) -> None:
        self.kubeconfig = folder / "kubeconfig"
        self.kubeconfig.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "kmock",
            "clusters": [{"name": "kmock", "cluster": {"server": server_url.rstrip("/")}}],
            "users": [{"name": "u", "user": {"token": "t"}}],
            "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": "u"}}],
        }))  # fmt: skip
        self.env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), **env}
        self.env.pop("KUBERNETES_SERVICE_HOST", None)
        self.proc: asyncio.subprocess.Process | None = None
        self.output = b""

    async def start(self) -> OperatorProcess:
        live = free_port()
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "from tunix_rt.cli import main; main()",
            "operator", "--all-namespaces", "--standalone",
            "--liveness", f"http://127.0.0.1:{live}/healthz", "--metrics-port", "0",
            env=self.env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        proc = self.proc

        def get() -> int:
            with urllib.request.urlopen(f"http://127.0.0.1:{live}/healthz", timeout=5) as resp:
                return int(resp.status)

        async def healthy() -> bool:
            try:
                return await asyncio.to_thread(get) == 200
            except OSError:
                if proc.returncode is not None:
                    raise AssertionError(f"the operator exited: {await self.kill()}") from None
                return False

        await wait_for(healthy, timeout=60, what="the operator's /healthz")
        return self

    async def kill(self, sig: int = signal.SIGKILL) -> str:
        """Send ``sig`` (default SIGKILL), wait for the exit; the process's output."""
        proc, self.proc = self.proc, None
        if proc is None:
            return self.output.decode(errors="replace")
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
        self.output += out or b""
        return self.output.decode(errors="replace")


# ----------------------------------------------------------------------------- objects


def sweep_body(name: str, namespace: str = NS, **spec: Any) -> dict[str, Any]:
    wire: dict[str, Any] = {
        "searchSpace": {"learningRate": {"type": "loguniform", "low": 1e-4, "high": 1e-2}},
        "maxTrials": 4,
        "maxConcurrentTrials": 2,
    }
    wire.update(spec)
    return sweep_manifest(name, wire, namespace)


def rehearsal_body(name: str, namespace: str = NS, **spec: Any) -> dict[str, Any]:
    return rehearsal_manifest(name, spec, namespace)


def write_trial(
    store: Store,
    namespace: str,
    sweep: str,
    trial_id: str,
    state: TrialState,
    score: float | None = None,
    **params: Any,
) -> TrialResult:
    trial = TrialResult(
        trial_id=trial_id, sweep=sweep, namespace=namespace,
        params=params or {"learningRate": 0.001}, state=state, primary_score=score,
        steps=10 if state is not TrialState.RUNNING else 3,
        error="OOM" if state is TrialState.FAILED else None,
    )  # fmt: skip
    store.write_json(trial_key(namespace, sweep, trial_id), trial)
    return trial


def write_summary(
    store: Store, namespace: str, sweep: str, trials: list[TrialResult], best: str | None
) -> None:
    best_trial = next((t for t in trials if t.trial_id == best), None)
    result = SweepResult(
        sweep=sweep, namespace=namespace, trials=trials, best_trial_id=best,
        best_params=best_trial.params if best_trial else None,
        primary_score=best_trial.primary_score if best_trial else None,
        trials_planned=len(trials),
    )  # fmt: skip
    store.write_json(summary_key(namespace, sweep), result)


def write_evidence(
    store: Store, namespace: str, name: str, score: float, ended: datetime | None = None
) -> list[str]:
    """A rehearsal's evidence files as the run leaves them (content abridged)."""
    prefix = rehearsal_prefix(namespace, name)
    end = (ended or datetime.now(UTC)).isoformat().replace("+00:00", "Z")
    files = {
        "eval_summary.json": {"primary_score": score, "n": 512},
        "run_manifest.json": {"run_name": name, "end_time": end},
    }
    keys = []
    for base, data in files.items():
        store.write_json(f"{prefix}/{base}", data)
        keys.append(f"{prefix}/{base}")
    for base in (
        "kaggle_output_log.txt",
        "SHA256SUMS",
        "report.html",
        "eval_rows.jsonl",
        f"submission/tunix_rt_{name}.zip",
    ):
        store.write_text(f"{prefix}/{base}", "x\n")
        keys.append(f"{prefix}/{base}")
    return keys


async def rehearsal_succeeds(
    api: Api, store: Store, name: str, score: float, namespace: str = NS
) -> tuple[dict[str, Any], list[str]]:
    """The rehearsal run leaves its evidence and its RayJob completes: the Succeeded
    status the operator then reports, and the evidence keys."""
    keys = write_evidence(store, namespace, name, score=score)
    await api.job_succeeded(namespace, f"rehearsal-{name}")
    status = await wait_for(
        lambda: phase_is(api, REHEARSALS, name, "Succeeded", namespace), what="Succeeded"
    )
    return status, keys


async def sweep_running(api: Api, body: dict[str, Any]) -> dict[str, Any]:
    """Create the Sweep ``body``, wait for its RayJob and start it as KubeRay would (its
    status Running): the RayJob as the operator made it."""
    namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
    await api.create(SWEEPS, body)
    rayjob = await wait_for(lambda: api.get(RAYJOBS, namespace, f"sweep-{name}"), what="the RayJob")
    await api.job_running(namespace, f"sweep-{name}")
    return rayjob


async def sweep_succeeds(
    api: Api,
    store: Store,
    name: str,
    trials: list[TrialResult],
    best: str | None,
    namespace: str = NS,
) -> dict[str, Any]:
    """The driver writes the summary of ``trials`` and the RayJob completes: the Succeeded
    status the operator then reports."""
    write_summary(store, namespace, name, trials, best)
    await api.job_succeeded(namespace, f"sweep-{name}")
    return await wait_for(
        lambda: phase_is(api, SWEEPS, name, "Succeeded", namespace), what="Succeeded"
    )


def condition(obj: dict[str, Any] | None, ctype: str) -> dict[str, Any]:
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == ctype:
            return dict(cond)
    return {}


def crd_for(kind: str) -> dict[str, Any]:
    from tunix_rt.api import crd

    return crd.sweep_crd() if kind == "Sweep" else crd.rehearsal_crd()


def assert_status_fits_crd(obj: dict[str, Any]) -> None:
    """The status the operator wrote validates against the CRD's (strict) status schema,
    so a real API server keeps all of it."""
    import jsonschema

    version = crd_for(obj["kind"])["spec"]["versions"][0]
    schema = version["schema"]["openAPIV3Schema"]["properties"]["status"]
    strict = strict_schema(schema)
    errors = list(jsonschema.Draft7Validator(strict).iter_errors(obj.get("status") or {}))
    assert not errors, [f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors[:10]]


def printer_columns(obj: dict[str, Any]) -> dict[str, Any]:
    """What ``kubectl get`` shows: each additionalPrinterColumn's jsonPath on the object."""
    version = crd_for(obj["kind"])["spec"]["versions"][0]
    out: dict[str, Any] = {}
    for column in version.get("additionalPrinterColumns", []):
        value: Any = obj
        for part in column["jsonPath"].strip(".").split("."):
            value = value.get(part) if isinstance(value, dict) else None
        out[column["name"]] = value
    return out
