"""The Promote button's action in a real deployment: :func:`tunix_rt.gitops.promote_to_git`
as a :data:`~tunix_rt.ui.config.Promoter` (``tunix-rt ui --promote-repo``, the operator's
``--ui-promote-repo``).

    promoter = git_promoter("git@github.com:acme/models.git")
    app = make_app(store, UiConfig(promote_enabled=True, git_repo=promoter.shown),
                   promoter=promoter)

The promoter is a plain function: the app runs it in a worker thread (git and the forge's
API block), never on the event loop the operator reconciles on. What it did, or why it did
not, comes back as a :class:`~tunix_rt.ui.config.PromoteOutcome`: the branch, commit and
pull / merge request, or the error's lines. Every string is scrubbed of the forge tokens
and the environment's secrets before it reaches the page.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from tunix_rt.gitops import Promotion, PullRequestError, RepoRefused, promote_to_git
from tunix_rt.gitops.forge import TOKEN_ENV
from tunix_rt.gitops.remote import TOKEN_FILE_ENV, find_token, parse_remote
from tunix_rt.promotion import PromotionError
from tunix_rt.storage.redact import scrub
from tunix_rt.ui.config import PromoteOutcome, PromoteRequest

log = logging.getLogger("tunix_rt.ui")


@dataclass(frozen=True)
class GitOptions:
    """:func:`~tunix_rt.gitops.promote_to_git`'s options the server fixes (None: its
    defaults: the remote's default branch, the forge told from the URL)."""

    base: str | None = None
    path: str | None = None
    forge: str | None = None
    forge_project: str | None = None
    api: str | None = None


@dataclass(frozen=True)
class GitPromoter:
    """Promotes a finished sweep to ``repo`` (see :func:`git_promoter`)."""

    repo: str
    shown: str
    """The repository as the page names it (never with credentials)."""
    options: GitOptions = field(default_factory=lambda: GitOptions())
    env: Mapping[str, str] | None = None
    """Tokens and author identity (default: this process's environment, read per call)."""

    def __call__(self, request: PromoteRequest) -> PromoteOutcome:
        env = os.environ if self.env is None else self.env
        hide = _hider(env)
        try:
            opts = self.options
            promotion = promote_to_git(
                request.summary_uri, self.repo, env=env, base=opts.base, path=opts.path,
                forge=opts.forge, forge_project=opts.forge_project, api=opts.api,
            )  # fmt: skip
        except PullRequestError as exc:
            return _failed(exc, hide, promotion=exc.promotion)
        except PromotionError as exc:
            return _failed(exc, hide)
        log.info("promoted %s/%s to %s", request.namespace, request.sweep, promotion.branch)
        return _succeeded(promotion, hide)


def git_promoter(
    repo: str,
    *,
    flag: str = "--promote-repo",
    env: Mapping[str, str] | None = None,
    options: GitOptions | None = None,
) -> GitPromoter:
    """A promoter to ``repo`` (a local path or URL), checked now so that a bad value stops
    the server at start with its ``flag`` named (a URL with a token in it, an unknown
    scheme, a missing folder), not at the first click."""
    try:
        remote = parse_remote(repo)
    except RepoRefused as exc:
        lines = [line.replace("--git:", f"{flag}:", 1) for line in exc.lines]
        raise RepoRefused("; ".join(lines)) from None
    return GitPromoter(repo=repo, shown=remote.shown, options=options or GitOptions(), env=env)


def _succeeded(promotion: Promotion, hide: _Hide) -> PromoteOutcome:
    verb = "pushed" if promotion.pushed else "committed (not pushed)"
    message = (
        f"{verb} branch {promotion.branch} to {promotion.repo} with Rehearsal {promotion.rehearsal}"
    )
    return PromoteOutcome(ok=True, message=hide(message), details=_details(promotion, hide))


def _failed(
    exc: PromotionError, hide: _Hide, *, promotion: Promotion | None = None
) -> PromoteOutcome:
    message = " ".join(hide(line) for line in exc.lines)
    details = _details(promotion, hide) if promotion is not None else {}
    return PromoteOutcome(ok=False, message=message, details=details)


def _details(promotion: Promotion, hide: _Hide) -> dict[str, str]:
    """What a reviewer looks for: the branch, its base and commit, the files, the request."""
    details = {
        "branch": promotion.branch,
        "base": promotion.base,
        "commit": promotion.commit,
        "manifest": promotion.manifest,
        "files": ", ".join(promotion.files),
        "repository": promotion.repo,
    }
    if promotion.pull_request_url:
        details[promotion.forge.request] = promotion.pull_request_url
    elif promotion.note:
        details["note"] = promotion.note
    return {key: hide(value) for key, value in details.items()}


class _Hide:
    """Masks the forge tokens (by value) and the environment's secrets in a text."""

    def __init__(self, values: list[str], env: Mapping[str, str]) -> None:
        self.values = sorted({v for v in values if v}, key=len, reverse=True)
        self.env = env

    def __call__(self, text: str) -> str:
        for value in self.values:
            text = text.replace(value, "***")
        return scrub(text, self.env)


def _hider(env: Mapping[str, str]) -> _Hide:
    values = [env.get(name, "") for name in TOKEN_ENV.values()]
    if env.get(TOKEN_FILE_ENV):
        try:
            token = find_token(None, env)
        except RepoRefused:
            token = None  # promote_to_git says so, by the variable's name
        values.append(token.value if token else "")
    return _Hide(values, env)
