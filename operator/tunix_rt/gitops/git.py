"""The git command line, run as a subprocess (no library: the ``git`` people have is what
runs, with their ssh setup and helpers).

Every call gets an environment of its own: no prompt ever (a web view must not hang on
one), the author identity, and the token as a ``GIT_CONFIG_*`` setting scoped to the
remote's host, so it is never in argv (``ps`` shows argv to every user), in the clone's
config, or in the commit. What git says on failure is shown through
:meth:`tunix_rt.gitops.remote.Secrets.hide`.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tunix_rt.gitops.errors import GitCommandError, GitOpsError
from tunix_rt.gitops.remote import Remote, Secrets

DEFAULT_AUTHOR = ("tunix-rt", "tunix-rt@localhost")
"""The commit's author unless GIT_AUTHOR_NAME / GIT_AUTHOR_EMAIL say otherwise."""
GIT_TIMEOUT_SECONDS = 300.0
"""One git command's limit: a clone or push that hangs (a firewall) ends with a message."""

ALLOWED_PROTOCOLS = "file:git:http:https:ssh"
"""Transports git may use: never ``ext::`` (runs a command) whatever the URL says."""
_DROPPED = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_PREFIX")
"""Inherited from a hook or another git: they would point our commands at the wrong repo."""


def git_environment(env: Mapping[str, str], settings: Sequence[str]) -> dict[str, str]:
    """The environment of every git command: ``env`` without another repository's
    variables, never prompting, the author identity, and ``settings`` (``key=value``)
    appended to any ``GIT_CONFIG_COUNT`` settings already there."""
    out = {k: v for k, v in env.items() if k not in _DROPPED}
    out["GIT_TERMINAL_PROMPT"] = "0"
    out["GIT_ALLOW_PROTOCOL"] = ALLOWED_PROTOCOLS
    out.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
    name = env.get("GIT_AUTHOR_NAME") or DEFAULT_AUTHOR[0]
    email = env.get("GIT_AUTHOR_EMAIL") or DEFAULT_AUTHOR[1]
    out["GIT_AUTHOR_NAME"], out["GIT_AUTHOR_EMAIL"] = name, email
    out["GIT_COMMITTER_NAME"] = env.get("GIT_COMMITTER_NAME") or name
    out["GIT_COMMITTER_EMAIL"] = env.get("GIT_COMMITTER_EMAIL") or email
    count = int(out.get("GIT_CONFIG_COUNT", "0") or 0)
    for index, setting in enumerate(settings, start=count):
        key, _, value = setting.partition("=")
        out[f"GIT_CONFIG_KEY_{index}"], out[f"GIT_CONFIG_VALUE_{index}"] = key, value
    if settings:
        out["GIT_CONFIG_COUNT"] = str(count + len(settings))
    return out


@dataclass(frozen=True)
class RemoteRefs:
    """What ``git ls-remote`` says of the branches a promotion cares about."""

    default: str | None
    """The branch the remote's HEAD names (None: an empty repository)."""
    heads: dict[str, str]
    """branch -> commit, for the branches asked about."""


class Git:
    """Runs ``git`` for one promotion: one environment, one set of secrets to hide."""

    def __init__(
        self, env: Mapping[str, str], secrets: Secrets, timeout: float = GIT_TIMEOUT_SECONDS
    ) -> None:
        self.env = dict(env)
        self.secrets = secrets
        self.timeout = timeout

    def run(self, what: str, *args: str, cwd: Path | None = None, stdin: str | None = None) -> str:
        """``git ARGS`` in ``cwd``; its stdout, or GitCommandError naming ``what`` with
        git's own words (secrets hidden)."""
        try:
            done = subprocess.run(
                ["git", *args],
                cwd=cwd,
                env=self.env,
                input=stdin,
                capture_output=True,
                text=True,
                timeout=self.timeout,
                check=False,
            )
        except FileNotFoundError:
            raise GitOpsError(
                "git is not installed here: install it (e.g. apt-get install git) to promote "
                "to a repository"
            ) from None
        except subprocess.TimeoutExpired:
            raise GitCommandError(
                f"git {what} took longer than {self.timeout:.0f} s: check that the "
                "repository can be reached from here"
            ) from None
        if done.returncode != 0:
            said = " ".join((done.stderr or done.stdout).split())[-600:] or "no message"
            raise GitCommandError(
                self.secrets.hide(f"git {what} failed (exit {done.returncode}): {said}")
            )
        return done.stdout

    def remote_refs(self, remote: Remote, branches: Sequence[str]) -> RemoteRefs:
        """The remote's default branch and which of ``branches`` it has (one call)."""
        patterns = ["HEAD", *(f"refs/heads/{b}" for b in branches)]
        text = self.run("ls-remote", "ls-remote", "--symref", "--", remote.url, *patterns)
        default = None
        heads: dict[str, str] = {}
        for line in text.splitlines():
            left, _, ref = line.partition("\t")
            if left.startswith("ref: refs/heads/") and ref == "HEAD":
                default = left.removeprefix("ref: refs/heads/")
            elif ref.startswith("refs/heads/") and ref.removeprefix("refs/heads/") in branches:
                heads[ref.removeprefix("refs/heads/")] = left
        return RemoteRefs(default, heads)

    def clone(self, remote: Remote, base: str, into: Path) -> None:
        """A shallow clone of ``base`` only."""
        self.run(
            "clone",
            "clone", "--quiet", "--depth", "1", "--no-tags", "--single-branch",
            "--branch", base, "--", remote.url, str(into),
        )  # fmt: skip

    def commit_files(
        self, repo: Path, branch: str, files: Mapping[str, str], message: str
    ) -> str | None:
        """``files`` (path -> text) written and committed on a new ``branch``; the
        commit's sha, or None when they change nothing."""
        self.run("checkout", "checkout", "--quiet", "-b", branch, cwd=repo)
        for path, text in files.items():
            target = repo / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        self.run("add", "add", "--", *files, cwd=repo)
        staged = self.run("diff", "diff", "--cached", "--name-only", cwd=repo)
        if not staged.strip():
            return None
        self.run("commit", "commit", "--quiet", "--file=-", cwd=repo, stdin=message)
        return self.run("rev-parse", "rev-parse", "HEAD", cwd=repo).strip()

    def push(self, repo: Path, branch: str) -> None:
        """The new branch to origin; never forced (an existing branch is refused)."""
        ref = f"refs/heads/{branch}"
        self.run("push", "push", "--quiet", "--porcelain", "origin", f"{ref}:{ref}", cwd=repo)
