"""Promote as a GitOps change: a finished sweep's Rehearsal manifest and best config
committed to a git repository on a new branch, pushed, and proposed as a GitHub pull
request or GitLab merge request.

    from tunix_rt.gitops import promote_to_git
    promotion = promote_to_git("runs/local/sweep-smoke", "git@github.com:acme/models.git")
    promotion.branch, promotion.commit, promotion.pull_request_url

Modules: ``plan`` (what will be written and said: pure), ``remote`` (the repository and
its token), ``git`` (the git command line), ``forge`` (GitHub / GitLab APIs),
``promote`` (the entry point), ``errors``.
"""

from tunix_rt.gitops.errors import (
    BranchExists,
    ForgeError,
    GitCommandError,
    GitOpsError,
    RepoRefused,
)
from tunix_rt.gitops.forge import Forge
from tunix_rt.gitops.plan import PromoteOptions, PromotionPlan, plan_promotion
from tunix_rt.gitops.promote import Promotion, PullRequestError, promote_to_git

__all__ = [
    "BranchExists",
    "Forge",
    "ForgeError",
    "GitCommandError",
    "GitOpsError",
    "PromoteOptions",
    "Promotion",
    "PromotionPlan",
    "PullRequestError",
    "RepoRefused",
    "plan_promotion",
    "promote_to_git",
]
