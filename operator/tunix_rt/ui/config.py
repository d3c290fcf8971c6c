"""The web view's settings and the two things a host process plugs into it: the live
phases from the Kubernetes API (:data:`LivePhases`) and the Promote button's action
(:data:`Promoter`). Both default to none: ``tunix-rt ui`` on a laptop reads the store
alone and changes nothing anywhere.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import secrets
from collections.abc import Awaitable, Callable, Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

Kind = Literal["Sweep", "Rehearsal"]
RunKey = tuple[str, Kind, str]
"""(namespace, kind, name) of a Sweep or a Rehearsal."""

LivePhases = Callable[[], Awaitable[Mapping[RunKey, str]]]
"""The phase the API server holds for every Sweep and Rehearsal it knows, by key: joined
into the pages over what the store says (which cannot tell a Pending run, or a RayJob
lost with its cluster). :class:`tunix_rt.ui.live.KubeLivePhases` reads them in a cluster."""

log = logging.getLogger("tunix_rt.ui")

SECRET_ENV = "TUNIX_RT_UI_SECRET"
"""Where :class:`UiConfig` takes its CSRF secret from when none is given (a Deployment
with several replicas sets one, so that a form from one replica posts to another)."""


class PromoteRequest(BaseModel):
    """What the Promote button asks for: this finished sweep's best trial, to git."""

    model_config = ConfigDict(frozen=True)

    namespace: str
    sweep: str
    summary_uri: str
    repo: str | None = None


class PromoteOutcome(BaseModel):
    """What a promoter did, shown on the page it answers with."""

    ok: bool
    message: str
    details: dict[str, str] = Field(
        default_factory=dict, description="Say, branch, commit and merge-request URL."
    )


Promoter = Callable[[PromoteRequest], PromoteOutcome | Awaitable[PromoteOutcome]]
"""Promotes a finished sweep (``tunix_rt.gitops`` in the operator); a plain function runs
in a worker thread, a coroutine function on the event loop (:func:`promote_with`)."""


async def promote_with(promoter: Promoter, ask: PromoteRequest) -> PromoteOutcome:
    """The promoter's outcome (the Promote button's): a coroutine runs on the loop, a
    function in a thread (git blocks); what it raises becomes a failed outcome that says
    so."""
    try:
        if inspect.iscoroutinefunction(promoter):
            result = await promoter(ask)
        else:
            result = await asyncio.to_thread(promoter, ask)
            if inspect.isawaitable(result):
                result = await result
        return (
            result if isinstance(result, PromoteOutcome) else PromoteOutcome.model_validate(result)
        )
    except Exception as exc:
        log.exception("promotion of %s/%s failed", ask.namespace, ask.sweep)
        return PromoteOutcome(ok=False, message=f"{type(exc).__name__}: {exc}")


class UiConfig(BaseModel):
    """How the web view serves: read-only unless promotion is switched on and wired."""

    model_config = ConfigDict(frozen=True)

    title: str = "tunix-rt"
    promote_enabled: bool = Field(
        False, description="Show the Promote button on finished sweeps (needs a promoter)."
    )
    git_repo: str | None = Field(None, description="Where promotions go (the promoter's).")
    csrf_secret: SecretStr = Field(
        default_factory=lambda: SecretStr(os.environ.get(SECRET_ENV) or secrets.token_hex(32)),
        description=f"Signs the forms' tokens ({SECRET_ENV}; else random per process).",
    )
    secure_cookies: bool = Field(False, description="Mark the CSRF cookie Secure (HTTPS).")
    refresh_seconds: int = Field(5, ge=1, description="How often a running page refreshes.")
    per_page: int = Field(200, ge=1, description="Runs listed on one page.")
    sample_rows: int = Field(20, ge=0, description="Eval rows shown on a trial or rehearsal.")
    trace_chars: int = Field(4000, ge=80, description="Model output shown per eval row.")
    warm_cache: bool = Field(
        True, description="Read every run once at start, so the first view is fast."
    )
