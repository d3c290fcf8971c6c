"""A trial's page (params, curve, eval rows with their traces as text) and a rehearsal's
(score, bundle and whether it verifies, failed attempts)."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

from aiohttp.test_utils import TestClient

from support.ui_pages import svg, table_ids
from support.ui_store import XSS
from tunix_rt.storage import Store
from tunix_rt.ui.rehearsals import rehearsal_hours


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.srcs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.srcs += [v or "" for k, v in attrs if k == "src"]


def parsed(html: str) -> Tags:
    tags = Tags()
    tags.feed(html)
    return tags


async def test_a_trial_shows_params_curve_and_eval_rows_as_text(
    client: TestClient[Any, Any],
) -> None:
    resp = await client.get("/sweeps/team-a/mixed/trials/t_00001")
    assert resp.status == 200
    html = await resp.text()
    assert "<dt>learningRate</dt><dd>0.01</dd>" in html and "<dt>batchSize</dt><dd>32</dd>" in html
    assert "polyline" in svg(html, "loss")  # its learning curve
    rows = html.split('<table id="eval-rows"', 1)[1].split("</table>", 1)[0]
    assert 'href="/rehearsals/team-a/mixed-best"' in html  # whose rows these are
    assert "The first 4 of 4 eval rows" in html
    # the trace is model output: shown as text, never as markup
    assert "&lt;script&gt;alert(&#39;trace&#39;)&lt;/script&gt;" in rows
    assert "&lt;reasoning&gt;" in rows and "what is &lt;b&gt;0+1&lt;/b&gt;?" in rows
    tags = parsed(html)
    assert tags.tags.count("script") == 1 and tags.srcs == ["/static/ui.js"]  # ours only
    assert "img" not in tags.tags
    assert XSS not in html
    assert rows.count("✓ correct") == 1 and rows.count("✗ wrong") == 3


async def test_a_trial_without_a_rehearsal_says_where_rows_come_from(
    client: TestClient[Any, Any],
) -> None:
    html = await (await client.get("/sweeps/team-a/mixed/trials/t_00000")).text()
    assert "A trial keeps its score, not its eval rows; a rehearsal of it does." in html
    assert 'id="eval-rows"' not in html


async def test_a_failed_trial_shows_its_error(client: TestClient[Any, Any]) -> None:
    html = await (await client.get("/sweeps/team-a/mixed/trials/t_00002")).text()
    assert '<pre class="error">FloatingPointError: loss is nan &lt;at step 7&gt;</pre>' in html
    assert "phase-Failed" in html


async def test_a_running_trial_refreshes(client: TestClient[Any, Any]) -> None:
    running = await (await client.get("/sweeps/team-b/growing/trials/g_00001")).text()
    done = await (await client.get("/sweeps/team-b/growing/trials/g_00000")).text()
    assert 'data-refresh="5"' in running and "data-refresh" not in done


async def test_a_real_trial_shows_its_rehearsals_rows(client: TestClient[Any, Any]) -> None:
    html = await (await client.get("/sweeps/local/sweep-smoke/trials/2791c_00004")).text()
    assert "The first 20 of 512 eval rows" in html
    body = html.split('<table id="eval-rows"', 1)[1].split("<tbody>", 1)[1].split("</tbody>")[0]
    assert body.count("<tr>") == 20


async def test_a_rehearsal_shows_score_source_and_a_verified_bundle(
    client: TestClient[Any, Any],
) -> None:
    html = await (await client.get("/rehearsals/local/sweep-smoke-best")).text()
    assert "primary_score<b>1</b>" in html and "512 / 512" in html
    assert 'href="/sweeps/local/sweep-smoke/trials/2791c_00004"' in html
    assert "✓ Verified: 7 files" in html
    base = "/files/rehearsals/local/sweep-smoke-best"
    assert (
        f'href="{base}/submission/tunix_rt_sweep-smoke-best_20261206_808ade3.zip" download' in html
    )
    assert f'href="{base}/report.html"' in html and f'href="{base}/eval_rows.jsonl"' in html
    assert svg(html, "loss").count("polyline") == 1
    assert "<dt>commit</dt><dd>808ade3442796cd2d1fcaa4d79a9923edfdf85d9</dd>" in html
    # 626.108 s on one CPU device, counted as a sweep counts a trial
    assert "accelerator-hours<b>0.174</b>" in html


def test_a_rehearsals_accelerator_hours_count_as_a_trials_do() -> None:
    hour = {"wall_seconds": 3600.0}
    assert rehearsal_hours(hour | {"devices": ["cuda:0", "cuda:1"]}) == 2.0
    assert rehearsal_hours(hour | {"devices": ["TPU_0(process=0)"] * 8}) == 8.0
    # a CPU split into 4 JAX devices is still one device, as SweepSpec counts it
    assert rehearsal_hours(hour | {"devices": ["TFRT_CPU_0", "TFRT_CPU_1"] * 2}) == 1.0
    assert rehearsal_hours({"devices": ["cpu:0"]}) is None
    assert rehearsal_hours(hour | {"devices": []}) is None


async def test_a_tampered_bundle_does_not_verify(
    client: TestClient[Any, Any], store: Store
) -> None:
    folder = "local/rehearsals/sweep-smoke-best/submission"
    key = f"{folder}/tunix_rt_sweep-smoke-best_20261206_808ade3.zip"
    data = bytearray(store.read_bytes(key))
    data[len(data) // 3] ^= 0xFF
    store.write_bytes(key, bytes(data))
    html = await (await client.get("/rehearsals/local/sweep-smoke-best")).text()
    check = html.split('id="verification"', 1)[1].split("</div>", 1)[0]
    assert "✗ The bundle does not verify" in check and "<li>" in check


async def test_a_failed_rehearsal_shows_why(client: TestClient[Any, Any]) -> None:
    html = await (await client.get("/rehearsals/team-a/broken")).text()
    assert "phase-Failed" in html
    assert "TrainingFailed" in html and "loss became nan at step 3 &lt;see the log&gt;" in html
    assert 'href="/files/rehearsals/team-a/broken/failed/20260105T100000Z/failure.json"' in html
    assert "No bundle yet." in html


async def test_a_rehearsal_the_store_lacks_is_a_404(client: TestClient[Any, Any]) -> None:
    resp = await client.get("/rehearsals/team-a/nope")
    assert resp.status == 404 and "no evidence of rehearsal team-a/nope" in await resp.text()


async def test_the_list_links_each_row_to_its_page(client: TestClient[Any, Any]) -> None:
    html = await (await client.get("/")).text()
    for run in table_ids(html, "runs", "data-run"):
        namespace, name = run.split("/")
        row = html.split(f'data-run="{run}"', 1)[1].split("</tr>", 1)[0]
        before = html.split(f'data-run="{run}"')[0][-40:]
        kind = "rehearsals" if 'data-kind="Rehearsal"' in before else "sweeps"
        href = f'href="/{kind}/{namespace}/{name}"'
        assert href in row
        assert (await client.get(f"/{kind}/{namespace}/{name}")).status == 200
