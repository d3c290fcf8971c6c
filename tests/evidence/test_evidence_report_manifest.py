"""report.html (self-contained, escaped, plots) and the manifest's commit/version facts."""

from __future__ import annotations

import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from support.evidence import sample_manifest, sample_rows, sample_summary
from tunix_rt.evidence import commit_info, render_report
from tunix_rt.evidence.manifest import config_sha256, package_versions


class Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend(attrs)


def _succeeded(
    trial_id: str, learning_rate: float, score: float, losses: list[float]
) -> dict[str, Any]:
    """A trial of 20 steps that ended, its loss at steps 10 and 20."""
    return {
        "trial_id": trial_id,
        "params": {"learning_rate": learning_rate},
        "primary_score": score,
        "state": "Succeeded",
        "steps": 20,
        "curve": [{"step": 10, "loss": losses[0]}, {"step": 20, "loss": losses[1]}],
    }


SWEEP = {
    "sweep": "smoke",
    "namespace": "local",
    "best_trial_id": "t-0002",
    "primary_score": 0.5,
    "trials": [
        _succeeded("t-0001", 0.001, 0.25, [2.0, 1.5]),
        _succeeded("t-0002", 0.01, 0.5, [1.8, 0.9]),
        {
            "trial_id": "t-0003",
            "params": {"learning_rate": 0.9},
            "primary_score": None,
            "state": "Failed",
            "steps": 3,
        },
    ],
}


def test_report_is_self_contained_and_escaped() -> None:
    rows = sample_rows()
    rows[0]["prompt"] = "<script>alert('x')</script> & <img src=x onerror=alert(1)>"
    manifest = sample_manifest(run_name="demo-run")
    summary = sample_summary(rows)
    html = render_report(manifest=manifest, summary=summary, rows=rows)
    parser = Collector()
    parser.feed(html)
    assert "script" not in parser.tags
    assert "img" not in parser.tags
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    # No external assets: no src/href attributes at all, only the SVG namespace URL.
    assert not [a for a in parser.attrs if a[0] in {"src", "href"}]
    assert re.findall(r"https?://[^\s\"'<]+", html) == ["http://www.w3.org/2000/svg"] * html.count(
        "<svg"
    )
    assert parser.tags.count("svg") == 1  # the learning curve (loss)
    assert "polyline" in parser.tags
    assert "0.75" in html  # the score
    assert "learningRate" in html  # the config


def test_promoted_report_has_trial_table_and_per_trial_plot() -> None:
    rows = sample_rows()
    manifest = sample_manifest(
        source={
            "sweep": "smoke",
            "trial": "t-0002",
            "params": {"learning_rate": 0.01},
            "trial_primary_score": 0.5,
            "summary_uri": "file:///x/local/smoke/summary.json",
        }
    )
    html = render_report(manifest=manifest, summary=sample_summary(rows), rows=rows, sweep=SWEEP)
    parser = Collector()
    parser.feed(html)
    # the run's learning curve, the per-trial bars, primary_score against learning_rate
    # and the trials' loss curves (the web view's charts: evidence.trial_charts)
    assert parser.tags.count("svg") == 4
    assert "primary_score per trial" in html
    assert parser.tags.count("rect") >= 2  # one bar per scored trial
    scatter = html.split('aria-label="primary_score vs learning_rate"', 1)[1].split("</svg>")[0]
    assert scatter.count('<circle class="pt"') == 2  # a point per scored trial
    assert "learning_rate (log)" in scatter  # 0.001 to 0.9: a log axis without a spec
    curves = html.split('aria-label="Learning curves: loss"', 1)[1].split("</svg>")[0]
    assert curves.count('<polyline class="series"') == 2  # a line per trial with a curve
    assert not [a for a in parser.attrs if a[0] in {"src", "href"}]  # still no links
    assert html.count('<tr class="best">') == 1
    for trial in ("t-0001", "t-0002", "t-0003"):
        assert trial in html
    assert "promoted from sweep <code>smoke</code>" in html
    assert "rehearsal 0.75" in html  # the rehearsal's own score as the reference line


def test_report_is_deterministic() -> None:
    rows = sample_rows()
    kwargs = {"manifest": sample_manifest(), "summary": sample_summary(rows), "rows": rows}
    assert render_report(**kwargs) == render_report(**kwargs)  # type: ignore[arg-type]


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


def test_commit_info_from_git_marks_dirty_trees(tmp_path: Path) -> None:
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "config", "user.email", "t@example.com")
    _git(tmp_path, "config", "user.name", "t")
    (tmp_path / "a.txt").write_text("a")
    _git(tmp_path, "add", "a.txt")
    _git(tmp_path, "commit", "-qm", "a")
    head = _git(tmp_path, "rev-parse", "HEAD")
    clean = commit_info(tmp_path, environ={})
    assert (clean.sha, clean.dirty, clean.source) == (head, False, "git")
    assert clean.short == head[:7]
    (tmp_path / "untracked.txt").write_text("u")
    assert commit_info(tmp_path, environ={}).dirty is False  # untracked files do not count
    (tmp_path / "a.txt").write_text("changed")
    dirty = commit_info(tmp_path, environ={})
    assert dirty.dirty is True
    assert dirty.short == head[:7] + "-dirty"


def test_commit_info_falls_back_to_env_then_unknown(tmp_path: Path) -> None:
    env = commit_info(tmp_path, environ={"TUNIX_RT_COMMIT_SHA": "ABCDEF0123456"})
    assert (env.sha, env.dirty, env.source) == ("abcdef0123456", None, "env")
    unknown = commit_info(tmp_path, environ={"TUNIX_RT_COMMIT_SHA": "not a sha"})
    assert (unknown.sha, unknown.source, unknown.short) == ("unknown", "unknown", "unknown")


def test_versions_and_config_digest() -> None:
    versions = package_versions()
    assert versions["tunix-rt"] == "0.1.0"
    assert set(versions) >= {"python", "jax", "flax", "optax", "ray"}
    assert config_sha256({"b": 1, "a": 2}) == config_sha256({"a": 2, "b": 1})


def test_manifest_image_from_env_and_command_scrubbed() -> None:
    manifest = sample_manifest(
        environ={"TUNIX_RT_IMAGE": "ghcr.io/x/tunix-rt:1", "MY_TOKEN": "supersecretvalue"},
        command=["tunix-rt", "rehearsal", "run", "--token=supersecretvalue"],
    )
    assert manifest["image"] == "ghcr.io/x/tunix-rt:1"
    assert "supersecretvalue" not in str(manifest)
    assert sample_manifest()["image"] == "local"


@pytest.mark.parametrize("uri", ["s3://bucket/p", "file:///tmp/runs"])
def test_manifest_storage_is_recorded(uri: str) -> None:
    assert sample_manifest(storage_uri=uri)["storage"]["uri"] == uri
