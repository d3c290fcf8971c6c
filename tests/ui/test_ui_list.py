"""The list page: every Sweep and Rehearsal in the store with phase, progress and best
score; the filter form; sorting by every column; the live phases from the API joined in."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from support.ui_pages import MakeClient, table_ids
from tunix_rt.ui import UiConfig
from tunix_rt.ui.config import RunKey

ALL_RUNS = {
    "local/sweep-smoke",
    "local/sweep-smoke-best",
    "team-a/mixed",
    "team-a/mixed-best",
    "team-a/broken",
    "team-b/growing",
}


def row_of(html: str, run: str) -> str:
    return html.split(f'data-run="{run}"', 1)[1].split("</tr>", 1)[0]


async def runs(client: TestClient[Any, Any], query: str = "") -> list[str]:
    resp = await client.get(f"/{query}")
    assert resp.status == 200
    return table_ids(await resp.text(), "runs", "data-run")


async def test_lists_every_sweep_and_rehearsal_with_phase_and_score(
    client: TestClient[Any, Any],
) -> None:
    resp = await client.get("/")
    html = await resp.text()
    assert set(table_ids(html, "runs", "data-run")) == ALL_RUNS
    smoke = row_of(html, "local/sweep-smoke")
    assert "phase-Succeeded" in smoke and "5 / 5" in smoke and "0.6934" in smoke
    mixed = row_of(html, "team-a/mixed")  # one trial failed, three finished well: 4 of 4 done
    assert "phase-Succeeded" in mixed and "4 / 4" in mixed and "0.75" in mixed
    assert "2026-01-05 09:00 UTC" in mixed and "2026-01-05 09:30 UTC" in mixed
    growing = row_of(html, "team-b/growing")  # no summary: its records so far
    assert "phase-Running" in growing and "1 / 3" in growing and ">0.5<" in growing
    assert "phase-Failed" in row_of(html, "team-a/broken")
    assert "phase-Succeeded" in row_of(html, "team-a/mixed-best")
    assert ">0.174<" in row_of(html, "local/sweep-smoke-best")  # its accelerator-hours
    # a run is running: the page refreshes itself (JS, and a meta refresh without it)
    assert 'id="live" data-refresh="5"' in html
    assert '<noscript><meta http-equiv="refresh" content="5"></noscript>' in html
    assert "<main" in html and '<table id="runs"' in html


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("?namespace=team-a", {"team-a/mixed", "team-a/mixed-best", "team-a/broken"}),
        ("?phase=Running", {"team-b/growing"}),
        ("?phase=Failed", {"team-a/broken"}),
        ("?kind=Rehearsal", {"local/sweep-smoke-best", "team-a/mixed-best", "team-a/broken"}),
        ("?q=SMOKE", {"local/sweep-smoke", "local/sweep-smoke-best"}),
        ("?namespace=team-a&kind=Sweep", {"team-a/mixed"}),
    ],
)
async def test_the_filter_form_narrows_the_list(
    client: TestClient[Any, Any], query: str, expected: set[str]
) -> None:
    assert set(await runs(client, query)) == expected


async def test_a_filter_nothing_matches_says_so(client: TestClient[Any, Any]) -> None:
    html = await (await client.get("/?namespace=nowhere")).text()
    assert "No runs match the filter" in html and "0 of 6 runs" in html


async def test_the_filter_form_is_a_get_form_that_keeps_its_values(
    client: TestClient[Any, Any],
) -> None:
    html = await (await client.get("/?namespace=team-a&q=mix&sort=name&order=asc")).text()
    assert '<form class="filter" method="get" action="/"' in html
    assert '<input type="hidden" name="sort" value="name">' in html  # the sort survives it
    assert "<option selected>team-a</option>" in html
    assert 'name="q" value="mix"' in html
    assert "2 of 6 runs" in html


@pytest.mark.parametrize(
    ("column", "ascending"),
    [
        ("name", ["broken", "growing", "mixed", "mixed-best", "sweep-smoke", "sweep-smoke-best"]),
        ("score", ["mixed-best", "growing", "sweep-smoke", "mixed", "sweep-smoke-best"]),
        ("progress", ["growing", "mixed", "sweep-smoke"]),
    ],
)
async def test_sorts_by_a_column_both_ways(
    client: TestClient[Any, Any], column: str, ascending: list[str]
) -> None:
    up = [r.split("/")[1] for r in await runs(client, f"?sort={column}&order=asc")]
    down = [r.split("/")[1] for r in await runs(client, f"?sort={column}&order=desc")]
    assert up[: len(ascending)] == ascending  # runs without a value come last, either way
    assert down[: len(ascending)] == list(reversed(ascending))
    assert len(up) == len(down) == len(ALL_RUNS)


async def test_every_column_header_is_a_sort_link(client: TestClient[Any, Any]) -> None:
    html = await (await client.get("/?namespace=team-a&sort=name&order=asc")).text()
    head = html.split('<table id="runs"', 1)[1].split("</thead>", 1)[0]
    assert head.count("<a href=") == 9
    name = head.split('<th scope="col" aria-sort="ascending"', 1)[1].split("</th>", 1)[0]
    assert '<a href="/?namespace=team-a&amp;sort=name&amp;order=desc">name' in name
    assert head.count('aria-sort="none"') == 8


async def test_pages_of_a_long_list(make_client: MakeClient) -> None:
    client = await make_client(UiConfig(per_page=4))
    first = await runs(client, "?sort=name&order=asc")
    second = await runs(client, "?sort=name&order=asc&page=2")
    assert len(first) == 4 and len(second) == 2 and not set(first) & set(second)
    html = await (await client.get("/?sort=name&order=asc&page=2")).text()
    assert 'aria-current="page">2</a>' in html


async def test_the_live_phases_join_over_the_store(make_client: MakeClient) -> None:
    seen: list[int] = []

    async def live() -> Mapping[RunKey, str]:
        seen.append(1)
        return {
            ("team-b", "Sweep", "growing"): "Failed",  # its RayJob was lost: the API knows
            ("team-c", "Sweep", "queued"): "Pending",  # no files in the store yet
        }

    client = await make_client(live=live)
    html = await (await client.get("/")).text()
    assert seen
    growing = row_of(html, "team-b/growing")
    assert "phase-Failed" in growing and "live" in growing
    queued = row_of(html, "team-c/queued")
    assert "phase-Pending" in queued and "no files yet" in queued and "<a href" not in queued
    assert "phase-Succeeded" in row_of(html, "team-a/mixed")  # not in the API: the store's


async def test_a_failing_live_provider_leaves_the_store_view(make_client: MakeClient) -> None:
    async def broken() -> Mapping[RunKey, str]:
        raise ConnectionError("API server unreachable")

    client = await make_client(live=broken)
    assert set(await runs(client)) == ALL_RUNS


async def test_an_empty_store_says_how_to_fill_it(make_client: MakeClient, tmp_path: Any) -> None:
    from aiohttp.test_utils import TestServer

    from tunix_rt.ui import make_app

    client = TestClient(TestServer(make_app(f"file://{tmp_path / 'empty'}", UiConfig())))
    await client.start_server()
    try:
        html = await (await client.get("/")).text()
        assert "No runs in this store yet" in html and "data-refresh" not in html
    finally:
        await client.close()
