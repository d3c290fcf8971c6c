"""The live refresh in a real browser (headless Chromium, as tests/evidence's report test):
a running sweep's page fetches its live part, swaps it in, and stops once the run is over,
with nothing logged as an error (the page's CSP lets its one script run). The full
browser suite (keyboard, layouts) is Playwright's, elsewhere."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

import pytest

from tunix_rt.storage import Store
from tunix_rt.ui import UiConfig, make_app, serve
from tunix_rt.ui.config import RunKey

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on PATH (.ci/run installs Debian's chromium package)"
)


async def test_a_running_page_swaps_in_its_update_and_stops(store: Store, tmp_path: Path) -> None:
    asked: list[int] = []

    async def live() -> Mapping[RunKey, str]:  # Running for the page, then it ends
        asked.append(1)
        return {("team-b", "Sweep", "growing"): "Running" if len(asked) == 1 else "Succeeded"}

    served = await serve(make_app(store.uri, UiConfig(refresh_seconds=1), live), port=0)
    try:
        assert CHROMIUM is not None
        proc = await asyncio.create_subprocess_exec(
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
            "--virtual-time-budget=8000", "--dump-dom", served.url + "sweeps/team-b/growing",
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    finally:
        await served.close()
    dom, log = out.decode(), err.decode(errors="replace")
    errors = [line for line in log.splitlines() if "CONSOLE" in line and "ERROR" in line]
    assert errors == []
    assert len(asked) >= 2  # the page, then the script's fetch of ?fragment=live
    assert dom.count('id="live"') == 1 and "phase-Succeeded" in dom
    assert "data-refresh" not in dom.split('id="live"', 1)[1].split(">", 1)[0]  # it stopped
    assert 'data-trial="g_00001"' in dom
