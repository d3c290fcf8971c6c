"""The web view in a real browser (issue 27, item 3): Debian's Chromium driven by
Playwright. The list; a running sweep whose page swaps in a trial written between two
polls (no reload); sorting the trial table from the keyboard; a trial's traces as text;
Promote against a local bare repository; the skip link and every interactive element
reached by Tab; no sideways scrolling of the page at 1280 px or on a phone (390 x 844).
Each page is kept as a screenshot in the test's folder (and ``$TUNIX_RT_UI_SCREENSHOTS``).
Every wait is Playwright's auto-waiting ``expect``; nothing sleeps."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect
from typer.testing import CliRunner

from support.browser import (
    CHROMIUM,
    DESKTOP,
    PHONE,
    Screenshots,
    chromium,
    open_tab,
    overflow,
    tab_to,
    tab_walk,
)
from support.gitops import BEST, SWEEP, bare_repo, branches, finished_sweep, git_env, show
from support.ui_store import XSS, curve
from tunix_rt.api.trial import TrialResult, TrialState
from tunix_rt.cli import app as cli_app
from tunix_rt.contract.layout import SweepFiles, SweepLayout
from tunix_rt.storage import Store
from tunix_rt.ui import Served, UiConfig, make_app, serve
from tunix_rt.ui.promote import git_promoter

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on PATH (.ci/run installs Debian's chromium package)"
)

PAGES = {
    "runs": "",
    "sweep": "sweeps/team-a/mixed",
    "sweep-m34": "sweeps/local/sweep-smoke",
    "trial": "sweeps/team-a/mixed/trials/t_00001",
    "rehearsal": "rehearsals/team-a/mixed-best",
    "running": "sweeps/team-b/growing",
}
WAIT_MS = 30_000
"""Playwright's wait bound for what the page does by itself (a refresh every second)."""


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as launched:
        yield launched


@pytest.fixture
async def served(store: Store) -> AsyncIterator[Served]:
    """The app over tests/ui's store, refreshing running pages every second."""
    running = await serve(make_app(store.uri, UiConfig(refresh_seconds=1)), port=0)
    yield running
    await running.close()


@pytest.fixture
async def still(store: Store) -> AsyncIterator[Served]:
    """The same app with running pages refreshing once an hour: nothing swaps the page's
    live part while a test walks it with the keyboard or measures it."""
    running = await serve(make_app(store.uri, UiConfig(refresh_seconds=3600)), port=0)
    yield running
    await running.close()


@pytest.fixture
def shots(tmp_path: Path) -> Screenshots:
    return Screenshots(tmp_path / "screenshots")


async def trial_order(page: Page) -> list[str]:
    return await page.locator("table#trials tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.trial)"
    )


async def test_the_list_shows_every_run_and_opens_one(
    browser: Browser, still: Served, shots: Screenshots
) -> None:
    tab = await open_tab(browser)
    page = tab.page
    await page.goto(still.url)
    await expect(page).to_have_title(re.compile("Sweeps and rehearsals"))
    runs = page.locator("table#runs tbody tr")
    await expect(runs).to_have_count(6)
    await expect(page.locator('tr[data-run="team-a/mixed"]')).to_contain_text("Succeeded")
    await shots.take(page, "runs-1280")
    await page.get_by_role("link", name="mixed", exact=True).click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Sweep mixed")
    await expect(page.locator("table#trials tbody tr")).to_have_count(4)
    assert tab.errors == []


async def test_a_running_sweep_swaps_in_the_trial_written_between_polls(
    browser: Browser, served: Served, store: Store, shots: Screenshots
) -> None:
    tab = await open_tab(browser)
    page = tab.page
    await page.goto(served.url + PAGES["running"])
    await expect(page.locator("#live")).to_have_attribute("data-refresh", "1")
    await expect(page.locator("table#trials tbody tr")).to_have_count(2)
    await page.evaluate("() => { window.notReloaded = true; }")
    await shots.take(page, "running-before")

    files = SweepFiles(store, SweepLayout.of("team-b", "growing"))
    files.write_trial(
        TrialResult(
            trial_id="g_00002", sweep="growing", namespace="team-b",
            params={"learningRate": 5e-3, "batchSize": 64, "weightDecay": 0.05},
            state=TrialState.SUCCEEDED, primary_score=0.625, steps=30,
            started_at=datetime(2026, 1, 5, 9, 30, tzinfo=UTC), curve=curve(30, 5e-3),
        )
    )  # fmt: skip
    new_row = page.locator('table#trials tr[data-trial="g_00002"]')
    await expect(new_row).to_be_visible(timeout=WAIT_MS)
    await expect(new_row).to_contain_text("0.625")
    # Its learning curve and its point in the charts arrived with it: links to the trial.
    await expect(page.locator('#charts a[href$="/trials/g_00002"]').first).to_be_attached()
    assert await page.evaluate("() => window.notReloaded === true")  # swapped, not reloaded
    await shots.take(page, "running-after")
    assert tab.errors == []


async def test_the_trial_table_sorts_from_the_keyboard(
    browser: Browser, served: Served, shots: Screenshots
) -> None:
    tab = await open_tab(browser)
    page = tab.page
    await page.goto(served.url + PAGES["sweep"])
    assert await trial_order(page) == ["t_00001", "t_00000", "t_00003", "t_00002"]  # best first
    header = "table#trials th a[href*='sort=param.learningRate']"
    await tab_to(page, header)
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(re.compile(r"sort=param\.learningRate&order=asc"))
    sorted_th = page.locator("table#trials th", has=page.locator("a", has_text="learningRate"))
    await expect(sorted_th).to_have_attribute("aria-sort", "ascending")
    assert await trial_order(page) == ["t_00003", "t_00000", "t_00001", "t_00002"]  # by lr
    await tab_to(page, header)  # again: the other way round
    await page.keyboard.press("Enter")
    await expect(sorted_th).to_have_attribute("aria-sort", "descending")
    assert await trial_order(page) == ["t_00002", "t_00001", "t_00000", "t_00003"]
    await shots.take(page, "sweep-sorted-by-lr")


async def test_a_trials_traces_are_text(
    browser: Browser, served: Served, shots: Screenshots
) -> None:
    tab = await open_tab(browser)
    page = tab.page
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: dialogs.append(dialog.message))
    await page.goto(served.url + PAGES["trial"])
    rows = page.locator("table#eval-rows")
    await expect(rows).to_contain_text("what is <b>0+1</b>?")
    await expect(rows).to_contain_text(XSS)
    assert await rows.locator("b, img, script").count() == 0  # shown, never parsed
    await expect(page.locator("#live svg").first).to_be_visible()  # its learning curve
    await shots.take(page, "trial-1280")
    assert dialogs == [] and tab.errors == []


async def test_promote_commits_the_rehearsal_to_the_repository(
    browser: Browser, tmp_path: Path, shots: Screenshots
) -> None:
    env = git_env()
    bare = bare_repo(tmp_path / "git", env)
    finished_sweep(tmp_path / "runs")
    promoter = git_promoter(str(bare), env=env)
    config = UiConfig(promote_enabled=True, git_repo=promoter.shown)
    served = await serve(make_app(f"file://{tmp_path / 'runs'}", config, promoter=promoter))
    try:
        tab = await open_tab(browser)
        page = tab.page
        await page.goto(served.url + f"sweeps/local/{SWEEP}")
        button = page.get_by_role("button", name=re.compile("^Promote the best trial"))
        await shots.take(page, "promote-before")
        await button.click()
        outcome = page.locator("#outcome")
        await expect(outcome).to_contain_text("pushed branch", timeout=WAIT_MS)
        await shots.take(page, "promote-outcome")
    finally:
        await served.close()
    branch = f"tunix-rt/promote-{SWEEP}-{BEST}"
    await expect(page.locator("dl.facts")).to_contain_text(branch)
    assert branch in branches(bare, env)
    manifest = tmp_path / "promoted.yaml"
    manifest.write_text(
        show(bare, f"{branch}:rehearsals/{SWEEP}/{SWEEP}-best-rehearsal.yaml", env=env)
    )
    assert "kind: Rehearsal" in manifest.read_text()
    checked = CliRunner().invoke(cli_app, ["validate", str(manifest)])
    assert checked.exit_code == 0 and f"Rehearsal/{SWEEP}-best is valid" in checked.output
    assert tab.errors == []


@pytest.mark.parametrize("name", ["runs", "sweep", "trial", "rehearsal"])
async def test_keyboard_reaches_the_skip_link_and_every_control(
    browser: Browser, still: Served, name: str
) -> None:
    tab = await open_tab(browser)
    page = tab.page
    await page.goto(still.url + PAGES[name])
    count, reached = await tab_walk(page)  # from the top of the page, one pass
    assert count > 5 and sorted(reached, key=int) == [str(i) for i in range(count)]
    assert len(reached) == len(set(reached)) and reached[0] == "0"  # each once, in order

    await page.goto(still.url + PAGES[name])
    await page.keyboard.press("Tab")
    skip = page.locator("a.skip")
    await expect(skip).to_be_focused()  # the first stop
    box = await skip.bounding_box()
    assert box is not None and box["y"] >= 0 and box["x"] >= 0  # shown when focused
    await page.keyboard.press("Enter")
    await expect(page.locator("main#main")).to_be_focused()
    await page.keyboard.press("Tab")  # the next stop is inside the content, past the header
    assert await page.evaluate(
        "() => document.querySelector('main').contains(document.activeElement)"
    )
    assert tab.errors == []


@pytest.mark.parametrize(("width", "viewport"), [("1280", DESKTOP), ("390", PHONE)])
async def test_no_page_scrolls_sideways(
    browser: Browser, still: Served, shots: Screenshots, width: str, viewport: dict[str, int]
) -> None:
    tab = await open_tab(browser, viewport)
    page = tab.page
    wide: dict[str, int] = {}
    for name, path in PAGES.items():
        await page.goto(still.url + path)
        await expect(page.locator("main#main")).to_be_visible()
        if (extra := await overflow(page)) > 0:
            wide[name] = extra
        await shots.take(page, f"{name}-{width}")
    assert wide == {}, f"pages wider than {width} px (by px): {wide}"
    assert tab.errors == []
