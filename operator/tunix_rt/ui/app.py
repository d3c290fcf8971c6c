"""The web view: an aiohttp application over one store (``tunix-rt ui``; the operator
serves the same app, with the live phases from the API).

    app = make_app("file://./runs", UiConfig())
    served = await serve(app, port=0)          # tests: a free port; served.url
    ...
    await served.close()

Pages (every table sorts by its header links, server-side; no page needs JavaScript):

    GET  /                                        every Sweep and Rehearsal, filterable
    GET  /sweeps/{ns}/{name}                      trials, charts, failures, budget, evidence
    GET  /sweeps/{ns}/{name}/trials/{trial}       params, curve, sample eval rows
    GET  /rehearsals/{ns}/{name}                  score, evidence bundle and its check
    GET  /files/sweeps/{ns}/{name}/{path}         one evidence file of that sweep
    GET  /files/rehearsals/{ns}/{name}/{path}     one file of that rehearsal's folder
    POST /sweeps/{ns}/{name}/promote              the Promote button (off by default)
    GET  /healthz

A running run's page re-fetches itself every few seconds (``?fragment=live``, by
static/ui.js; without JavaScript a ``<noscript>`` meta refresh reloads it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from tunix_rt.storage import Store, StoreError
from tunix_rt.ui import pages
from tunix_rt.ui.cache import StampCache
from tunix_rt.ui.catalog import Catalog
from tunix_rt.ui.config import LivePhases, Promoter, UiConfig
from tunix_rt.ui.render import STATIC, render

log = logging.getLogger("tunix_rt.ui")
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

WARMUP: web.AppKey[list[asyncio.Future[object]]] = web.AppKey("tunix_rt_ui_warmup", list)
"""The app's reading of the store ahead of the first view (done once awaited)."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Security headers on every answer; an unreachable store as a page that says so."""
    try:
        response = await handler(request)
    except StoreError as exc:
        response = _error(request, 503, "The store cannot be read", str(exc))
    except web.HTTPNotFound as exc:
        response = _error(request, 404, "Not found", exc.text or "")
    response.headers.setdefault("Content-Security-Policy", PAGE_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "DENY")
    return response


def _error(request: web.Request, status: int, title: str, detail: str) -> web.Response:
    context = request.app[pages.CONTEXT]
    html = render(
        "error.html", title=title, detail=detail, status=status, config=context.config,
        store_uri=context.catalog.store.uri, crumbs=[], refresh=None,
    )  # fmt: skip
    return web.Response(text=html, status=status, content_type="text/html")


def make_app(
    store_uri: str,
    config: UiConfig | None = None,
    live: LivePhases | None = None,
    *,
    promoter: Promoter | None = None,
) -> web.Application:
    """The web view of the store at ``store_uri`` (file://, s3://, gs://). ``live``: the
    API's phases to join (None: the store's alone); ``promoter``: what the Promote button
    does (None, or ``config.promote_enabled`` false: no button, and the POST is a 404)."""
    config = config or UiConfig()
    catalog = Catalog(Store(store_uri), StampCache())
    app = web.Application(middlewares=[_guard])
    app[pages.CONTEXT] = pages.Context(catalog, config, live, promoter)
    app.router.add_get("/", pages.runs, name="runs")
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/sweeps/{ns}/{name}", pages.sweep, name="sweep")
    app.router.add_get("/sweeps/{ns}/{name}/trials/{trial}", pages.trial, name="trial")
    app.router.add_post("/sweeps/{ns}/{name}/promote", pages.promote, name="promote")
    app.router.add_get("/rehearsals/{ns}/{name}", pages.rehearsal, name="rehearsal")
    app.router.add_get("/files/{kind:sweeps|rehearsals}/{ns}/{name}/{path:.+}", pages.file)
    app.router.add_static("/static/", STATIC, name="static", append_version=False)

    warming: list[asyncio.Future[object]] = []
    app[WARMUP] = warming

    async def warm(_: web.Application) -> None:
        """Read every run once in the background: the first view then finds the files
        parsed (200 sweeps of 20 trials: ~1 s cold, ~0.1 s warm; benchmarks/README.md)."""
        if config.warm_cache:
            warming.append(asyncio.ensure_future(asyncio.to_thread(_read_all, catalog)))

    async def close(_: web.Application) -> None:
        for task in warming:
            task.cancel()
        catalog.close()

    app.on_startup.append(warm)
    app.on_cleanup.append(close)
    return app


def _read_all(catalog: Catalog) -> object:
    try:
        return pages.all_rows(catalog)
    except StoreError as exc:  # the pages will say so; nothing to warm
        log.warning("could not read %s ahead of the first view: %s", catalog.store.uri, exc)
        return None


async def _healthz(_: web.Request) -> web.Response:
    return web.Response(text="ok\n")


@dataclass
class Served:
    """A running app: where it listens, and how to stop it."""

    runner: web.AppRunner
    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    async def close(self) -> None:
        await self.runner.cleanup()


async def serve(app: web.Application, host: str = "127.0.0.1", port: int = 0) -> Served:
    """Start ``app`` on ``host:port`` (0: a free port, as tests and browsers want) and
    return where it listens."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    addresses = runner.addresses
    bound = int(addresses[0][1]) if addresses else port
    return Served(runner, host, bound)


async def run_forever(
    app: web.Application, host: str, port: int, say: Callable[[str], None]
) -> None:
    """``tunix-rt ui``: serve until interrupted, saying where first."""
    served = await serve(app, host, port)
    say(served.url)
    try:
        await asyncio.Event().wait()
    finally:
        await served.close()
