"""``tunix-rt ui``: serves the store's web view, says where, stops on Ctrl-C."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from typer.testing import CliRunner

from support.ui_store import build_store
from tunix_rt.cli import app


def test_ui_serves_the_store_and_prints_its_url(tmp_path: Path) -> None:
    store = build_store(tmp_path / "runs")
    exe = Path(sys.executable).with_name("tunix-rt")
    proc = subprocess.Popen(
        [str(exe), "ui", str(tmp_path / "runs"), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        found = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
        assert found, line + (proc.stderr.read() if proc.poll() is not None and proc.stderr else "")
        assert store.uri in line
        with urllib.request.urlopen(found.group(1), timeout=30) as resp:
            html = resp.read().decode()
        assert 'data-run="team-a/mixed"' in html
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0


def test_ui_help_names_the_default_store() -> None:
    result = CliRunner().invoke(app, ["ui", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "file://./runs" in result.output and "--port" in result.output


def test_ui_refuses_a_store_uri_with_credentials() -> None:
    result = CliRunner().invoke(app, ["ui", "s3://KEY:SECRET@bucket/runs"])
    assert result.exit_code == 2
    assert "SECRET" not in result.output
