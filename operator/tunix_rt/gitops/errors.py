"""What can stop a promotion to git, each with the exit code it means; every message
names the option or setting at fault and the fix, and never holds a credential."""

from __future__ import annotations

from tunix_rt.contract.exits import ExitCode
from tunix_rt.promotion import PromotionError


class GitOpsError(PromotionError):
    """A promotion to git that did not happen (or not all of it); one line."""

    def __init__(self, message: str, exit_code: ExitCode = ExitCode.FAILED) -> None:
        super().__init__([message], exit_code)


class RepoRefused(GitOpsError):
    """An option refused before anything ran: a repository URL with credentials, a bad
    branch name or path, a forge that cannot be told."""

    def __init__(self, message: str) -> None:
        super().__init__(message, ExitCode.INVALID)


class BranchExists(GitOpsError):
    """The branch is already on the remote: a promotion never moves someone's branch."""

    def __init__(self, message: str) -> None:
        super().__init__(message, ExitCode.INVALID)


class GitCommandError(GitOpsError):
    """A git command failed (network, access, a rejected push); its words, redacted."""


class ForgeError(GitOpsError):
    """The forge's API refused the pull / merge request, or could not be reached."""
