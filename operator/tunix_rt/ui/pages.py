"""The web view's request handlers: read the store in a worker thread (the catalog),
join the live phases, sort and filter, render. Routes: :mod:`tunix_rt.ui.app`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tunix_rt.storage import StoreNotFoundError
from tunix_rt.ui import csrf, files
from tunix_rt.ui.catalog import Catalog
from tunix_rt.ui.config import (
    Kind,
    LivePhases,
    Promoter,
    PromoteRequest,
    RunKey,
    UiConfig,
    promote_with,
)
from tunix_rt.ui.models import RunRow, SweepView, TrialView
from tunix_rt.ui.rehearsals import promoted_from, rehearsal_rows, rehearsal_view, trial_sample
from tunix_rt.ui.render import history, render, sweep_charts, trial_charts
from tunix_rt.ui.tables import (
    DEFAULT_RUN_SORT,
    RUN_COLUMNS,
    Page,
    RunFilter,
    Sort,
    default_trial_sort,
    headers,
    run_value,
    sort_rows,
    trial_columns,
    trial_value,
)

log = logging.getLogger("tunix_rt.ui")
FRAGMENT = "live"
"""``?fragment=live``: the page's live part alone (what static/ui.js swaps in)."""


@dataclass
class Context:
    """What every handler needs: the store's catalog, the settings, the plug-ins."""

    catalog: Catalog
    config: UiConfig
    live: LivePhases | None = None
    promoter: Promoter | None = None

    async def phases(self) -> Mapping[RunKey, str]:
        """The live phases (none without a provider, or when it fails: the store's stand)."""
        if self.live is None:
            return {}
        try:
            return await self.live()
        except Exception:  # the pages must not depend on the API; say why in the log
            log.exception("live phases failed; showing the store's")
            return {}

    @property
    def can_promote(self) -> bool:
        return self.config.promote_enabled and self.promoter is not None


CONTEXT = web.AppKey("tunix_rt_ui", Context)


def _context(request: web.Request) -> Context:
    return request.app[CONTEXT]


def _names(request: web.Request) -> tuple[str, str]:
    """The route's namespace and name, checked (anything else is no run: 404)."""
    try:
        return files.check_name(request.match_info["ns"]), files.check_name(
            request.match_info["name"]
        )
    except files.Refused as exc:
        raise web.HTTPNotFound(text=str(exc)) from None


def _page(request: web.Request, template: str, **context: Any) -> web.Response:
    """The page, or its live part alone (``?fragment=live``)."""
    ctx = _context(request)
    fragment = request.query.get("fragment") == FRAGMENT
    html = render(
        f"{template}_live.html" if fragment else f"{template}.html",
        config=ctx.config,
        store_uri=ctx.catalog.store.uri,
        **context,
    )
    return web.Response(text=html, content_type="text/html")


def _crumbs(namespace: str, sweep: RunRow | None = None) -> list[tuple[str, str]]:
    """The breadcrumb trail every page above the list starts with: the namespace's list,
    then (on a trial's page and the promote page) the sweep."""
    trail = [(namespace, f"/?namespace={namespace}")]
    if sweep is not None:
        trail.append((sweep.name, sweep.href))
    return trail


def _live_row(row: RunRow, phases: Mapping[RunKey, str]) -> RunRow:
    phase = phases.get((row.namespace, row.kind, row.name))
    return row if phase is None else row.model_copy(update={"phase": phase, "live": True})


def join_live(rows: list[RunRow], phases: Mapping[RunKey, str]) -> list[RunRow]:
    """The store's rows with the API's phases over them, and the runs the API knows that
    have no files yet (Pending ones, say)."""
    joined = [_live_row(r, phases) for r in rows]
    seen = {(r.namespace, r.kind, r.name) for r in rows}
    for (namespace, kind, name), phase in phases.items():
        if (namespace, kind, name) not in seen:
            joined.append(
                RunRow(
                    kind=kind,
                    namespace=namespace,
                    name=name,
                    phase=phase,
                    live=True,
                    in_store=False,
                )
            )
    return joined


def all_rows(catalog: Catalog) -> list[RunRow]:
    rows: list[RunRow] = []
    for namespace in catalog.namespaces():
        rows += catalog.sweep_rows(namespace) + rehearsal_rows(catalog, namespace)
    return rows


# ----------------------------------------------------------------------------- the list


async def runs(request: web.Request) -> web.Response:
    """Every Sweep and Rehearsal, filtered, sorted and a page at a time."""
    ctx = _context(request)
    rows = join_live(await asyncio.to_thread(all_rows, ctx.catalog), await ctx.phases())
    query = dict(request.query)
    wanted = RunFilter.parse(query)
    sort = Sort.parse(query, RUN_COLUMNS, DEFAULT_RUN_SORT)
    kept = sort_rows([r for r in rows if wanted.keeps(r)], run_value, sort)
    page = Page.of(query, len(kept), ctx.config.per_page)
    shown = kept[page.first : page.first + ctx.config.per_page]
    return _page(
        request,
        "runs",
        title="Sweeps and rehearsals",
        crumbs=[],
        rows=shown,
        total=len(rows),
        matched=len(kept),
        wanted=wanted,
        namespaces=sorted({r.namespace for r in rows}),
        phases=sorted({r.phase for r in rows}),
        headers=headers(RUN_COLUMNS, sort, query, "/"),
        sort_kept=sort if "sort" in query else None,
        page=page,
        pages=[(n, page.href(n, query, "/")) for n in range(1, page.count + 1)],
        refresh=ctx.config.refresh_seconds if any(r.running for r in shown) else None,
    )


# ----------------------------------------------------------------------------- a sweep


def _sweep_view(ctx: Context, namespace: str, name: str) -> SweepView | None:
    state = ctx.catalog.sweep_state(namespace, name)
    if state is None:
        return None
    view = ctx.catalog.sweep_view(state)
    view.rehearsals = promoted_from(ctx.catalog, namespace, name)
    return view


async def _sweep_or_404(request: web.Request) -> tuple[Context, SweepView]:
    ctx = _context(request)
    namespace, name = _names(request)
    view = await asyncio.to_thread(_sweep_view, ctx, namespace, name)
    phases = await ctx.phases()
    if view is None:
        live = phases.get((namespace, "Sweep", name))
        detail = f"The API says it is {live}; " if live else ""
        raise web.HTTPNotFound(
            text=f"{detail}no files of sweep {namespace}/{name} in the store yet."
        )
    view.row = _live_row(view.row, phases)
    return ctx, view


async def sweep(request: web.Request) -> web.Response:
    """A sweep: its trials (sortable), charts, failed trials, goal and budget, evidence."""
    ctx, view = await _sweep_or_404(request)
    query = dict(request.query)
    columns = trial_columns(view.goal.metric, view.goal.mode, view.param_names)
    sort = Sort.parse(query, columns, default_trial_sort(view.goal.mode))
    nonce, new = csrf.nonce_of(request)
    show_promote = ctx.can_promote and view.finished and view.row.phase == "Succeeded"
    response = _page(
        request,
        "sweep",
        title=f"Sweep {view.row.name}",
        crumbs=_crumbs(view.row.namespace),
        view=view,
        trials=sort_rows(view.trials, trial_value, sort),
        headers=headers(columns, sort, query, request.path),
        charts=await asyncio.to_thread(sweep_charts, view),
        show_promote=show_promote,
        csrf_field=csrf.FIELD,
        csrf_token=csrf.sign(ctx.config.csrf_secret.get_secret_value(), nonce),
        refresh=ctx.config.refresh_seconds if view.row.running else None,
    )
    if show_promote and new:
        csrf.set_cookie(response, nonce, secure=ctx.config.secure_cookies)
    return response


async def trial(request: web.Request) -> web.Response:
    """A trial: its params, metrics, curve, error, and eval rows (a rehearsal's of it)."""
    ctx, view = await _sweep_or_404(request)
    trial_id = request.match_info["trial"]
    row = next((t for t in view.trials if t.trial_id == trial_id), None)
    if row is None:
        raise web.HTTPNotFound(text=f"sweep {view.row.name} has no trial {trial_id!r}")
    names = view.rehearsals.get(trial_id, [])
    sample = await asyncio.to_thread(
        trial_sample, ctx.catalog, view.row.namespace, names, ctx.config.sample_rows,
        ctx.config.trace_chars,
    )  # fmt: skip
    page = TrialView(sweep=view.row, trial=row, objective=view.goal.metric, sample=sample)
    return _page(
        request,
        "trial",
        title=f"Trial {trial_id}",
        crumbs=_crumbs(view.row.namespace, view.row),
        view=page,
        rehearsals=names,
        charts=trial_charts(row),
        refresh=ctx.config.refresh_seconds if row.state in ("Pending", "Running") else None,
    )


async def promote(request: web.Request) -> web.Response:
    """The Promote button: checks the form's token, then hands the sweep to the promoter."""
    ctx = _context(request)
    promoter = ctx.promoter
    if not ctx.config.promote_enabled or promoter is None:
        raise web.HTTPNotFound(text="promotion is not enabled here")
    form = await request.post()
    token = form.get(csrf.FIELD)
    if not csrf.valid(request, ctx.config.csrf_secret.get_secret_value(), str(token or "")):
        raise web.HTTPForbidden(text="the form's CSRF token is missing or wrong: reload the page")
    ctx, view = await _sweep_or_404(request)
    if view.summary_uri is None or view.row.phase != "Succeeded":
        raise web.HTTPConflict(text="only a sweep that Succeeded can be promoted")
    ask = PromoteRequest(
        namespace=view.row.namespace, sweep=view.row.name, summary_uri=view.summary_uri,
        repo=ctx.config.git_repo,
    )  # fmt: skip
    outcome = await promote_with(promoter, ask)
    response = _page(
        request,
        "promoted",
        title=f"Promote {view.row.name}",
        crumbs=_crumbs(view.row.namespace, view.row),
        view=view,
        outcome=outcome,
        refresh=None,
    )
    response.set_status(200 if outcome.ok else 502)
    return response


# ----------------------------------------------------------------------------- a rehearsal


async def rehearsal(request: web.Request) -> web.Response:
    """A rehearsal: score, source, curve, eval rows, evidence, bundle check, failures."""
    ctx = _context(request)
    namespace, name = _names(request)
    config = ctx.config
    view = await asyncio.to_thread(
        rehearsal_view, ctx.catalog, namespace, name, config.sample_rows, config.trace_chars
    )
    phases = await ctx.phases()
    if view is None:
        live = phases.get((namespace, "Rehearsal", name))
        detail = f"The API says it is {live}; " if live else ""
        raise web.HTTPNotFound(text=f"{detail}no evidence of rehearsal {namespace}/{name} yet.")
    view.row = _live_row(view.row, phases)
    return _page(
        request,
        "rehearsal",
        title=f"Rehearsal {name}",
        crumbs=_crumbs(namespace),
        view=view,
        charts=history(view.summary),
        refresh=config.refresh_seconds if view.row.running else None,
    )


# ----------------------------------------------------------------------------- files


async def file(request: web.Request) -> web.StreamResponse:
    """One file of a run's folder, streamed from the store with its content type."""
    ctx = _context(request)
    kind: Kind = "Sweep" if request.match_info["kind"] == "sweeps" else "Rehearsal"
    namespace, name, path = (request.match_info[k] for k in ("ns", "name", "path"))
    try:
        key = (files.sweep_file_key if kind == "Sweep" else files.rehearsal_file_key)(
            namespace, name, path
        )
    except files.Refused as exc:
        raise web.HTTPNotFound(text=str(exc)) from None
    store = ctx.catalog.store
    parent, _, leaf = key.rpartition("/")
    entry = (await asyncio.to_thread(store.entries, parent)).get(leaf)
    if entry is None or entry.folder:
        raise web.HTTPNotFound(text=f"no file {path!r} in {namespace}/{name}")
    kind_of, download = files.content_type(leaf)
    head = {
        "Content-Type": kind_of,
        "Content-Security-Policy": files.FILE_POLICY,
        "Cache-Control": "no-cache",
    }
    if download:
        head["Content-Disposition"] = f'attachment; filename="{leaf}"'
    if entry.size is not None and entry.size <= files.CHUNK:  # one read: a record rewritten
        body = await asyncio.to_thread(store.read_range, key, 0, files.CHUNK)  # meanwhile fits
        return web.Response(body=body, headers=head)
    response = web.StreamResponse(headers=head)
    if entry.size is not None:
        response.content_length = entry.size
    await response.prepare(request)
    start = 0
    while entry.size is None or start < entry.size:
        try:
            chunk = await asyncio.to_thread(store.read_range, key, start, start + files.CHUNK)
        except StoreNotFoundError:
            break  # gone while being sent: the client sees a short body
        if not chunk:
            break
        await response.write(chunk)
        start += len(chunk)
    await response.write_eof()
    return response
