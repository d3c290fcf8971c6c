"""A sweep's page: the trial table sorts by every column, the charts draw every trial,
failed trials show their error, the goal and budget and the evidence are there, and a
running sweep refreshes itself."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from support.ui_pages import svg, table_ids
from support.ui_store import MIXED_TRIALS, T0
from tunix_rt.storage import Store

MIXED = "/sweeps/team-a/mixed"
IDS = list(MIXED_TRIALS)


def expected_value(trial_id: str, column: str) -> Any:
    """Each column's value straight from the test data (support.ui_store)."""
    index = IDS.index(trial_id)
    lr, batch, decay, state, score, steps, _ = MIXED_TRIALS[trial_id]
    start = T0 + timedelta(minutes=5 * index)
    return {
        "trial": trial_id,
        "state": state.value,
        "score": score,
        "param.learningRate": lr,
        "param.batchSize": batch,
        "param.weightDecay": decay,
        "steps": steps,
        "wall_seconds": 60.0 * (index + 1),
        "accelerator_hours": 0.01 * (index + 1),
        "started_at": start,
        "finished_at": start + timedelta(minutes=index + 1),
    }[column]


def expected_order(column: str, descending: bool) -> list[str]:
    have = [t for t in IDS if expected_value(t, column) is not None]
    lacking = [t for t in IDS if expected_value(t, column) is None]
    return sorted(have, key=lambda t: expected_value(t, column), reverse=descending) + lacking


COLUMNS = [
    "trial",
    "state",
    "score",
    "param.batchSize",
    "param.learningRate",
    "param.weightDecay",
    "steps",
    "wall_seconds",
    "accelerator_hours",
    "started_at",
    "finished_at",
]


@pytest.mark.parametrize("column", COLUMNS)
@pytest.mark.parametrize("order", ["asc", "desc"])
async def test_the_trial_table_sorts_by_every_column(
    client: TestClient[Any, Any], column: str, order: str
) -> None:
    resp = await client.get(f"{MIXED}?sort={column}&order={order}")
    assert resp.status == 200
    shown = table_ids(await resp.text(), "trials", "data-trial")
    assert shown == expected_order(column, order == "desc")


async def test_the_headers_are_the_columns_and_the_default_is_best_first(
    client: TestClient[Any, Any],
) -> None:
    html = await (await client.get(MIXED)).text()
    head = html.split('<table id="trials"', 1)[1].split("</thead>", 1)[0]
    for column in COLUMNS:
        assert f"sort={column}&amp;order=" in head
    assert table_ids(html, "trials", "data-trial") == ["t_00001", "t_00000", "t_00003", "t_00002"]
    assert 'class="best"' in html.split('data-trial="t_00001"', 1)[1].split(">", 1)[0]


async def test_the_charts_draw_a_mark_per_trial(client: TestClient[Any, Any]) -> None:
    html = await (await client.get(MIXED)).text()
    scored = [t for t, v in MIXED_TRIALS.items() if v[4] is not None]
    for param in ("learningRate", "batchSize", "weightDecay"):
        chart = svg(html, f"primary_score vs {param}")
        assert chart.count('<circle class="pt"') == len(scored)  # the failed trial has no score
        for trial_id in scored:  # each point links to its trial's page
            assert f'<a href="/sweeps/team-a/mixed/trials/{trial_id}"' in chart
    assert "learningRate (log)" in svg(html, "primary_score vs learningRate")  # loguniform
    assert "(log)" not in svg(html, "primary_score vs weightDecay")
    parallel = svg(html, "Parameters and primary_score, a line a trial")
    assert parallel.count('<polyline class="line"') == len(scored)
    assert "1 trial(s) without every value left out" in parallel
    with_curve = [t for t, v in MIXED_TRIALS.items() if v[5] >= 10]  # a point every 10 steps
    for metric in ("loss", "reward_mean"):
        curves = svg(html, f"Learning curves: {metric}")
        assert curves.count('<polyline class="series"') == len(with_curve)
    bars = svg(html, "primary_score per trial (best in orange)")
    assert bars.count("<rect") >= len(scored)


async def test_failed_trials_show_their_error_escaped(client: TestClient[Any, Any]) -> None:
    html = await (await client.get(MIXED)).text()
    failed = html.split('<section aria-labelledby="failed-h" id="failed">', 1)[1]
    failed = failed.split("</section>", 1)[0]
    assert "Failed trials (1)" in failed and "t_00002" in failed
    assert "FloatingPointError: loss is nan &lt;at step 7&gt;" in failed
    assert "<at step 7>" not in html


async def test_the_goal_and_budget_are_shown(client: TestClient[Any, Any]) -> None:
    html = await (await client.get(MIXED)).text()
    goal = html.split('<h2 id="goal-h">', 1)[1].split("</section>", 1)[0]
    for fact, value in [
        ("objective", "max primary_score"),
        ("goal", "0.9"),
        ("algorithm", "random"),
        ("steps per trial (smokeSteps)", "40"),
        ("accelerator-hours budget", "2"),
        ("wall-clock budget (s)", "7200"),
        ("failed trials allowed", "1"),
    ]:
        assert f"<dt>{fact}</dt><dd>{value}</dd>" in goal
    assert "loguniform" in goal  # the search space


async def test_a_real_sweep_links_its_evidence_and_verifies_its_bundle(
    client: TestClient[Any, Any],
) -> None:
    html = await (await client.get("/sweeps/local/sweep-smoke")).text()
    base = "/files/sweeps/local/sweep-smoke"
    assert f'href="{base}/evidence/report.html"' in html
    assert (
        f'href="{base}/evidence/submission/tunix_rt_sweep-smoke_20261206_808ade3.zip" download'
        in html
    )
    assert "✓ Verified: 11 files" in html
    assert f'href="{base}/logs/driver-20261206T162058Z.log"' in html
    assert f'href="{base}/summary.json"' in html
    assert 'href="/rehearsals/local/sweep-smoke-best"' in html  # promoted from it
    assert table_ids(html, "trials", "data-trial")[0] == "2791c_00004"


async def test_a_running_sweep_refreshes_itself(client: TestClient[Any, Any]) -> None:
    html = await (await client.get("/sweeps/team-b/growing")).text()
    assert 'id="live" data-refresh="5"' in html
    assert '<noscript><meta http-equiv="refresh" content="5"></noscript>' in html
    assert '<script src="/static/ui.js" defer></script>' in html
    assert table_ids(html, "trials", "data-trial") == ["g_00000", "g_00001"]
    assert "The evidence bundle is written when the sweep ends." in html
    fragment = await (await client.get("/sweeps/team-b/growing?fragment=live")).text()
    assert fragment.lstrip().startswith('<div id="live" data-refresh="5">')
    assert "<html" not in fragment and 'data-trial="g_00001"' in fragment
    script = await client.get("/static/ui.js")
    assert script.status == 200 and "fragment" in await script.text()


async def test_a_finished_sweep_does_not_refresh(client: TestClient[Any, Any]) -> None:
    html = await (await client.get(MIXED)).text()
    assert "data-refresh" not in html and "http-equiv" not in html


async def test_a_damaged_record_is_named_not_hidden(
    client: TestClient[Any, Any], store: Store
) -> None:
    store.write_text("team-b/growing/trials/g_00009.json", '{"trialId": ')
    html = await (await client.get("/sweeps/team-b/growing")).text()
    problems = html.split('id="problems"', 1)[1].split("</div>", 1)[0]
    assert "g_00009.json" in problems
    assert table_ids(html, "trials", "data-trial") == ["g_00000", "g_00001"]


async def test_the_page_follows_a_rewritten_record(
    client: TestClient[Any, Any], store: Store
) -> None:
    before = await (await client.get("/sweeps/team-b/growing")).text()
    assert "1 / 3" in before
    record = store.read_json("team-b/growing/trials/g_00001.json")
    record.update(state="Succeeded", primaryScore=0.8, steps=20)
    store.write_json("team-b/growing/trials/g_00001.json", record)
    after = await (await client.get("/sweeps/team-b/growing")).text()
    assert "2 / 3" in after and "0.8" in after


@pytest.mark.parametrize(
    "path",
    [
        "/sweeps/team-a/nope",
        "/sweeps/team-a/rehearsals",
        "/sweeps/Team_A/mixed",
        "/sweeps/team-a/mixed/trials/t_9",
    ],
)
async def test_what_is_not_there_is_a_404(client: TestClient[Any, Any], path: str) -> None:
    resp = await client.get(path)
    assert resp.status == 404
    assert "<main" in await resp.text()


async def test_a_reused_trial_is_marked_with_the_sweep_it_came_from(
    client: TestClient[Any, Any], store: Store
) -> None:
    """A warm start's reused trial ran in an earlier sweep: its row and its page say which."""
    summary = store.read_json("team-a/mixed/summary.json")
    origin = {"sweep": "last-week", "trialId": "t_00042", "uri": "file:///runs/team-a/last-week"}
    summary["trials"][3]["reusedFrom"] = origin
    store.write_json("team-a/mixed/summary.json", summary)
    reused = summary["trials"][3]["trialId"]
    html = await (await client.get(MIXED)).text()
    row = html.split(f'<tr id="trial-{reused}"', 1)[1].split("</tr>", 1)[0]
    assert "reused from last-week" in row
    others = html.split('<table id="trials">', 1)[1].replace(row, "")
    assert "reused from" not in others
    page = await (await client.get(f"{MIXED}/trials/{reused}")).text()
    assert 'Measured by sweep <a href="/sweeps/team-a/last-week">last-week</a>' in page
    plain = await (await client.get(f"{MIXED}/trials/{IDS[0]}")).text()
    assert "Measured by sweep" not in plain


async def test_a_preempted_trial_says_so_and_the_sweep_counts_it(
    client: TestClient[Any, Any], store: Store
) -> None:
    """A preemption is a resume from a checkpoint, not a failure: counted, never red."""
    before = await (await client.get(MIXED)).text()
    assert 'id="preemptions"' not in before and ">preempted " not in before
    summary = store.read_json("team-a/mixed/summary.json")
    summary["trials"][0].update(preemptions=2, lostSteps=7)
    store.write_json("team-a/mixed/summary.json", summary)
    preempted = summary["trials"][0]["trialId"]
    html = await (await client.get(MIXED)).text()
    assert '<b id="preemptions">2</b>' in html
    row = html.split(f'<tr id="trial-{preempted}"', 1)[1].split("</tr>", 1)[0]
    assert "preempted 2x" in row and "7 steps re-done" in row
    page = await (await client.get(f"{MIXED}/trials/{preempted}")).text()
    assert "preemptions<b>2</b> <small>7 steps re-done</small>" in page
