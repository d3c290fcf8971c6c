"""The web view (``tunix-rt ui [STORE_URI]``; the operator serves the same app): every
Sweep and Rehearsal in a store, a sweep's trials and charts, a trial's curve and eval
rows, a rehearsal's evidence and its check. It reads only the store, so it works after
every RayJob and cluster is gone; in a cluster it joins the live phases from the API.

    from tunix_rt.ui import UiConfig, make_app, serve
    served = await serve(make_app("file://./runs", UiConfig()), port=0)

Read-only by default: the one form (Promote, off unless enabled and given a promoter) is
CSRF-protected. aiohttp, Jinja2 and server-side SVG (the charts report.html draws too);
no JavaScript beyond the live refresh, nothing from a CDN; no Ray, JAX or kopf imported
(:mod:`tunix_rt.ui.live`, which reads the API, imports kopf and is imported by its user).
"""

from tunix_rt.ui.app import Served, make_app, run_forever, serve
from tunix_rt.ui.config import (
    LivePhases,
    PromoteOutcome,
    Promoter,
    PromoteRequest,
    RunKey,
    UiConfig,
)

__all__ = [
    "LivePhases",
    "PromoteOutcome",
    "PromoteRequest",
    "Promoter",
    "RunKey",
    "Served",
    "UiConfig",
    "make_app",
    "run_forever",
    "serve",
]
