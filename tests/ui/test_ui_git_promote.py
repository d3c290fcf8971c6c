"""The Promote button wired to git (:mod:`tunix_rt.ui.promote`): a local bare repository
gets the branch with the Rehearsal manifest, the page says the branch and commit; a
refusal comes back as the error's words; no token ever reaches the outcome."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from typer.testing import CliRunner

from support.gitops import (
    BEST,
    GITHUB_TOKEN,
    SWEEP,
    ForgeStandIn,
    branches,
    finished_sweep,
    git,
    show,
)
from tunix_rt.cli import app as cli_app
from tunix_rt.gitops import RepoRefused
from tunix_rt.ui import PromoteRequest, UiConfig, make_app
from tunix_rt.ui.csrf import FIELD
from tunix_rt.ui.promote import GitOptions, git_promoter

BRANCH = f"tunix-rt/promote-{SWEEP}-{BEST}"
MANIFEST = f"rehearsals/{SWEEP}/{SWEEP}-best-rehearsal.yaml"


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    finished_sweep(tmp_path / "runs")
    return tmp_path / "runs"


def ask(runs: Path) -> PromoteRequest:
    summary = f"file://{runs}/local/{SWEEP}/summary.json"
    return PromoteRequest(namespace="local", sweep=SWEEP, summary_uri=summary)


def test_a_promotion_names_its_branch_and_commit(
    tmp_path: Path, runs: Path, bare: Path, env: dict[str, str]
) -> None:
    outcome = git_promoter(str(bare), env=env)(ask(runs))
    assert outcome.ok, outcome.message
    assert outcome.message == (f"pushed branch {BRANCH} to {bare} with Rehearsal {SWEEP}-best")
    head = git("--git-dir", str(bare), "rev-parse", BRANCH, env=env).strip()
    assert outcome.details["branch"] == BRANCH and outcome.details["commit"] == head
    assert outcome.details["base"] == "main" and outcome.details["manifest"] == MANIFEST
    assert "--forge github" in outcome.details["note"]  # a local repo: no pull request
    manifest = tmp_path / "rehearsal.yaml"
    manifest.write_text(show(bare, f"{BRANCH}:{MANIFEST}", env=env))
    checked = CliRunner().invoke(cli_app, ["validate", str(manifest)])
    assert checked.exit_code == 0, checked.output


def test_a_refusal_is_the_errors_words_and_nothing_moves(
    runs: Path, bare: Path, env: dict[str, str]
) -> None:
    promote = git_promoter(str(bare), env=env)
    assert promote(ask(runs)).ok
    again = promote(ask(runs))
    assert not again.ok and again.details == {}
    assert again.message.startswith(f"--branch: {BRANCH} already exists in {bare}")
    assert branches(bare, env) == {"main", BRANCH}


def test_a_refused_pull_request_keeps_the_branch_and_hides_the_token(
    runs: Path, bare: Path, env: dict[str, str], forge_api: ForgeStandIn
) -> None:
    forge_api.status = 401
    forge_api.body = {"message": f"Bad credentials: {GITHUB_TOKEN}"}
    env |= {"GITHUB_TOKEN": GITHUB_TOKEN, "GITHUB_API_URL": forge_api.url}
    options = GitOptions(forge="github", forge_project="acme/models")
    outcome = git_promoter(str(bare), env=env, options=options)(ask(runs))
    assert not outcome.ok
    assert outcome.message.startswith(f"branch {BRANCH} was pushed to {bare}")
    assert outcome.details["branch"] == BRANCH and BRANCH in branches(bare, env)
    assert len(forge_api.requests) == 1
    assert GITHUB_TOKEN not in outcome.model_dump_json()


def test_a_pull_request_url_is_a_detail(
    runs: Path, bare: Path, env: dict[str, str], forge_api: ForgeStandIn
) -> None:
    forge_api.body = {"html_url": "{url}/acme/models/pull/7", "number": 7}
    env |= {"GITHUB_TOKEN": GITHUB_TOKEN, "GITHUB_API_URL": forge_api.url}
    options = GitOptions(forge="github", forge_project="acme/models")
    outcome = git_promoter(str(bare), env=env, options=options)(ask(runs))
    assert outcome.ok and outcome.details["pull request"] == f"{forge_api.url}/acme/models/pull/7"
    assert GITHUB_TOKEN not in outcome.model_dump_json()


def test_a_repository_with_credentials_is_refused_by_the_flag(tmp_path: Path) -> None:
    with pytest.raises(RepoRefused, match=r"^--ui-promote-repo: ") as refused:
        git_promoter(
            "https://bot:hunter22secret@example.com/ml/models.git", flag="--ui-promote-repo"
        )
    assert "hunter22secret" not in str(refused.value)
    with pytest.raises(RepoRefused, match=r"^--promote-repo: .*no such folder"):
        git_promoter(str(tmp_path / "missing"))


def test_the_cli_refuses_a_bad_promote_repo_and_names_it(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli_app, ["ui", str(tmp_path), "--promote-repo", "https://u:s3cr3tpass@h.example/x.git"]
    )
    assert result.exit_code == 2
    assert "--promote-repo:" in result.output and "s3cr3tpass" not in result.output


@pytest.fixture
async def promoting_client(
    runs: Path, bare: Path, env: dict[str, str]
) -> AsyncIterator[TestClient[Any, Any]]:
    promoter = git_promoter(str(bare), env=env)
    config = UiConfig(promote_enabled=True, git_repo=promoter.shown)
    client = TestClient(TestServer(make_app(f"file://{runs}", config, promoter=promoter)))
    await client.start_server()
    yield client
    await client.close()


async def test_the_button_commits_and_the_page_shows_the_branch(
    promoting_client: TestClient[Any, Any], bare: Path, env: dict[str, str]
) -> None:
    page = await (await promoting_client.get(f"/sweeps/local/{SWEEP}")).text()
    assert f"Promote the best trial to {bare}" in page
    token = re.search(rf'name="{FIELD}" value="([0-9a-f]+)"', page)
    assert token is not None
    resp = await promoting_client.post(f"/sweeps/local/{SWEEP}/promote", data={FIELD: token[1]})
    html = await resp.text()
    assert resp.status == 200, html
    assert f"✓ pushed branch {BRANCH}" in html
    assert f"<dt>branch</dt><dd>{BRANCH}</dd>" in html
    assert BRANCH in branches(bare, env)


async def test_the_cli_app_shows_the_button_only_with_a_promote_repo(
    runs: Path, bare: Path
) -> None:
    """``tunix-rt ui``'s app: read-only without ``--promote-repo``, the button with it."""
    from tunix_rt.cli.ui import build_app

    for repo, shown in ((None, False), (str(bare), True)):
        client = TestClient(TestServer(build_app(f"file://{runs}", repo)))
        await client.start_server()
        try:
            page = await (await client.get(f"/sweeps/local/{SWEEP}")).text()
        finally:
            await client.close()
        assert ('id="promote"' in page) is shown
        assert (f"Promote the best trial to {bare}" in page) is shown
