"""The reports in a real browser: headless Chromium (Debian's `chromium`, which .ci/run
installs) loads a sweep's and a rehearsal's report.html from a real run
(submission_runs/m34_v1), and the test reads back what the browser laid out: the charts
are drawn with a size, the trial table has every trial, nothing logged an error."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUN = ROOT / "submission_runs" / "m34_v1"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on PATH (.ci/run installs Debian's chromium package)"
)

# The report is opened in an iframe of this page, which measures it once it has loaded
# and writes the figures into #out, where --dump-dom shows them.
HARNESS = """<!doctype html><html><body><pre id="out">not loaded</pre>
<iframe id="f" src="report.html" width="1000" height="1400"></iframe>
<script>
const frame = document.getElementById("f");
frame.addEventListener("load", () => {
  const doc = frame.contentDocument;
  const box = (el) => { const r = el.getBoundingClientRect(); return [r.width, r.height]; };
  const out = {
    title: doc.title,
    svgs: [...doc.querySelectorAll("svg")].map((s) => ({
      size: box(s),
      label: s.getAttribute("aria-label") || "",
      marks: s.querySelectorAll("rect, path, polyline, circle, line").length,
    })),
    tables: [...doc.querySelectorAll("table")].map((t) => ({
      size: box(t), rows: t.querySelectorAll("tr").length, text: t.innerText,
    })),
    errors: frame.contentWindow.__errors || [],
  };
  document.getElementById("out").textContent = JSON.stringify(out);
});
</script></body></html>"""


def open_in_chromium(report: Path, tmp_path: Path) -> tuple[dict[str, Any], str]:
    """(what the browser measured, its log) for one report.html."""
    page = tmp_path / "report.html"
    shutil.copyfile(report, page)
    harness = tmp_path / "harness.html"
    harness.write_text(HARNESS)
    assert CHROMIUM is not None
    out = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--allow-file-access-from-files",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=10000",
            "--dump-dom",
            harness.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    found = re.search(r'<pre id="out">(.*?)</pre>', out.stdout, re.S)
    assert found, f"chromium did not render the harness: {out.stderr[-2000:]}"
    text = html.unescape(found.group(1))
    assert text != "not loaded", "the report never finished loading"
    return json.loads(text), out.stderr


def console_errors(log: str) -> list[str]:
    """What the page logged at error level (Chromium's CONSOLE lines), its own or a load."""
    return [
        line
        for line in log.splitlines()
        if "CONSOLE" in line and ("ERROR" in line.split("CONSOLE")[0] or "Uncaught" in line)
    ]


def test_sweep_report_draws_its_chart_and_every_trial(tmp_path: Path) -> None:
    summary = json.loads((RUN / "sweep" / "summary.json").read_text())
    trial_ids = [t["trialId"] for t in summary["trials"]]
    seen, log = open_in_chromium(RUN / "sweep" / "evidence" / "report.html", tmp_path)
    assert console_errors(log) == []
    charts = [s for s in seen["svgs"] if "per trial" in s["label"]]
    assert charts, seen["svgs"]
    width, height = charts[0]["size"]
    assert width > 200 and height > 100
    assert charts[0]["marks"] >= len(trial_ids)  # a bar a trial, at least
    table = next(t for t in seen["tables"] if all(i in t["text"] for i in trial_ids))
    assert table["rows"] == len(trial_ids) + 1 and table["size"][1] > 0


def test_rehearsal_report_draws_its_curves_and_tables(tmp_path: Path) -> None:
    summary = json.loads((RUN / "eval_summary.json").read_text())
    seen, log = open_in_chromium(RUN / "report.html", tmp_path)
    assert console_errors(log) == []
    curves = {s["label"]: s for s in seen["svgs"]}
    for name in ("loss", "learning_rate"):  # the learning curve, one chart a metric
        width, height = curves[name]["size"]
        assert width > 200 and height > 100 and curves[name]["marks"] > 0
    assert any("per trial" in label for label in curves)  # the source sweep's chart
    metrics = next(t for t in seen["tables"] if t["text"].startswith("cap_hit_rate"))
    assert f"primary_score\t{summary['primary_score']:g}" in metrics["text"]
    rows = next(t for t in seen["tables"] if "model output" in t["text"])
    assert rows["rows"] > 1 and "<answer>" in rows["text"]  # the traces, shown as text


def test_the_check_sees_a_page_error(tmp_path: Path) -> None:
    """The console check is not blind: a report whose script throws is caught."""
    broken = tmp_path / "broken.html"
    broken.write_text("<html><body><table><tr><td>x</td></tr></table><script>nope()</script>")
    (tmp_path / "out").mkdir()
    seen, log = open_in_chromium(broken, tmp_path / "out")
    assert seen["tables"][0]["rows"] == 1
    assert any("nope" in line for line in console_errors(log)), log[-2000:]
