"""Driving the web view in Debian's Chromium with Playwright (async API), as
/work/shared/TESTING.md says: Playwright's own browser is never downloaded, and the
background connections a closed network refuses are switched off.

Helpers: the browser launch, a page at a viewport that records console errors, the
keyboard walk (which element each Tab reaches), the page's horizontal overflow, and
full-page screenshots kept in the test's folder (and ``$TUNIX_RT_UI_SCREENSHOTS``)."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from playwright.async_api import Browser, ConsoleMessage, Error, Page, async_playwright

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
SCREENSHOTS_ENV = "TUNIX_RT_UI_SCREENSHOTS"

INTERACTIVE = (
    "a[href], button, input:not([type=hidden]), select, textarea, [tabindex]:not([tabindex='-1'])"
)
MARK = """(selector) => {
  const shown = (el) => el.getClientRects().length > 0
    && getComputedStyle(el).visibility !== "hidden";
  const found = [...document.querySelectorAll(selector)].filter(shown);
  found.forEach((el, i) => el.setAttribute("data-pw", String(i)));
  return found.length;
}"""
"""Numbers every shown interactive element (``data-pw``) and says how many there are."""


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """Debian's Chromium, headless, through Playwright."""
    assert CHROMIUM is not None, "no chromium on PATH"
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@dataclass
class Tab:
    """A page at one viewport, with what its console said."""

    page: Page
    errors: list[str] = field(default_factory=list)


async def open_tab(browser: Browser, viewport: dict[str, int] | None = None) -> Tab:
    context = await browser.new_context(viewport=viewport or DESKTOP)  # type: ignore[arg-type]
    tab = Tab(await context.new_page())

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            tab.errors.append(message.text)

    tab.page.on("console", console)
    tab.page.on("pageerror", lambda exc: tab.errors.append(str(exc)))
    return tab


async def tab_walk(page: Page, limit: int = 400) -> tuple[int, list[str]]:
    """Press Tab from the top of the page until focus leaves it; returns how many shown
    interactive elements there are and the ``data-pw`` number of each one focused."""
    count = int(await page.evaluate(MARK, INTERACTIVE))
    await page.evaluate("() => document.activeElement && document.activeElement.blur()")
    reached: list[str] = []
    for _ in range(limit):
        await page.keyboard.press("Tab")
        mark = await page.evaluate(
            "() => document.activeElement && document.activeElement.getAttribute('data-pw')"
        )
        if mark is None or (reached and mark == reached[0]):
            break
        reached.append(str(mark))
    return count, reached


async def tab_to(page: Page, selector: str, limit: int = 200) -> None:
    """Press Tab until the focused element matches ``selector`` (AssertionError if never)."""
    for _ in range(limit):
        await page.keyboard.press("Tab")
        if await page.evaluate(
            "(s) => !!document.activeElement && document.activeElement.matches(s)", selector
        ):
            return
    raise AssertionError(f"Tab never reached {selector}")


async def overflow(page: Page) -> int:
    """How far the page itself scrolls sideways (0: it fits; tables scroll in their own
    containers and do not count)."""
    return int(
        await page.evaluate("() => document.scrollingElement.scrollWidth - window.innerWidth")
    )


@dataclass
class Screenshots:
    """Full-page screenshots in ``folder``, copied to ``$TUNIX_RT_UI_SCREENSHOTS`` when set."""

    folder: Path
    taken: list[Path] = field(default_factory=list)

    async def take(self, page: Page, name: str) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{name}.png"
        try:
            await page.screenshot(path=str(path), full_page=True)
        except Error as exc:  # a screenshot is a record, not the check
            raise AssertionError(f"screenshot {name}: {exc}") from exc
        self.taken.append(path)
        extra = os.environ.get(SCREENSHOTS_ENV)
        if extra:
            Path(extra).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, Path(extra) / path.name)
        return path
