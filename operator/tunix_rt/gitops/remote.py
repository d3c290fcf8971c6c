"""The repository a promotion goes to, and the token it may use: checked before anything
runs, and kept out of every argv, file, commit and message.

A repository is a local path, ``file://``, ``https://``, ``ssh://`` or ``user@host:path``
(scp form). Credentials never ride in its URL (``https://user:token@host/…`` is refused,
as the project refuses them in specs: :mod:`tunix_rt.api.secrets`): they come from the
environment (``GITHUB_TOKEN``, ``GITLAB_TOKEN``) or from a file
(``TUNIX_RT_GIT_TOKEN_FILE``, how a mounted Kubernetes Secret arrives), and reach git
through its environment (``GIT_CONFIG_*``), never its command line.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from tunix_rt.api.secrets import credentials, userinfo_span
from tunix_rt.gitops.errors import RepoRefused
from tunix_rt.storage.redact import scrub

TOKEN_FILE_ENV = "TUNIX_RT_GIT_TOKEN_FILE"
"""A file holding the token (a mounted Secret's key): used when the forge's variable is unset."""

TOKEN_FIX = (
    "drop them from the URL and set GITHUB_TOKEN or GITLAB_TOKEN, or "
    f"{TOKEN_FILE_ENV} (a file, e.g. a mounted Secret)"
)

_SCP = re.compile(
    r"^(?P<user>[A-Za-z0-9][A-Za-z0-9._-]*@)?(?P<host>[A-Za-z0-9][A-Za-z0-9.-]*)"
    r":(?P<path>(?!//)(?!:).+)$"
)
"""``git@github.com:owner/name.git``: ssh in scp form (a colon, no scheme)."""

_SCHEMES = frozenset({"https", "http", "ssh", "git", "file"})


@dataclass(frozen=True)
class Remote:
    """A repository git can clone: ``url`` as given to git, ``shown`` for people."""

    url: str
    scheme: str
    host: str | None
    path: str
    """The path on the host (``owner/name.git``), or the local folder."""

    @property
    def shown(self) -> str:
        return scrub(self.url.removeprefix("file://") if self.scheme == "file" else self.url)

    @property
    def project(self) -> str | None:
        """``owner/name`` (GitLab: ``group/sub/name``) on a forge; None for a local repo."""
        if self.scheme == "file":
            return None
        name = self.path.strip("/").removesuffix(".git")
        return name if "/" in name else None


def parse_remote(repo: str) -> Remote:
    """The repository ``repo`` names; RepoRefused (exit 2) for credentials in it, an
    unknown scheme, or a local path that is no folder."""
    repo = repo.strip()
    if not repo:
        raise RepoRefused("--git: give a repository (a local path or a URL)")
    _refuse_credentials(repo)
    if "://" in repo:
        parts = urlsplit(repo)
        scheme = parts.scheme.lower()
        if scheme not in _SCHEMES:
            raise RepoRefused(
                f"--git: {scrub(repo)}: unsupported scheme {scheme}://; use https://, ssh://, "
                "git://, file:// or a local path"
            )
        if scheme == "file":
            return _local(parts.path, repo)
        return Remote(repo, scheme, parts.hostname, parts.path)
    scp = _SCP.match(repo)
    if scp and not Path(repo).exists():
        return Remote(repo, "ssh", scp.group("host"), scp.group("path"))
    return _local(repo, repo)


def _refuse_credentials(repo: str) -> None:
    """A token or password in the URL: refused with the fix, the value never echoed. A
    user name alone is fine for ssh (``ssh://git@host/…``), not for http(s)."""
    found = credentials(repo)
    span = userinfo_span(repo) if "://" in repo else None
    scheme = repo.split("://", 1)[0].lower()
    if span and scheme not in {"http", "https"} and ":" not in repo[span[0] : span[1]]:
        found = [f for f in found if not f.startswith("a URI with credentials")]
    if found:
        raise RepoRefused(
            f"--git: the repository URL must not carry credentials (it holds "
            f"{', '.join(found)}): {TOKEN_FIX}"
        )


def _local(path: str, given: str) -> Remote:
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise RepoRefused(
            f"--git: {scrub(given)}: no such folder (a local repository must exist; for a "
            "remote one give its URL: https://…, ssh://… or git@host:owner/name.git)"
        )
    resolved = folder.resolve()
    return Remote(f"file://{resolved}", "file", None, str(resolved))


@dataclass(frozen=True)
class Token:
    """A forge token and where it came from (named in messages, the value never)."""

    value: str = field(repr=False)
    source: str


def find_token(variable: str | None, env: Mapping[str, str]) -> Token | None:
    """The token from ``variable`` (e.g. GITHUB_TOKEN), else from the file that
    TUNIX_RT_GIT_TOKEN_FILE names; None when neither is set. RepoRefused when that file
    cannot be read or is empty."""
    if variable and env.get(variable, "").strip():
        return Token(env[variable].strip(), variable)
    path = env.get(TOKEN_FILE_ENV, "").strip()
    if not path:
        return None
    try:
        value = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise RepoRefused(
            f"{TOKEN_FILE_ENV}={path}: cannot read the token: {why}; mount the Secret there "
            "or unset the variable"
        ) from None
    if not value:
        raise RepoRefused(f"{TOKEN_FILE_ENV}={path}: the file is empty; put the token in it")
    return Token(value, f"{TOKEN_FILE_ENV} ({path})")


class Secrets:
    """Every secret of one promotion (the token, the header made from it, the
    environment's): :meth:`hide` masks them in any text before it is shown or raised."""

    def __init__(self, env: Mapping[str, str], *values: str) -> None:
        self.env = env
        self.values = sorted({v for v in values if v}, key=len, reverse=True)

    def add(self, *values: str) -> None:
        self.values = sorted({*self.values, *(v for v in values if v)}, key=len, reverse=True)

    def hide(self, text: str) -> str:
        for value in self.values:
            text = text.replace(value, "***")
        return scrub(text, self.env)


BASIC_USER = {"github": "x-access-token", "gitlab": "oauth2"}
"""The user name each forge expects beside a token over https (any other: ``git``)."""


def auth_config(remote: Remote, token: Token | None, forge: str, secrets: Secrets) -> list[str]:
    """``key=value`` git settings (given through GIT_CONFIG_*, never argv) that send the
    token to this remote's host only, over https only; empty otherwise."""
    if token is None or remote.scheme != "https" or remote.host is None:
        return []
    user = BASIC_USER.get(forge, "git")
    basic = base64.b64encode(f"{user}:{token.value}".encode()).decode()
    secrets.add(token.value, basic)
    origin = urlsplit(remote.url)
    return [f"http.https://{origin.netloc}/.extraHeader=Authorization: Basic {basic}"]
