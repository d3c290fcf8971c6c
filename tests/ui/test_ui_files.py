"""Evidence files served from the store: the run's own files, with their content type;
nothing outside that run's folder (no traversal, no other run's files, no checkpoints)."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from yarl import URL

from support.ui_store import M34
from tunix_rt.storage import Store

SMOKE = "/files/sweeps/local/sweep-smoke"
BEST = "/files/rehearsals/local/sweep-smoke-best"


async def test_serves_a_sweeps_evidence_file_with_its_type(client: TestClient[Any, Any]) -> None:
    resp = await client.get(f"{SMOKE}/evidence/sweep_summary.json")
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "application/json; charset=utf-8"
    assert await resp.read() == (M34 / "sweep" / "evidence" / "sweep_summary.json").read_bytes()
    log = await client.get(f"{SMOKE}/sweep_log.txt")
    assert log.headers["Content-Type"] == "text/plain; charset=utf-8"
    sums = await client.get(f"{BEST}/SHA256SUMS")
    assert sums.status == 200 and sums.headers["Content-Type"].startswith("text/plain")


async def test_a_report_is_shown_but_sandboxed(client: TestClient[Any, Any]) -> None:
    resp = await client.get(f"{SMOKE}/evidence/report.html")
    assert resp.status == 200 and resp.headers["Content-Type"] == "text/html; charset=utf-8"
    policy = resp.headers["Content-Security-Policy"]
    assert "sandbox" in policy and "default-src 'none'" in policy and "script" not in policy
    assert resp.headers["X-Content-Type-Options"] == "nosniff"


async def test_a_bundle_is_a_download_sent_whole(client: TestClient[Any, Any]) -> None:
    name = "tunix_rt_sweep-smoke-best_20261206_808ade3.zip"
    resp = await client.get(f"{BEST}/submission/{name}")
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "application/zip"
    assert resp.headers["Content-Disposition"] == f'attachment; filename="{name}"'
    body = await resp.read()
    assert (
        hashlib.sha256(body).digest()
        == hashlib.sha256((M34 / "submission" / name).read_bytes()).digest()
    )


async def test_a_file_larger_than_a_chunk_streams_whole(
    client: TestClient[Any, Any], store: Store
) -> None:
    data = bytes(range(256)) * (5 * 4096 + 7)  # 5 MiB and a bit: several reads
    store.write_bytes("team-a/mixed/logs/big.log", data)
    resp = await client.get("/files/sweeps/team-a/mixed/logs/big.log")
    assert resp.status == 200 and int(resp.headers["Content-Length"]) == len(data)
    assert await resp.read() == data


@pytest.mark.parametrize(
    "path",
    [
        # traversal, encoded so that no client or router resolves it first
        f"{SMOKE}/%2E%2E/%2E%2E/team-a/mixed/summary.json",
        f"{SMOKE}/evidence/%2E%2E%2F%2E%2E%2Fmixed%2Fsummary.json",
        f"{SMOKE}/..%2F..%2Fteam-a%2Fmixed%2Fsummary.json",
        f"{SMOKE}/evidence/.%2Freport.html",
        f"{SMOKE}/evidence//report.html",
        f"{SMOKE}/evidence/report.html%00.txt",
        f"{SMOKE}/evidence%5C..%5C..%5Cmixed%5Csummary.json",
        # not evidence: Ray's experiment, checkpoints, another namespace's name shape
        "/files/sweeps/team-a/mixed/ray/t_00000/result.json",
        "/files/sweeps/team-a/mixed/checkpoints/t_00000/x",
        "/files/sweeps/team-a/rehearsals/mixed-best/eval_rows.jsonl",  # a rehearsal's, as a sweep
        "/files/sweeps/team-a/mixed",  # a folder
        "/files/sweeps/team-a/mixed/evidence",  # a folder
        "/files/sweeps/team-a/mixed/nope.json",
        "/files/rehearsals/team-a/..%2Fmixed/summary.json",
        "/files/rehearsals/team-a/mixed-best/%2E%2E/%2E%2E/mixed/summary.json",
        "/files/elsewhere/team-a/mixed/summary.json",
    ],
)
async def test_refuses_anything_outside_the_runs_own_files(
    client: TestClient[Any, Any], path: str
) -> None:
    resp = await client.get(URL(path, encoded=True))
    assert resp.status == 404, path
    assert b"bestTrialId" not in await resp.read()


async def test_a_dotdot_the_client_resolves_lands_on_another_runs_own_route(
    client: TestClient[Any, Any],
) -> None:
    """``a/../b`` reaches the router as ``b``: the other sweep's own files, not a way out."""
    resp = await client.get(URL(f"{SMOKE}/../../team-a/mixed/summary.json"))
    assert resp.url.path == "/files/sweeps/team-a/mixed/summary.json"
    assert resp.status == 200


async def test_another_sweeps_files_only_through_its_own_route(
    client: TestClient[Any, Any],
) -> None:
    ok = await client.get("/files/sweeps/team-a/mixed/summary.json")
    assert ok.status == 200
    for other in ("evidence/../../team-a/mixed/summary.json", "../mixed/summary.json"):
        resp = await client.get(URL(f"{SMOKE}/{other.replace('/', '%2F')}", encoded=True))
        assert resp.status == 404
