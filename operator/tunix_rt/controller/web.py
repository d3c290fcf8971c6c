"""The web view served by the operator (``tunix-rt operator --ui-port PORT``; the chart's
``ui.enabled``): the same app as ``tunix-rt ui`` (:func:`tunix_rt.ui.make_app`), on the
operator's own event loop, with the live phases of the watched namespaces listed through
the operator's API client (:class:`tunix_rt.ui.live.KubeLivePhases`).

It does not slow the reconcile loop: the app reads the store and renders charts in worker
threads (``asyncio.to_thread``), parses each file once per version, lists the live phases
at most once per 5 s, and a promotion (git, the forge's API) runs in a thread too. The UI
modules (aiohttp's server, Jinja2, git) are imported only when it is switched on.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from tunix_rt.controller.config import ConfigError, OperatorConfig
from tunix_rt.controller.runtime import Runtime
from tunix_rt.storage.redact import redact_uri

if TYPE_CHECKING:
    from tunix_rt.ui import Served
    from tunix_rt.ui.promote import GitPromoter

log = logging.getLogger("tunix_rt.controller")


def check(config: OperatorConfig) -> None:
    """Refuse, naming the option and the fix, a web view that cannot start: no store to
    read, a port out of range, a promote repository without the view or one git refuses."""
    if config.ui_port is None:
        if config.ui_promote_repo:
            raise ConfigError("--ui-promote-repo needs the web view: give --ui-port PORT too")
        return
    if not 0 <= config.ui_port <= 65535:
        raise ConfigError(f"--ui-port {config.ui_port} is not a port (0: any free one)")
    store = config.ui_store_uri
    if not store:
        raise ConfigError(
            "--ui-port needs a store to show: give --ui-store URI or set "
            "TUNIX_RT_DEFAULT_STORAGE (the chart's storage.uri)"
        )
    if not store.startswith(("file://", "s3://", "gs://")):
        raise ConfigError(f"--ui-store {store!r} must be a file://, s3:// or gs:// URI")
    promoter(config)


def promoter(config: OperatorConfig) -> GitPromoter | None:
    """The Promote button's action, or None (read-only); ConfigError for a repository
    that cannot be used (credentials in its URL, an unknown scheme, no such folder)."""
    if not config.ui_promote_repo:
        return None
    from tunix_rt.promotion import PromotionError
    from tunix_rt.ui.promote import git_promoter

    try:
        return git_promoter(config.ui_promote_repo, flag="--ui-promote-repo")
    except PromotionError as exc:
        raise ConfigError(str(exc)) from None


async def start(config: OperatorConfig, runtime: Runtime) -> Served | None:
    """Serve the web view when ``config.ui_port`` is set (None otherwise); the caller
    closes what it returns when the operator stops."""
    if config.ui_port is None:
        return None
    check(config)
    from tunix_rt.ui import UiConfig, make_app, serve
    from tunix_rt.ui.live import KubeLivePhases

    store = config.ui_store_uri
    assert store is not None  # check() refused a view without one
    action = promoter(config)
    ui_config = UiConfig(
        promote_enabled=action is not None, git_repo=action.shown if action else None
    )
    live = KubeLivePhases(runtime.kube, config.namespaces or None)
    app = make_app(store, ui_config, live, promoter=action)
    served = await serve(app, config.ui_host, config.ui_port)
    log.info(
        "web view of %s on %s%s", redact_uri(store), served.url,
        f" (Promote to {action.shown})" if action else " (read-only)",
    )  # fmt: skip
    return served
