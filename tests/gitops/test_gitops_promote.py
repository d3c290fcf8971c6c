"""promote_to_git against a local bare repository: one commit on a new branch, pushed;
what it refuses before git runs; and no credential in argv, messages or logs."""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

import tunix_rt.cli as cli
from support.gitops import (
    BEST,
    GITHUB_TOKEN,
    SWEEP,
    branches,
    cli_env,
    git,
    new_commits,
    show,
)
from tunix_rt.api.rehearsal import Rehearsal
from tunix_rt.api.trainer import TrainerConfig
from tunix_rt.contract.exits import ExitCode
from tunix_rt.gitops import (
    BranchExists,
    Forge,
    GitCommandError,
    GitOpsError,
    RepoRefused,
    promote_to_git,
)
from tunix_rt.promotion import PromotionError

BRANCH = f"tunix-rt/promote-{SWEEP}-{BEST}"
REHEARSAL = f"rehearsals/{SWEEP}/{SWEEP}-best-rehearsal.yaml"
TRAINER = f"rehearsals/{SWEEP}/{SWEEP}-best-trainer.yaml"


def test_one_commit_on_a_new_branch(
    tmp_path: Path, sweep: Path, bare: Path, env: dict[str, str]
) -> None:
    main_before = git("--git-dir", str(bare), "rev-parse", "main", env=env).strip()
    steps: list[str] = []
    promotion = promote_to_git(str(sweep), str(bare), env=env, log=steps.append)
    assert promotion.branch == BRANCH and promotion.base == "main" and promotion.pushed
    assert promotion.files == [REHEARSAL, TRAINER] and promotion.manifest == REHEARSAL
    assert promotion.forge is Forge.NONE and promotion.pull_request_url is None
    assert promotion.note is not None and "--forge github" in promotion.note
    assert branches(bare, env) == {"main", BRANCH}
    assert new_commits(bare, "main", BRANCH, env) == [promotion.commit]
    assert git("--git-dir", str(bare), "rev-parse", "main", env=env).strip() == main_before
    assert len(steps) == 3 and steps[-1].startswith(f"pushing {BRANCH}")

    message = show(bare, "--no-patch", "--format=%an <%ae>%n%B", BRANCH, env=env)
    assert message.startswith("tunix-rt <tunix-rt@localhost>\n")
    assert f"Promote sweep local/{SWEEP} best trial {BEST} (primary_score=0.7500)" in message
    assert f"summary: file://{sweep}/summary.json" in message
    assert f"report: file://{sweep}/evidence/report.html" in message
    assert f"bundle: file://{sweep}/evidence/submission/tunix_rt_{SWEEP}.zip" in message
    assert f"tunix-rt rehearsal run {REHEARSAL}" in message
    changed = git("--git-dir", str(bare), "diff", "--name-only", f"main..{BRANCH}", env=env)
    assert sorted(changed.split()) == sorted([REHEARSAL, TRAINER])

    # The manifest passes `tunix-rt validate`, and runs the same config that `promote -o`
    # writes: the trainer file is byte for byte the one the folder path writes.
    manifest_file = tmp_path / "from-git" / "rehearsal.yaml"
    manifest_file.parent.mkdir()
    manifest_file.write_text(show(bare, f"{BRANCH}:{REHEARSAL}", env=env))
    trainer_text = show(bare, f"{BRANCH}:{TRAINER}", env=env)
    checked = CliRunner().invoke(cli.app, ["validate", str(manifest_file)])
    assert checked.exit_code == 0, checked.output
    assert f"Rehearsal/{SWEEP}-best is valid" in checked.output
    out = tmp_path / "local" / "best.yaml"
    written = CliRunner().invoke(cli.app, ["promote", str(sweep), "-o", str(out)])
    assert written.exit_code == 0, written.output
    assert trainer_text == out.read_text()
    rehearsal = Rehearsal.model_validate(yaml.safe_load(manifest_file.read_text()))
    assert rehearsal.spec.trainer == TrainerConfig.model_validate(yaml.safe_load(trainer_text))
    assert rehearsal.metadata.annotations == {
        "tunixrt.io/source-sweep": SWEEP,
        "tunixrt.io/source-trial": BEST,
        "tunixrt.io/source-primary-score": "0.7500",
    }


def test_options_and_author_from_the_environment(
    sweep: Path, bare: Path, env: dict[str, str]
) -> None:
    env |= {"GIT_AUTHOR_NAME": "Ada", "GIT_AUTHOR_EMAIL": "ada@example.com"}
    promotion = promote_to_git(
        str(sweep),
        str(bare),
        branch="exp/nightly",
        base="main",
        path="deploy",
        name="nightly",
        steps=30,
        env=env,
    )
    assert promotion.files == ["deploy/nightly-rehearsal.yaml", "deploy/nightly-trainer.yaml"]
    assert "exp/nightly" in branches(bare, env)
    author = show(bare, "--no-patch", "--format=%an <%ae>|%cn", "exp/nightly", env=env).strip()
    assert author == "Ada <ada@example.com>|Ada"
    manifest = yaml.safe_load(show(bare, "exp/nightly:deploy/nightly-rehearsal.yaml", env=env))
    assert manifest["metadata"]["name"] == "nightly"
    assert manifest["spec"]["trainer"]["maxSteps"] == 30


def test_an_existing_branch_is_refused_and_left_alone(
    sweep: Path, bare: Path, env: dict[str, str]
) -> None:
    first = promote_to_git(str(sweep), str(bare), env=env)
    with pytest.raises(BranchExists) as refused:
        promote_to_git(str(sweep), str(bare), env=env)
    message = str(refused.value)
    assert message.startswith(f"--branch: {BRANCH} already exists in {bare}")
    assert "give another name with --branch" in message
    assert refused.value.exit_code == ExitCode.INVALID
    assert git("--git-dir", str(bare), "rev-parse", BRANCH, env=env).strip() == first.commit


def test_refusals_that_need_the_remote(sweep: Path, bare: Path, env: dict[str, str]) -> None:
    with pytest.raises(RepoRefused, match=r"^--base: no branch release in .*default .* main"):
        promote_to_git(str(sweep), str(bare), base="release", env=env)
    # Promoting the same files again onto a branch that already holds them: said, no commit.
    promote_to_git(str(sweep), str(bare), branch="first", env=env)
    with pytest.raises(GitOpsError, match=r"nothing to promote: .* first already holds"):
        promote_to_git(str(sweep), str(bare), branch="second", base="first", env=env)
    assert branches(bare, env) == {"main", "first"}


@pytest.mark.parametrize(
    ("options", "starts"),
    [
        ({"steps": 0}, "--steps: Input should be greater than or equal to 1"),
        ({"base": "--upload-pack=touch x"}, "--base: '--upload-pack=touch x' is not a valid"),
        ({"name": "Not_A_Name"}, "Rehearsal Not_A_Name: metadata.name: "),
    ],
    ids=["steps", "base", "name"],
)
def test_the_web_views_unchecked_values_are_refused_by_flag(
    options: dict[str, Any], starts: str, sweep: Path, bare: Path, env: dict[str, str]
) -> None:
    """The web view passes its form's fields as they came: each bad one is a
    PromotionError (exit 2) naming the flag, before git runs."""
    with pytest.raises(PromotionError) as refused:
        promote_to_git(str(sweep), str(bare), env=env, **options)
    assert str(refused.value).startswith(starts)
    assert refused.value.exit_code == ExitCode.INVALID
    assert branches(bare, env) == {"main"}


def test_an_empty_repository_is_refused(tmp_path: Path, sweep: Path, env: dict[str, str]) -> None:
    empty = tmp_path / "empty.git"
    git("init", "--quiet", "--bare", str(empty), env=env)
    with pytest.raises(RepoRefused, match="has no branches yet: push a first commit"):
        promote_to_git(str(sweep), str(empty), env=env)


def test_no_push_commits_in_a_throwaway_clone(sweep: Path, bare: Path, env: dict[str, str]) -> None:
    promotion = promote_to_git(str(sweep), str(bare), push=False, env=env)
    assert not promotion.pushed and len(promotion.commit) == 40
    assert promotion.note is not None and "--no-push" in promotion.note
    assert branches(bare, env) == {"main"}


@pytest.mark.parametrize(
    "url",
    [
        f"https://x-access-token:{GITHUB_TOKEN}@github.com/acme/models.git",
        f"https://{GITHUB_TOKEN}@github.com/acme/models.git",
        "https://oauth2:plainpassword@gitlab.example.com/acme/models.git",
        f"https://github.com/acme/models.git?access_token={GITHUB_TOKEN}",
    ],
    ids=["user-token", "token", "password", "query"],
)
def test_a_url_with_credentials_is_refused_before_git_runs(
    url: str,
    sweep: Path,
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    printed: Callable[[], str],
) -> None:
    def no_git(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"git ran: {args}")

    monkeypatch.setattr("tunix_rt.gitops.git.subprocess.run", no_git)
    with pytest.raises(RepoRefused) as refused:
        promote_to_git(str(sweep), url, env=env)
    message = str(refused.value)
    assert message.startswith("--git: the repository URL must not carry credentials")
    assert "GITHUB_TOKEN" in message and "TUNIX_RT_GIT_TOKEN_FILE" in message
    said = message + printed()
    assert GITHUB_TOKEN not in said and "plainpassword" not in said
    cli_out = CliRunner().invoke(cli.app, ["promote", str(sweep), "--git", url], env=cli_env())
    assert cli_out.exit_code == ExitCode.INVALID
    assert "must not carry credentials" in cli_out.output
    assert GITHUB_TOKEN not in cli_out.output and "plainpassword" not in cli_out.output


def test_the_token_reaches_git_through_its_environment_only(
    sweep: Path,
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    printed: Callable[[], str],
) -> None:
    """An https remote with GITHUB_TOKEN: git gets an Authorization header scoped to the
    host through GIT_CONFIG_*; argv never holds it, and when git fails echoing it (as a
    misconfigured proxy might), the error hides it."""
    calls: list[tuple[list[str], dict[str, str]]] = []
    basic = base64.b64encode(f"x-access-token:{GITHUB_TOKEN}".encode()).decode()

    def fake_git(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        calls.append((argv, kwargs["env"]))
        said = f"fatal: unable to access 'https://{GITHUB_TOKEN}@github.com/': {basic} denied"
        return subprocess.CompletedProcess(argv, 128, "", said)

    monkeypatch.setattr("tunix_rt.gitops.git.subprocess.run", fake_git)
    env |= {"GITHUB_TOKEN": GITHUB_TOKEN}
    with pytest.raises(GitCommandError) as failed:
        promote_to_git(str(sweep), "https://github.com/acme/models.git", env=env)
    [(argv, git_env)] = calls  # ls-remote: nothing else ran
    assert argv[:3] == ["git", "ls-remote", "--symref"]
    assert not any(GITHUB_TOKEN in arg or basic in arg for arg in argv)
    settings = {
        git_env[f"GIT_CONFIG_KEY_{i}"]: git_env[f"GIT_CONFIG_VALUE_{i}"]
        for i in range(int(git_env["GIT_CONFIG_COUNT"]))
    }
    assert settings == {"http.https://github.com/.extraHeader": f"Authorization: Basic {basic}"}
    assert git_env["GIT_TERMINAL_PROMPT"] == "0" and "ext" not in git_env["GIT_ALLOW_PROTOCOL"]
    message = str(failed.value)
    assert message.startswith("git ls-remote failed (exit 128): fatal: unable to access")
    said = message + printed()
    assert GITHUB_TOKEN not in said and basic not in said


def test_an_unreadable_token_file_is_named(
    tmp_path: Path, sweep: Path, bare: Path, env: dict[str, str]
) -> None:
    env |= {"TUNIX_RT_GIT_TOKEN_FILE": str(tmp_path / "missing")}
    with pytest.raises(RepoRefused) as refused:
        promote_to_git(str(sweep), str(bare), forge="github", env=env)
    assert str(refused.value).startswith(
        f"TUNIX_RT_GIT_TOKEN_FILE={tmp_path / 'missing'}: cannot read the token"
    )
    assert branches(bare, env) == {"main"}
