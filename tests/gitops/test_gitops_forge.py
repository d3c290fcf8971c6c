"""The pull / merge request, against stand-ins for GitHub's and GitLab's REST APIs: the
request each receives (path, auth header, JSON), the URL it answers in the Promotion,
and its refusals as named errors that never show the token."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from support.gitops import (
    BEST,
    GITHUB_TOKEN,
    GITLAB_TOKEN,
    SWEEP,
    ForgeStandIn,
    branches,
)
from tunix_rt.contract.exits import ExitCode
from tunix_rt.gitops import Forge, PullRequestError, RepoRefused, promote_to_git
from tunix_rt.gitops.forge import choose_forge
from tunix_rt.gitops.remote import parse_remote

BRANCH = f"tunix-rt/promote-{SWEEP}-{BEST}"
TITLE = f"Promote sweep local/{SWEEP} best trial {BEST} (primary_score=0.7500)"


def test_github_pull_request(
    sweep: Path, bare: Path, env: dict[str, str], forge_api: ForgeStandIn
) -> None:
    forge_api.body = {"html_url": "{url}/acme/models/pull/7", "number": 7}
    env |= {"GITHUB_TOKEN": GITHUB_TOKEN, "GITHUB_API_URL": forge_api.url}
    promotion = promote_to_git(
        str(sweep), str(bare), forge="github", forge_project="acme/models", env=env
    )
    assert promotion.pull_request_url == f"{forge_api.url}/acme/models/pull/7"
    assert promotion.forge is Forge.GITHUB and promotion.note is None
    assert BRANCH in branches(bare, env)  # pushed before the request
    [request] = forge_api.requests
    assert (request.method, request.raw_path) == ("POST", "/repos/acme/models/pulls")
    assert request.headers["Authorization"] == f"Bearer {GITHUB_TOKEN}"
    assert request.headers["Accept"] == "application/vnd.github+json"
    assert request.body["title"] == TITLE
    assert (request.body["head"], request.body["base"]) == (BRANCH, "main")
    assert f"file://{sweep}/summary.json" in request.body["body"]
    assert f"tunix-rt rehearsal run rehearsals/{SWEEP}/" in request.body["body"]
    assert json.loads(promotion.model_dump_json(by_alias=True))["pullRequestUrl"].endswith("/7")


def test_gitlab_merge_request_with_the_token_from_a_file(
    tmp_path: Path, sweep: Path, bare: Path, env: dict[str, str], forge_api: ForgeStandIn
) -> None:
    """The token as a mounted Secret's file (TUNIX_RT_GIT_TOKEN_FILE); a nested group's
    project path is one %-encoded path segment."""
    token_file = tmp_path / "secret" / "token"
    token_file.parent.mkdir()
    token_file.write_text(GITLAB_TOKEN + "\n")
    forge_api.body = {"web_url": "{url}/group/sub/models/-/merge_requests/3", "iid": 3}
    env |= {"TUNIX_RT_GIT_TOKEN_FILE": str(token_file), "GITLAB_API_URL": forge_api.url}
    promotion = promote_to_git(
        str(sweep), str(bare), forge="gitlab", forge_project="group/sub/models", env=env
    )
    assert promotion.pull_request_url == f"{forge_api.url}/group/sub/models/-/merge_requests/3"
    [request] = forge_api.requests
    assert request.raw_path == "/projects/group%2Fsub%2Fmodels/merge_requests"
    assert request.headers["PRIVATE-TOKEN"] == GITLAB_TOKEN
    assert "Authorization" not in request.headers
    assert request.body["title"] == TITLE
    assert (request.body["source_branch"], request.body["target_branch"]) == (BRANCH, "main")
    assert f"file://{sweep}/evidence/report.html" in request.body["description"]


@pytest.mark.parametrize(
    ("forge", "status", "answer", "said"),
    [
        (
            "github",
            401,
            {"message": f"Bad credentials: {GITHUB_TOKEN}"},
            "github answered 401 (Bad credentials: ***): the token from GITHUB_TOKEN was "
            "not accepted (missing, expired or revoked)",
        ),
        (
            "github",
            403,
            {"message": "Resource not accessible by personal access token"},
            "lacks the right to open a pull request on acme/models: give it write access",
        ),
        (
            "github",
            422,
            {
                "message": "Validation Failed",
                "errors": [{"message": f"A pull request already exists for acme:{BRANCH}."}],
            },
            f"github answered 422 (Validation Failed; A pull request already exists for "
            f"acme:{BRANCH}.): a pull request for branch {BRANCH} may already exist",
        ),
        (
            "gitlab",
            409,
            {"message": ["Another open merge request already exists for this source branch"]},
            f"gitlab answered 409 (Another open merge request already exists for this source "
            f"branch): a merge request for branch {BRANCH} already exists",
        ),
    ],
    ids=["github-401", "github-403", "github-422", "gitlab-409"],
)
def test_a_refused_request_is_named_and_the_branch_stays_pushed(
    forge: str,
    status: int,
    answer: dict[str, object],
    said: str,
    sweep: Path,
    bare: Path,
    env: dict[str, str],
    forge_api: ForgeStandIn,
    printed: Callable[[], str],
) -> None:
    forge_api.status, forge_api.body = status, answer
    token = GITHUB_TOKEN if forge == "github" else GITLAB_TOKEN
    env |= {f"{forge.upper()}_TOKEN": token, f"{forge.upper()}_API_URL": forge_api.url}
    with pytest.raises(PullRequestError) as refused:
        promote_to_git(str(sweep), str(bare), forge=forge, forge_project="acme/models", env=env)
    message = str(refused.value)
    assert message.startswith(f"branch {BRANCH} was pushed to {bare} (commit ")
    assert said in message
    assert refused.value.exit_code == ExitCode.FAILED
    assert refused.value.promotion.pushed and refused.value.promotion.pull_request_url is None
    assert BRANCH in branches(bare, env)
    assert token not in message + printed()


def test_without_a_token_the_branch_is_pushed_and_the_reason_said(
    sweep: Path, bare: Path, env: dict[str, str], forge_api: ForgeStandIn
) -> None:
    env |= {"GITHUB_API_URL": forge_api.url}
    promotion = promote_to_git(str(sweep), str(bare), forge="github", env=env)
    assert promotion.pushed and promotion.pull_request_url is None
    assert promotion.note == (
        "no pull request opened: GITHUB_TOKEN is not set (nor TUNIX_RT_GIT_TOKEN_FILE); "
        "the branch is pushed, open it on github"
    )
    assert forge_api.requests == []


@pytest.mark.parametrize(
    ("options", "extra_env", "starts"),
    [
        ({"forge": "bitbucket"}, {}, "--forge: 'bitbucket' is not one of github, gitlab, none"),
        ({"forge": "github"}, {"GITHUB_TOKEN": GITHUB_TOKEN}, "--forge-project: give the"),
        (
            {"forge": "github", "forge_project": "acme/../../user/repos"},
            {"GITHUB_TOKEN": GITHUB_TOKEN},
            "--forge-project: give the project on github as OWNER/NAME ('acme/../../user",
        ),
        (
            {"forge": "gitlab", "forge_project": "a/b", "api": "http://gitlab.example/api/v4"},
            {"GITLAB_TOKEN": GITLAB_TOKEN},
            "GITLAB_API_URL: 'http://gitlab.example/api/v4' must be an https:// URL",
        ),
    ],
    ids=["unknown-forge", "no-project", "dotdot-project", "plain-http-api"],
)
def test_forge_options_are_refused_before_git_runs(
    options: dict[str, str],
    extra_env: dict[str, str],
    starts: str,
    sweep: Path,
    bare: Path,
    env: dict[str, str],
) -> None:
    with pytest.raises(RepoRefused) as refused:
        promote_to_git(str(sweep), str(bare), env=env | extra_env, **options)
    assert str(refused.value).startswith(starts)
    assert GITHUB_TOKEN not in str(refused.value) and GITLAB_TOKEN not in str(refused.value)
    assert branches(bare, env) == {"main"}


@pytest.mark.parametrize(
    ("repo", "forge", "project"),
    [
        ("https://github.com/acme/models.git", Forge.GITHUB, "acme/models"),
        ("git@github.com:acme/models.git", Forge.GITHUB, "acme/models"),
        ("ssh://git@gitlab.com/group/sub/models.git", Forge.GITLAB, "group/sub/models"),
        ("https://git.example.com/acme/models.git", Forge.NONE, "acme/models"),
    ],
)
def test_the_forge_and_project_are_told_from_the_url(repo: str, forge: Forge, project: str) -> None:
    remote = parse_remote(repo)
    assert choose_forge(None, remote) is forge
    assert remote.project == project
