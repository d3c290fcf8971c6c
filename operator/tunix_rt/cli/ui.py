"""``tunix-rt ui [STORE_URI] [--host H] [--port P] [--promote-repo REPO]``: the web view of a
store (read-only unless ``--promote-repo`` is given)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from tunix_rt.api.common import DEFAULT_STORAGE
from tunix_rt.cli.common import storage_option
from tunix_rt.contract.exits import ExitCode

if TYPE_CHECKING:
    from aiohttp import web

app = typer.Typer(
    name="ui",
    help="Serve a read-only web view of a store's sweeps and rehearsals.",
    add_completion=False,
)


def _store_uri(value: str) -> str:
    """A URI as ``--storage`` takes it; a plain folder as its file:// URI."""
    if "://" not in value:
        return f"file://{Path(value).expanduser().resolve()}"
    return storage_option(value) or value


def build_app(
    store: str, promote_repo: str | None, flag: str = "--promote-repo"
) -> web.Application:
    """The app over ``store``; with ``promote_repo``, its Promote button commits there
    (RepoRefused, naming ``flag``, for a repository that cannot be used)."""
    from tunix_rt.ui import UiConfig, make_app

    if not promote_repo:
        return make_app(store, UiConfig())
    from tunix_rt.ui.promote import git_promoter

    promoter = git_promoter(promote_repo, flag=flag)
    config = UiConfig(promote_enabled=True, git_repo=promoter.shown)
    return make_app(store, config, promoter=promoter)


@app.command()
def ui(
    store: str = typer.Argument(
        DEFAULT_STORAGE,
        metavar="STORE_URI",
        help="Store URI (file://, s3://, gs://, or a folder); the default is where "
        "`sweep run` writes.",
        callback=_store_uri,
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8765, "--port", min=0, max=65535, help="Port (0: any free one)."),
    promote_repo: str | None = typer.Option(
        None,
        "--promote-repo",
        metavar="REPO",
        help="Show a Promote button on finished sweeps that commits the best trial's "
        "Rehearsal manifest to REPO (a local path or URL) on a new branch and opens a pull / "
        "merge request (GITHUB_TOKEN / GITLAB_TOKEN / TUNIX_RT_GIT_TOKEN_FILE). Default: "
        "read-only.",
    ),
) -> None:
    """Serve a read-only web view of every sweep and rehearsal in STORE_URI.

    Pages: the runs (filter, sort), a sweep (trials, charts, failures, budget, evidence),
    a trial (params, curve, eval rows), a rehearsal (score, bundle and its check). It
    reads only the store, so it works after the runs' clusters are gone; running sweeps
    refresh themselves. With --promote-repo, finished sweeps get a Promote button (a GitOps
    change: a branch, a commit, a pull request). Ctrl-C stops it.
    """
    from tunix_rt.promotion import PromotionError
    from tunix_rt.storage import StoreError
    from tunix_rt.ui import run_forever

    try:
        web_app = build_app(store, promote_repo)
    except (StoreError, PromotionError) as exc:
        typer.secho(f"tunix-rt ui: {exc}", fg="red", err=True)
        raise typer.Exit(ExitCode.INVALID) from None

    def say(url: str) -> None:
        typer.echo(f"tunix-rt ui: {store} at {url} (Ctrl-C stops it)", err=False)

    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(run_forever(web_app, host, port, say))
    except OSError as exc:
        typer.secho(f"tunix-rt ui: cannot listen on {host}:{port}: {exc}", fg="red", err=True)
        raise typer.Exit(ExitCode.INVALID) from None
