"""``tunix-rt promote RESULT --git REPO``: what the command prints around
:func:`tunix_rt.gitops.promote_to_git` (steps on stderr, the outcome on stdout, errors
as ``error: …`` with the exit code they mean)."""

from __future__ import annotations

from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.text import Text

from tunix_rt.cli.display import make_console
from tunix_rt.gitops import Promotion, PullRequestError, promote_to_git
from tunix_rt.promotion import PromotionError
from tunix_rt.storage.redact import scrub


def to_git(result: str, repo: str, err: Console, **options: Any) -> None:
    """Promote to ``repo`` and print the branch, commit and request (or why none)."""
    console = make_console()

    def step(line: str) -> None:
        err.print(Text(scrub(line), style="dim"), soft_wrap=True)

    try:
        promotion = promote_to_git(result, repo, log=step, **options)
    except PullRequestError as exc:
        _print(console, exc.promotion)
        _error(err, exc.lines, exc.exit_code)
    except PromotionError as exc:
        _error(err, exc.lines, exc.exit_code)
    _print(console, promotion)


def _print(console: Console, promotion: Promotion) -> None:
    verb = "pushed" if promotion.pushed else "committed (not pushed)"
    lines = [
        f"{verb} branch {promotion.branch} to {promotion.repo} (from {promotion.base})",
        f"commit {promotion.commit}: {', '.join(promotion.files)} (Rehearsal "
        f"{promotion.rehearsal})",
    ]
    if not promotion.pushed:
        lines += ["message:", *(f"  {line}" for line in promotion.message.splitlines())]
    if promotion.pull_request_url:
        lines.append(f"{promotion.forge.request}: {promotion.pull_request_url}")
    elif promotion.note:
        lines.append(promotion.note)
    rehearsal = promotion.manifest
    lines.append(
        f"next: review and merge, then tunix-rt rehearsal run {rehearsal} from a checkout "
        f"(on a cluster: kubectl apply -f {rehearsal}, or let Argo CD / Flux sync it)"
        if promotion.pushed
        else "next: run the same command without --no-push to push the branch"
    )
    for line in lines:
        console.print(Text(scrub(line)), soft_wrap=True)


def _error(err: Console, lines: list[str], code: int) -> NoReturn:
    for line in lines:
        err.print(Text(scrub(f"error: {line}"), style="red"), soft_wrap=True)
    raise typer.Exit(code)
