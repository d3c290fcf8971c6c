"""The bad-input corpus (``cases.yaml``) through the CLI and through the operator.

Every case is refused with its exit status and a message naming the field, never with a
traceback; every manifest case that reaches the operator fails the object (condition
``Failed``, reason ``InvalidSpec`` or ``Unschedulable``, the field in its message) with a
Warning Event, while a valid Sweep created beside them still gets its RayJob.

A case the code does not handle yet carries ``pending`` (``operator_pending``): it is a
strict xfail, so the fix that makes it pass also has to remove the line.
"""

from __future__ import annotations

import asyncio
import copy
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kmock
import pytest
import yaml
from typer.testing import CliRunner

import tunix_rt.cli as cli
from support import operator as op
from support.operator_config import operator_config
from tunix_rt.api.errors import ManifestError
from tunix_rt.api.manifests import load_documents
from tunix_rt.controller import OperatorConfig

CORPUS = Path(__file__).resolve().parent
CASES: list[dict[str, Any]] = yaml.safe_load((CORPUS / "cases.yaml").read_text())
VALID = "valid"
"""The valid Sweep created beside the bad ones (``valid/sweep.yaml``)."""

ENV = {
    "COLUMNS": "200",
    "RAY_USAGE_STATS_ENABLED": "0",
    # A store call that reaches for the network fails at once instead of retrying.
    "TUNIX_RT_S3_ENDPOINT_URL": "http://127.0.0.1:9",
    "TUNIX_RT_STORE_ATTEMPTS": "1",
    "TUNIX_RT_STORE_CONNECT_TIMEOUT_S": "1",
    "AWS_ACCESS_KEY_ID": "AKIATUNIXRTBADINPUTS",
    "AWS_SECRET_ACCESS_KEY": "not-a-secret",
}


def messages(case: dict[str, Any]) -> list[str]:
    wanted = case["message"]
    return [wanted] if isinstance(wanted, str) else list(wanted)


def param(case: dict[str, Any], pending_key: str = "pending") -> Any:
    marks = []
    if case.get(pending_key):
        marks.append(pytest.mark.xfail(strict=True, reason=str(case[pending_key])))
    return pytest.param(case, id=case["id"], marks=marks)


def test_the_corpus_is_well_formed() -> None:
    ids = [c["id"] for c in CASES]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    assert len(CASES) >= 120
    keys = {"id", "class", "file", "command", "exit", "message", "absent", "reason"}
    keys |= {"pending", "operator", "operator_pending", "subprocess"}
    for case in CASES:
        assert set(case) <= keys, (case["id"], set(case) - keys)
        assert "file" in case or "command" in case, case["id"]
        if "file" in case:
            assert (CORPUS / case["file"]).exists() or (CORPUS / case["file"]).is_symlink()
        assert messages(case) and all(messages(case)), case["id"]
    files = {c["file"] for c in CASES if "file" in c}
    on_disk = {str(p.relative_to(CORPUS)) for p in (CORPUS / "manifests").iterdir()}
    assert on_disk == files, "every manifest in manifests/ has exactly one case"


# ----------------------------------------------------------------------------- the CLI


def command(case: dict[str, Any], tmp: Path) -> list[str]:
    args = case.get("command") or ["validate", "{file}"]
    return [str(a).replace("{file}", case.get("file", "")).replace("{tmp}", str(tmp)) for a in args]


def run_cli(case: dict[str, Any], tmp: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    """(exit status, stdout + stderr) of one case; a crash in-process fails the test."""
    args = command(case, tmp)
    if case.get("subprocess"):
        exe = Path(sys.executable).with_name("tunix-rt")
        env = {**_subprocess_env(), **ENV}
        out = subprocess.run(
            [str(exe), *args], cwd=CORPUS, env=env, capture_output=True, text=True, timeout=300
        )
        return out.returncode, out.stdout + out.stderr
    monkeypatch.chdir(CORPUS)
    result = CliRunner().invoke(cli.app, args, env=ENV)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        exc = result.exception
        pytest.fail(f"tunix-rt {' '.join(args)} crashed: {type(exc).__name__}: {exc}")
    return result.exit_code, result.output


def _subprocess_env() -> dict[str, str]:
    import os

    root = CORPUS.parents[1]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(root / "tests"), str(root / "operator")])
    return env


@pytest.mark.reliability(
    "input",
    "bad manifests, datasets, evidence folders, zips and --storage values through the CLI",
    result="the exit code, the field named, no traceback (pending cases: xfail)",
)
@pytest.mark.parametrize("case", [param(c) for c in CASES])
def test_cli_refuses(case: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, output = run_cli(case, tmp_path, monkeypatch)
    assert "Traceback" not in output, output
    assert code == case["exit"], f"exit {code}, not {case['exit']}:\n{output}"
    for wanted in messages(case):
        assert wanted in output, f"{wanted!r} not in:\n{output}"
    if case.get("absent"):
        assert case["absent"] not in output, output


# ----------------------------------------------------------------------------- the operator


def operator_object(case: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """(resource, body) of a manifest case the operator can be sent, else None."""
    if "file" not in case or case.get("command") or case.get("operator") is False:
        return None
    if not any(m.startswith("spec") for m in messages(case)):
        return None
    try:
        docs = load_documents(CORPUS / case["file"])
    except ManifestError:
        return None
    if len(docs) != 1 or not isinstance(docs[0], dict):
        return None
    body = copy.deepcopy(docs[0])
    resource = {"Sweep": op.SWEEPS, "Rehearsal": op.REHEARSALS}.get(body.get("kind"))
    if resource is None:
        return None
    body["metadata"] = {"name": case["id"], "namespace": op.NS}
    return resource, body


OPERATOR_CASES = [c for c in CASES if operator_object(c) is not None]


class LeanApiServer(op.ApiServer):
    """The emulator, forgetting each request once answered: kmock keeps every request it
    served and scans them all for each new one, which with a few hundred objects makes
    the emulator, not the operator, what the test measures (shared TESTING.md, "kmock
    under load")."""

    async def _handle(self, request: kmock.Request) -> Any:
        try:
            return await super()._handle(request)
        finally:
            served = self._requests
            for index in range(len(served) - 1, -1, -1):
                if served[index] is request:
                    del served[index]
                    break


@dataclass
class Seen:
    """What the operator made of every object: its status, its Events, the RayJobs."""

    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    rayjobs: list[str] = field(default_factory=list)


def failed_condition(obj: dict[str, Any] | None) -> dict[str, Any]:
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Failed" and cond.get("status") == "True":
            return dict(cond)
    return {}


def settled(case: dict[str, Any], seen: Seen) -> bool:
    warnings = [e for e in seen.events.get(case["id"], []) if e.get("type") == "Warning"]
    return bool(failed_condition(seen.objects.get(case["id"])) and warnings)


async def observe(api: op.Api) -> Seen:
    seen = Seen()
    for resource in (op.SWEEPS, op.REHEARSALS):
        for obj in await api.list(resource, op.NS):
            seen.objects[obj["metadata"]["name"]] = obj
    for event in await api.list(op.EVENTS, op.NS):
        name = (event.get("involvedObject") or {}).get("name")
        seen.events.setdefault(str(name), []).append(event)
    seen.rayjobs = [r["metadata"]["name"] for r in await api.list(op.RAYJOBS, op.NS)]
    return seen


async def drive(config: OperatorConfig, timeout: float = 90.0) -> Seen:
    """One operator; every case and the valid Sweep created at once; poll until the
    cases that should settle have (pending ones get a short grace), or ``timeout``."""
    async with LeanApiServer() as server, kmock.Server(server):
        op.register_resources(server)
        api = op.Api(str(server.url))
        run = op.OperatorRun(config, str(server.url))
        await run.start()
        try:
            valid = yaml.safe_load((CORPUS / "valid" / "sweep.yaml").read_text())
            valid["metadata"] = {"name": VALID, "namespace": op.NS}
            await api.create(op.SWEEPS, valid)
            for case in OPERATOR_CASES:
                made = operator_object(case)
                assert made is not None
                await api.create(*made)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            expected = [c for c in OPERATOR_CASES if not c.get("operator_pending")]
            while True:
                seen = await observe(api)
                done = f"sweep-{VALID}" in seen.rayjobs and all(settled(c, seen) for c in expected)
                if done or loop.time() > deadline:
                    break
                await asyncio.sleep(0.5)
            await asyncio.sleep(2.0)  # the pending ones: whatever they do by now
            return await observe(api)
        finally:
            await run.stop()


@pytest.fixture(scope="module")
def operator_seen(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seen]:
    store = tmp_path_factory.mktemp("bad-inputs-store")
    config = operator_config(f"file://{store}", poll_seconds=0.5)
    with pytest.MonkeyPatch.context() as env:
        for name, value in ENV.items():  # the s3:// specs: no credentials, no retries
            env.setenv(name, value)
        yield asyncio.run(drive(config))


@pytest.mark.reliability(
    "input",
    "a valid Sweep beside the bad ones",
    result="it gets its RayJob; no refused object gets one",
)
def test_operator_serves_a_valid_sweep_beside_the_bad_ones(operator_seen: Seen) -> None:
    assert f"sweep-{VALID}" in operator_seen.rayjobs
    status = operator_seen.objects[VALID].get("status") or {}
    assert status.get("phase") == "Pending", status
    refused = [c["id"] for c in OPERATOR_CASES if not c.get("operator_pending")]
    bad = {f"{kind}-{name}" for name in refused for kind in ("sweep", "rehearsal")}
    assert not bad & set(operator_seen.rayjobs), "a bad object got a RayJob"


@pytest.mark.reliability(
    "input",
    "the corpus's spec.* manifests created at once through the Kubernetes API",
    result="Failed (InvalidSpec or Unschedulable), the field named, a Warning Event",
)
@pytest.mark.parametrize("case", [param(c, "operator_pending") for c in OPERATOR_CASES])
def test_operator_refuses(case: dict[str, Any], operator_seen: Seen) -> None:
    obj = operator_seen.objects.get(case["id"])
    assert obj is not None, "the object is gone"
    failed = failed_condition(obj)
    assert failed, f"no Failed condition; status: {obj.get('status')}"
    assert failed["reason"] == case.get("reason", "InvalidSpec"), failed
    paths = [m for m in messages(case) if m.startswith("spec")]
    for path in paths:
        assert path in failed["message"], failed
    assert (obj.get("status") or {}).get("phase") == "Failed"
    warnings = [e for e in operator_seen.events.get(case["id"], []) if e.get("type") == "Warning"]
    assert warnings, "no Warning Event"
    assert any(paths[0] in str(e.get("message")) for e in warnings), warnings
    if case.get("absent"):  # a secret: neither in the status nor in any Event
        shown = [str(obj.get("status")), *(str(e) for e in operator_seen.events[case["id"]])]
        assert not any(case["absent"] in text for text in shown), shown
