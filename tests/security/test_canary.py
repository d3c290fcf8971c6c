"""No secret value reaches any output (issue 14, item 7): a canary credential is planted
in the environment (and in a storage URI's userinfo) and every output is searched for it.

* A local sweep (the real driver, Ray Tune and store; the stand-in trial workload) on an
  s3:// store served by moto, whose secret key *is* the canary: stdout, stderr, every
  object in the bucket (zip members opened), Ray's experiment folder.
* The same driver given ``s3://KEY:<canary>@bucket/…``: refused, the canary not echoed.
* The operator against the kmock API server with the canary in its environment: a Sweep
  that runs to success, one whose storage URI carries the canary, one whose bucket is
  absent; every object (status included), every Event, the operator's log records and
  the process's stdout/stderr.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import subprocess
import zipfile
from pathlib import Path

import pytest

from support.manifests import write_sweep
from support.s3 import AWS_ELSEWHERE, MotoS3
from support.sweeps import driver_cmd, stand_in_grid

CANARY = "canary-XYZ-7f3a9c1e5b2d4068"
CANARY_KEY_ID = "AKIACANARY0000000XYZ"
URI_CANARY = "uri-canary-5d1e77b0a2"
"""Planted in a Sweep's storage URI: the user's own input, which kopf's DEBUG log echoes
with the whole object (as it does any spec); refused and never echoed at INFO or above."""

SWEEP = stand_in_grid([0.003, 0.5], maxFailedTrials=1)
"""The sweep's spec: two trials of the stand-in trainer, the second one fails."""


def leaks(text: str | bytes) -> list[str]:
    data = text.decode(errors="replace") if isinstance(text, bytes) else text
    return [c for c in (CANARY, CANARY_KEY_ID) if c in data]


def files_text(folder: Path) -> dict[str, bytes]:
    """Every regular file under a folder (zip members as files of their own)."""
    out: dict[str, bytes] = {}
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            out[str(path)] = data
            out.update(zip_members(str(path), data))
    return out


def zip_members(name: str, data: bytes) -> dict[str, bytes]:
    if not data.startswith(b"PK"):
        return {}
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return {f"{name}!{m}": archive.read(m) for m in archive.namelist()}
    except zipfile.BadZipFile:
        return {}


@pytest.mark.slow
@pytest.mark.reliability(
    "security",
    "canary credential: local sweep on s3:// (all outputs)",
    result="not in stdout, stderr, any stored object, zip member or Ray's folder",
)
def test_local_sweep_never_prints_or_stores_the_canary(
    moto_s3: MotoS3, tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    bucket = moto_s3.fresh_bucket("canary-", "sweep")
    env = subprocess_env | moto_s3.client_env(CANARY_KEY_ID, CANARY)
    env["TUNIX_RT_API_TOKEN"] = CANARY  # any credential-looking variable
    ray_dir = tmp_path / "ray"
    spec = write_sweep(tmp_path / "s.yaml", "canary", SWEEP)
    cmd = driver_cmd(spec, f"s3://{bucket}/runs", "--ray-storage", str(ray_dir), "--num-cpus", "2")
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    # One trial succeeds, one diverges (a failure with its message in the records).
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert not leaks(out.stdout) and not leaks(out.stderr)

    objects = moto_s3.objects(bucket)
    assert any(k.endswith("summary.json") for k in objects)
    assert any("/trials/" in k for k in objects) and any(k.endswith(".zip") for k in objects)
    searched = {}
    for key in objects:
        data = moto_s3.content(bucket, key)
        searched[key] = data
        searched.update(zip_members(key, data))
    searched.update(files_text(ray_dir))
    found = {name: leaks(data) for name, data in searched.items() if leaks(data)}
    assert not found, f"the canary is in {sorted(found)}"
    assert len(searched) > len(objects)  # the zip's members were opened too


@pytest.mark.reliability(
    "security",
    "canary credential in a storage URI's userinfo",
    result="refused, exit 1; the secret not echoed",
)
def test_storage_uri_with_credentials_is_refused_without_echoing_them(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    spec = write_sweep(tmp_path / "s.yaml", "uri", SWEEP)
    cmd = driver_cmd(spec, f"s3://{CANARY_KEY_ID}:{CANARY}@bucket/runs")
    out = subprocess.run(cmd, env=subprocess_env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 1, out.stderr[-2000:]
    assert "credentials and query strings do not belong in storage URIs" in out.stderr
    assert not leaks(out.stdout) and not leaks(out.stderr)


# ----------------------------------------------------------------------------- operator


@pytest.mark.reliability(
    "security",
    "canary credential: operator status, Events, logs",
    result="not in status, Events, RayJobs, logs (DEBUG included), stdout/stderr",
)
async def test_operator_outputs_never_carry_the_canary(
    moto_s3: MotoS3,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    import kmock

    from support.operator import (
        EVENTS,
        RAYJOBS,
        SWEEPS,
        Api,
        ApiServer,
        OperatorRun,
        phase_is,
        register_resources,
        sweep_body,
        wait_for,
        write_summary,
        write_trial,
    )
    from support.operator_config import operator_config
    from tunix_rt.api.trial import TrialState
    from tunix_rt.storage import Store

    bucket = moto_s3.fresh_bucket("canary-", "operator")
    moto_s3.put_client_env(monkeypatch, CANARY_KEY_ID, CANARY, AWS_ELSEWHERE)
    monkeypatch.setenv("TUNIX_RT_API_TOKEN", CANARY)
    monkeypatch.setenv("TUNIX_RT_STORE_ATTEMPTS", "2")
    monkeypatch.setenv("TUNIX_RT_STORE_BACKOFF_S", "0.05")
    caplog.set_level(logging.DEBUG)
    store = Store(f"s3://{bucket}/tunix-rt")
    config = operator_config(store.uri)
    async with ApiServer() as server, kmock.Server(server):
        register_resources(server)
        api = Api(str(server.url))
        run = await OperatorRun(config, str(server.url)).start()
        try:
            await api.create(SWEEPS, sweep_body("ok"))
            await api.create(
                SWEEPS, sweep_body("userinfo", storage=f"s3://someone:{URI_CANARY}@b/p")
            )
            await api.create(SWEEPS, sweep_body("nobucket", storage="s3://no-such-bucket-c/p"))
            await wait_for(lambda: api.get(RAYJOBS, "ml", "sweep-ok"), what="the RayJob")
            trials = [
                write_trial(store, "ml", "ok", "t_0", TrialState.SUCCEEDED, 0.5),
                write_trial(store, "ml", "ok", "t_1", TrialState.FAILED, None),
            ]
            write_summary(store, "ml", "ok", trials, best="t_0")
            await api.job_succeeded("ml", "sweep-ok")
            await wait_for(lambda: phase_is(api, SWEEPS, "ok", "Succeeded"), what="Succeeded")

            # Admission refuses a URI with credentials (InvalidSpec), never echoing them.
            await wait_for(
                lambda: phase_is(api, SWEEPS, "userinfo", "Failed"), what="the userinfo URI refused"
            )
            refused = await api.get(SWEEPS, "ml", "userinfo")
            assert "must not carry credentials" in refused["status"]["message"]
            await wait_for(lambda: api.get(RAYJOBS, "ml", "sweep-nobucket"), what="RayJob 2")
            await api.job_status(
                "ml", "sweep-nobucket", jobDeploymentStatus="Failed", jobStatus="FAILED",
                message=f"driver: no bucket (token {CANARY})",
            )  # fmt: skip
            await wait_for(lambda: phase_is(api, SWEEPS, "nobucket", "Failed"), what="Failed")

            async def events_posted() -> list[object] | None:
                events = await api.list(EVENTS, "ml")
                names = {(e.get("involvedObject") or {}).get("name") for e in events}
                return events if {"ok", "nobucket"} <= names else None

            await wait_for(events_posted, what="the Events")
            await asyncio.sleep(1.0)  # a few more polls and retries of the refused URI
            outputs = {
                "status": json.dumps([s.get("status") for s in await api.list(SWEEPS, "ml")]),
                "events": json.dumps(await api.list(EVENTS, "ml")),
            }
            rayjobs = await api.list(RAYJOBS, "ml")
        finally:
            await run.stop()
    # The RayJobs carry only references to the credentials Secret, never values.
    # (The status message planted above, as KubeRay would report it, is the one exception.)
    assert rayjobs and all(not leaks(json.dumps([j["metadata"], j["spec"]])) for j in rayjobs)
    # The secret never appears, DEBUG logs included (botocore's DEBUG log names the access
    # key id, which is not a secret, in its signed headers: that one is checked at INFO+).
    debug = "\n".join(r.getMessage() for r in caplog.records)
    assert CANARY not in debug, "the secret reached the DEBUG log"
    info = [r for r in caplog.records if r.levelno >= logging.INFO]
    outputs["logs"] = "\n".join(r.getMessage() for r in info)
    outputs["tracebacks"] = "\n".join(r.exc_text or "" for r in caplog.records)
    captured = capfd.readouterr()
    outputs["stdout"], outputs["stderr"] = captured.out, captured.err
    for where, text in outputs.items():
        assert not leaks(text), f"the canary reached {where}"
        assert URI_CANARY not in text, f"the URI's secret reached {where}"
