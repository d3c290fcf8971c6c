"""Promote as a GitOps change: a finished sweep's best trial committed to a git
repository on a new branch, pushed, and (with a GitHub or GitLab token) proposed as a
pull / merge request.

:func:`promote_to_git` is what ``tunix-rt promote --git`` and the web view's Promote
button call. It is synchronous and blocks on git and the network: from async code, run
it in a thread (``asyncio.to_thread``).

Order: everything that can be refused is checked before git runs (the repository URL,
the sweep, the branch and path, the forge and token); then one ``ls-remote`` (the branch
must be new), a shallow clone of the base branch into a temporary folder, one commit,
the push, and the request. A refused request leaves the pushed branch, and says so
(:class:`PullRequestError` holds the :class:`Promotion` so far).
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError

from tunix_rt.api.base import ApiModel
from tunix_rt.api.errors import validation_errors
from tunix_rt.gitops.errors import BranchExists, ForgeError, GitOpsError, RepoRefused
from tunix_rt.gitops.forge import (
    TOKEN_ENV,
    ChangeRequest,
    Forge,
    api_url,
    choose_forge,
    open_change_request,
)
from tunix_rt.gitops.git import Git, RemoteRefs, git_environment
from tunix_rt.gitops.plan import PromoteOptions, PromotionPlan, plan_promotion
from tunix_rt.gitops.remote import (
    TOKEN_FILE_ENV,
    Remote,
    Secrets,
    Token,
    auth_config,
    find_token,
    parse_remote,
)
from tunix_rt.promotion import EvidenceLinks, load_finished

_PROJECT = re.compile(r"^[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)+$")
"""``owner/name`` (GitLab: ``group/sub/name``): it goes into the API request's path."""


class Promotion(ApiModel):
    """What a promotion did (camelCase on the wire, for the web view)."""

    repo: str = Field(description="The repository, as shown (never with credentials).")
    branch: str
    base: str = Field(description="The branch it starts from (and the request's target).")
    commit: str = Field(description="The commit's sha.")
    files: list[str] = Field(description="Paths inside the repository.")
    rehearsal: str = Field(description="The Rehearsal's name.")
    manifest: str = Field(description="The Rehearsal manifest's path in the repository.")
    message: str = Field(description="The commit message.")
    pushed: bool
    forge: Forge
    pull_request_url: str | None = None
    note: str | None = Field(None, description="Why no pull / merge request was opened.")
    evidence: EvidenceLinks


class PullRequestError(ForgeError):
    """The branch was pushed, the pull / merge request was refused: ``promotion`` says
    what is there, the message what went wrong and the fix."""

    def __init__(self, message: str, promotion: Promotion) -> None:
        super().__init__(
            f"branch {promotion.branch} was pushed to {promotion.repo} (commit "
            f"{promotion.commit[:12]}), but {message}"
        )
        self.promotion = promotion


def promote_to_git(
    result: str,
    repo: str,
    *,
    branch: str | None = None,
    base: str | None = None,
    path: str | None = None,
    forge: str | None = None,
    forge_project: str | None = None,
    api: str | None = None,
    steps: int | None = None,
    name: str | None = None,
    storage: str | None = None,
    push: bool = True,
    env: Mapping[str, str] | None = None,
    log: Callable[[str], None] | None = None,
) -> Promotion:
    """Commit the best trial of the sweep at ``result`` (its folder, summary.json or URI)
    to ``repo`` (a local path or URL) on a new branch, push it, and open a pull / merge
    request when a token is set. Options as ``tunix-rt promote --git``'s; ``env`` (default
    ``os.environ``) holds the tokens and the author identity; ``log`` hears each step.

    Raises :class:`tunix_rt.promotion.PromotionError` (its ``exit_code``: 2 for a refused
    option, 1 for a failure), :class:`PullRequestError` when only the request failed.
    """
    env = os.environ if env is None else env
    say = log or (lambda _line: None)
    remote = parse_remote(repo)
    sweep = load_finished(result)
    options = _options(branch=branch, base=base, path=path, steps=steps, name=name, storage=storage)
    plan = plan_promotion(sweep, options)
    chosen = choose_forge(forge, remote)
    token = find_token(TOKEN_ENV.get(chosen), env)
    secrets = Secrets(env, *([token.value] if token else []))
    project, note = _request_target(chosen, token, remote, forge_project, push)
    api_root = api_url(chosen, api, env) if project else None
    git = Git(git_environment(env, auth_config(remote, token, chosen, secrets)), secrets)
    say(f"checking {remote.shown} for branch {plan.branch}")
    refs = git.remote_refs(remote, [plan.branch, *([base] if base else [])])
    target = _base_branch(refs, remote, plan.branch, base)
    with tempfile.TemporaryDirectory(prefix="tunix-rt-promote-") as tmp:
        clone = Path(tmp) / "repo"
        say(f"cloning {remote.shown} ({target})")
        git.clone(remote, target, clone)
        files = {f.path: f.text for f in plan.files}
        commit = git.commit_files(clone, plan.branch, files, plan.commit_message)
        if commit is None:
            raise GitOpsError(
                f"nothing to promote: {remote.shown}'s {target} already holds these files "
                f"({', '.join(files)}) as they are"
            )
        if push:
            say(f"pushing {plan.branch} ({commit[:12]})")
            git.push(clone, plan.branch)
    promotion = Promotion(
        repo=remote.shown,
        branch=plan.branch,
        base=target,
        commit=commit,
        files=list(files),
        rehearsal=plan.rehearsal_name,
        manifest=plan.rehearsal_path,
        message=plan.commit_message,
        pushed=push,
        forge=chosen,
        note=note,
        evidence=sweep.evidence,
    )
    if project is None or token is None or api_root is None:
        return promotion
    say(f"opening a {chosen.request} on {chosen.value} ({project})")
    change = _change(plan, project, target)
    try:
        url = open_change_request(chosen, api_root, token, change, secrets)
    except ForgeError as exc:
        raise PullRequestError(str(exc), promotion) from None
    return promotion.model_copy(update={"pull_request_url": url})


def _options(**given: Any) -> PromoteOptions:
    """The options as a model; RepoRefused naming the flag of a value it refuses (the web
    view passes its form's fields here unchecked)."""
    try:
        return PromoteOptions.model_validate(given)
    except ValidationError as exc:
        field, message = validation_errors(exc)[0]
        raise RepoRefused(f"--{field.replace('_', '-')}: {message}") from None


def _request_target(
    forge: Forge, token: Token | None, remote: Remote, given: str | None, push: bool
) -> tuple[str | None, str | None]:
    """The forge project to open the request on, or None and why none will be opened.
    RepoRefused when a token is there but the project cannot be told."""
    if not push:
        return None, "not pushed (--no-push): no branch on the remote, no request"
    if forge is Forge.NONE:
        return None, (
            f"no pull request opened: {remote.shown} is on no known forge (give --forge "
            "github or --forge gitlab to open one)"
        )
    if token is None:
        return None, (
            f"no {forge.request} opened: {TOKEN_ENV[forge]} is not set (nor "
            f"{TOKEN_FILE_ENV}); the branch is pushed, open it on {forge.value}"
        )
    project = (given or remote.project or "").strip().strip("/").removesuffix(".git")
    if not _PROJECT.match(project) or ".." in project:
        told = f"{project!r} is no project path" if project else f"none in {remote.shown}"
        raise RepoRefused(
            f"--forge-project: give the project on {forge.value} as OWNER/NAME ({told})"
        )
    return project, None


def _base_branch(refs: RemoteRefs, remote: Remote, branch: str, base: str | None) -> str:
    """The branch to start from; BranchExists / RepoRefused before anything is cloned."""
    if branch in refs.heads:
        raise BranchExists(
            f"--branch: {branch} already exists in {remote.shown} (a promotion never moves a "
            "branch): give another name with --branch, or delete that branch first"
        )
    if base is not None:
        if base not in refs.heads:
            default = f" (its default branch is {refs.default})" if refs.default else ""
            raise RepoRefused(f"--base: no branch {base} in {remote.shown}{default}")
        return base
    if refs.default is None:
        raise RepoRefused(
            f"{remote.shown} has no branches yet: push a first commit to its default branch, "
            "or give --base"
        )
    return refs.default


def _change(plan: PromotionPlan, project: str, base: str) -> ChangeRequest:
    return ChangeRequest(
        project=project,
        head=plan.branch,
        base=base,
        title=plan.request_title,
        body=plan.request_body,
    )
