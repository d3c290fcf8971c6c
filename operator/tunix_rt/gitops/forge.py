"""Opening the pull request (GitHub) or merge request (GitLab) for a promoted branch,
through the forge's REST API (aiohttp's client: a base dependency of the operator).

    GitHub  POST {api}/repos/{owner}/{repo}/pulls          Authorization: Bearer <token>
            {"title", "head", "base", "body"}            -> 201 {"html_url"}
    GitLab  POST {api}/projects/{path, %-encoded}/merge_requests      PRIVATE-TOKEN: <token>
            {"source_branch", "target_branch", "title", "description"} -> 201 {"web_url"}

The API's address defaults to the public one and follows ``GITHUB_API_URL`` /
``GITLAB_API_URL`` (GitHub Enterprise, a self-managed GitLab, a test's stand-in). A
refusal names the status and the fix; the token is never in a message.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

from tunix_rt.gitops.errors import ForgeError, RepoRefused
from tunix_rt.gitops.remote import Remote, Secrets, Token

T = TypeVar("T")

API_TIMEOUT_SECONDS = 30.0
_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


class Forge(StrEnum):
    GITHUB = "github"
    GITLAB = "gitlab"
    NONE = "none"

    @property
    def request(self) -> str:
        return "merge request" if self is Forge.GITLAB else "pull request"


TOKEN_ENV = {Forge.GITHUB: "GITHUB_TOKEN", Forge.GITLAB: "GITLAB_TOKEN"}
API_ENV = {Forge.GITHUB: "GITHUB_API_URL", Forge.GITLAB: "GITLAB_API_URL"}
DEFAULT_API = {Forge.GITHUB: "https://api.github.com", Forge.GITLAB: "https://gitlab.com/api/v4"}
HOSTS = {"github.com": Forge.GITHUB, "gitlab.com": Forge.GITLAB}
REQUEST_KEYS = {
    Forge.GITHUB: ("head", "base", "title", "body"),
    Forge.GITLAB: ("source_branch", "target_branch", "title", "description"),
}
"""The request's JSON keys of a change's head, base, title and body, in that order."""


def choose_forge(given: str | None, remote: Remote) -> Forge:
    """``--forge`` as given, else told from the remote's host (github.com, gitlab.com),
    else none; RepoRefused for a value that is none of them."""
    if given is None:
        host = (remote.host or "").lower().removeprefix("www.")
        return HOSTS.get(host, Forge.NONE)
    try:
        return Forge(given.strip().lower())
    except ValueError:
        raise RepoRefused(
            f"--forge: {given!r} is not one of github, gitlab, none (default: told from the "
            "repository's host)"
        ) from None


def api_url(forge: Forge, given: str | None, env: Mapping[str, str]) -> str:
    """The forge's API root: ``given``, else its environment variable, else the public
    one. A plain-http API is refused unless it is on this machine (the token would travel
    in clear text)."""
    url = (given or env.get(API_ENV[forge]) or DEFAULT_API[forge]).rstrip("/")
    parts = urlsplit(url)
    loopback = (parts.hostname or "") in _LOOPBACK
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        raise RepoRefused(
            f"{API_ENV[forge]}: {url!r} must be an https:// URL (the token must not travel "
            "in clear text; plain http only to localhost)"
        )
    return url


@dataclass(frozen=True)
class ChangeRequest:
    """A pull / merge request from ``head`` into ``base``."""

    project: str
    head: str
    base: str
    title: str
    body: str


def open_change_request(
    forge: Forge, api: str, token: Token, change: ChangeRequest, secrets: Secrets
) -> str:
    """Opens the pull / merge request; its web URL, or ForgeError naming the fix."""
    if forge is Forge.GITHUB:
        url = f"{api}/repos/{change.project}/pulls"
        headers = {
            "Authorization": f"Bearer {token.value}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
        }
        link = "html_url"
    else:
        url = f"{api}/projects/{quote(change.project, safe='')}/merge_requests"
        headers = {"PRIVATE-TOKEN": token.value}
        link = "web_url"
    values = (change.head, change.base, change.title, change.body)
    payload = dict(zip(REQUEST_KEYS[forge], values, strict=True))
    secrets.add(token.value)
    status, text = _run(_post(url, headers, payload, forge, secrets))
    if status in (200, 201):
        answer = _json(text)
        found = answer.get(link) if isinstance(answer, dict) else None
        if isinstance(found, str) and found:
            return found
        raise ForgeError(secrets.hide(f"{url} answered {status} without a {link}: {text[:200]}"))
    raise ForgeError(refusal(forge, status, _message(text), change, token, url, secrets))


def refusal(
    forge: Forge,
    status: int,
    said: str,
    change: ChangeRequest,
    token: Token,
    url: str,
    secrets: Secrets,
) -> str:
    """One line: what the API answered, what it means here, and the fix."""
    what = forge.request
    answer = f"{forge.value} answered {status}" + (f" ({said})" if said else "")
    fixes = {
        401: f"the token from {token.source} was not accepted (missing, expired or revoked): "
        "set a valid token",
        403: f"the token from {token.source} lacks the right to open a {what} on "
        f"{change.project}: give it write access to {what}s (GitHub: pull_requests: write; "
        "GitLab: the api scope, Developer role)",
        404: f"no project {change.project} at {url}, or the token cannot see it: check "
        "--forge-project (or the repository URL) and the token's access",
        409: f"a {what} for branch {change.head} already exists: open it on the forge, or "
        "promote to another --branch",
        422: f"a {what} for branch {change.head} may already exist, or it has no commits "
        f"over {change.base}: open it on the forge, or promote to another --branch",
    }
    if 300 <= status < 400:
        fix = f"the API redirects: set {API_ENV[forge]} to the API's own URL"
    else:
        fix = fixes.get(status, f"check {API_ENV[forge]} and the forge's status")
    return secrets.hide(f"opening the {what} failed: {answer}: {fix}")


async def _post(
    url: str, headers: dict[str, str], payload: dict[str, str], forge: Forge, secrets: Secrets
) -> tuple[int, str]:
    import aiohttp  # only a promotion with a token loads the HTTP client

    timeout = aiohttp.ClientTimeout(total=API_TIMEOUT_SECONDS)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.post(url, json=payload, headers=headers, allow_redirects=False) as answer,
        ):
            return answer.status, await answer.text()
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise ForgeError(
            secrets.hide(
                f"cannot reach {url}: {type(exc).__name__}: {exc}; check {API_ENV[forge]} "
                "and the network"
            )
        ) from None


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """``coro`` to its end from sync code, also when this thread already runs a loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _message(text: str) -> str:
    """What the API said, short: GitHub's message and errors, GitLab's message(s)."""
    answer = _json(text)
    if not isinstance(answer, dict):
        return " ".join(text.split())[:200]
    parts: list[str] = []
    for key in ("message", "error", "errors"):
        parts.extend(_texts(answer.get(key)))
    return "; ".join(dict.fromkeys(parts))[:300]


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [t for item in value for t in _texts(item)]
    if isinstance(value, dict):
        return _texts(value.get("message")) or [json.dumps(value)[:100]]
    return []
