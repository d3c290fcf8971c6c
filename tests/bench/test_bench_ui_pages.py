"""benchmarks/ui_pages.py in quick mode (what ``make bench``'s external section runs): it
builds a store, times the pages and merges its keys into the results it is given, never
over the recorded ones. No time is asserted: quick sizes mean nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = ROOT / "benchmarks"


def test_quick_ui_pages_merges_its_figures(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    recorded = (BENCHMARKS / "results.json").read_bytes()
    readme = (BENCHMARKS / "README.md").read_bytes()
    out = tmp_path / "results.json"
    env = {**subprocess_env, "BENCH_QUICK": "1", "BENCH_RESULTS": str(out)}
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / "ui_pages.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    results = json.loads(out.read_text())
    assert results["ui_list_p95_ms_200x20"] > 0 and results["ui_sweep_p95_ms_20"] > 0
    pages = results["ui"]["pages"]
    assert set(pages) == {"list", "sweep", "sweep_running"}
    assert len(pages["list"]["runs_ms"]) == results["ui"]["repeats"]
    assert pages["list"]["uncached"]["p50_ms"] > 0
    assert (BENCHMARKS / "results.json").read_bytes() == recorded
    assert (BENCHMARKS / "README.md").read_bytes() == readme
