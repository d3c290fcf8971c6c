"""``tunix-rt promote RESULT --git REPO`` end to end: what it prints, the exit codes of
its refusals, and the promoted Rehearsal, taken from the repository, run by the real
trainer."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import tunix_rt.cli as cli
from support.gitops import BEST, GITHUB_TOKEN, SWEEP, ForgeStandIn, branches, cli_env, git, show
from support.rehearsal import EVIDENCE_FILES
from tunix_rt.contract.exits import ExitCode

BRANCH = f"tunix-rt/promote-{SWEEP}-{BEST}"
REHEARSAL = f"rehearsals/{SWEEP}/{SWEEP}-best-rehearsal.yaml"


def invoke(*args: str, **env: str) -> Any:
    return CliRunner().invoke(cli.app, ["promote", *args], env=cli_env(COLUMNS="200", **env))


def test_promote_git_prints_branch_commit_and_pull_request(
    sweep: Path, bare: Path, env: dict[str, str], forge_api: ForgeStandIn
) -> None:
    forge_api.body = {"html_url": "{url}/acme/models/pull/1"}
    result = invoke(
        str(sweep), "--git", str(bare), "--forge", "github", "--forge-project", "acme/models",
        "--api-url", forge_api.url, GITHUB_TOKEN=GITHUB_TOKEN,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    commit = git("--git-dir", str(bare), "rev-parse", BRANCH, env=env).strip()
    out = " ".join(result.output.split())
    assert f"pushed branch {BRANCH} to {bare} (from main)" in out
    assert f"commit {commit}: {REHEARSAL}, " in out
    assert f"pull request: {forge_api.url}/acme/models/pull/1" in out
    assert f"next: review and merge, then tunix-rt rehearsal run {REHEARSAL}" in out
    assert GITHUB_TOKEN not in result.output
    assert forge_api.requests[0].raw_path == "/repos/acme/models/pulls"


def test_promote_git_refusals_and_exit_codes(
    tmp_path: Path, sweep: Path, bare: Path, env: dict[str, str]
) -> None:
    assert invoke(str(sweep), "--git", str(bare), "--branch", "mine").exit_code == 0
    again = invoke(str(sweep), "--git", str(bare), "--branch", "mine")
    assert again.exit_code == ExitCode.INVALID
    assert "error: --branch: mine already exists in" in again.output
    no_target = invoke(str(sweep))
    assert no_target.exit_code == ExitCode.INVALID
    assert "error: -o/--output: give the trainer config file to write, or --git REPO" in " ".join(
        no_target.output.split()
    )
    git_only = invoke(str(sweep), "-o", str(tmp_path / "x.yaml"), "--branch", "b", "--no-push")
    assert git_only.exit_code == ExitCode.INVALID
    assert "error: --branch, --no-push: only with --git REPO" in git_only.output
    both = invoke(str(sweep), "--git", str(bare), "-o", str(tmp_path / "x.yaml"))
    assert both.exit_code == ExitCode.INVALID and "leave -o and --rehearsal out" in both.output
    unfinished = invoke(str(tmp_path / "nothing"), "--git", str(bare))
    assert unfinished.exit_code == ExitCode.FAILED and "no sweep results" in unfinished.output
    assert not (tmp_path / "x.yaml").exists()
    dry = invoke(str(sweep), "--git", str(bare), "--no-push")
    assert dry.exit_code == 0, dry.output
    assert f"committed (not pushed) branch {BRANCH}" in " ".join(dry.output.split())
    assert branches(bare, env) == {"main", "mine"}


@pytest.mark.slow
def test_the_promoted_rehearsal_runs_from_the_repository(
    tmp_path: Path,
    sweep: Path,
    bare: Path,
    env: dict[str, str],
    subprocess_env: dict[str, str],
) -> None:
    """Done-when of issue 27 item 2: the manifest on the promoted branch runs (the tiny
    trainer, the sweep's 8-step cap) and leaves its evidence."""
    assert invoke(str(sweep), "--git", str(bare)).exit_code == 0
    checkout = tmp_path / "checkout"
    git("clone", "--quiet", "--branch", BRANCH, str(bare), str(checkout), env=env)
    assert (checkout / REHEARSAL).read_text() == show(bare, f"{BRANCH}:{REHEARSAL}", env=env)
    exe = Path(sys.executable).with_name("tunix-rt")
    ran = subprocess.run(
        [
            str(exe), "rehearsal", "run", REHEARSAL,
            "--storage", f"file://{tmp_path}/store", "--out", str(tmp_path / "evidence"),
        ],
        cwd=checkout, env=subprocess_env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert f"rehearsal {SWEEP}-best: primary_score" in ran.stdout
    assert {p.name for p in (tmp_path / "evidence").iterdir()} >= EVIDENCE_FILES
