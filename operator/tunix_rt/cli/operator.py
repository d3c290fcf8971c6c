"""``tunix-rt operator``: run the Kubernetes operator (kopf under the hood).

Settings come from the environment (``TUNIX_RT_*``, see ``tunix_rt.controller.config``);
the options below override them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import typer

from tunix_rt.contract.exits import ExitCode
from tunix_rt.controller.config import (
    DEFAULT_LIVENESS,
    DEFAULT_METRICS_PORT,
    ConfigError,
    OperatorConfig,
)


@dataclass(frozen=True)
class UiOptions:
    """The web view's options (``--ui-*``): off unless a port is given."""

    port: int | None = None
    host: str | None = None
    store: str | None = None
    promote_repo: str | None = None

    def changes(self) -> dict[str, object]:
        named = {
            "ui_port": self.port,
            "ui_host": self.host,
            "ui_store": self.store,
            "ui_promote_repo": self.promote_repo,
        }
        return {key: value for key, value in named.items() if value is not None}


app = typer.Typer(
    name="operator",
    help="Run the tunix-rt Kubernetes operator (Sweeps and Rehearsals -> KubeRay RayJobs).",
    add_completion=False,
)


def build_config(
    *,
    namespaces: list[str] | None,
    all_namespaces: bool,
    peering: str | None,
    standalone: bool,
    liveness: str | None,
    metrics_port: int | None,
    poll_seconds: float | None = None,
    ui: UiOptions | None = None,
    base: OperatorConfig | None = None,
) -> OperatorConfig:
    """Environment config with the command-line options applied (they win); the web
    view's options checked (:func:`tunix_rt.controller.web.check`)."""
    config = base or OperatorConfig.from_env()
    if namespaces and all_namespaces:
        raise ConfigError("use either --namespace or --all-namespaces, not both")
    if peering and standalone:
        raise ConfigError("use either --peering NAME or --standalone, not both")
    changes: dict[str, object] = {}
    if namespaces:
        changes["namespaces"] = tuple(namespaces)
    elif all_namespaces:
        changes["namespaces"] = ()
    if peering:
        changes["peering"] = peering
    elif standalone:
        changes["peering"] = None
    if liveness is not None:
        changes["liveness_endpoint"] = liveness or None
    if metrics_port is not None:
        if not 0 <= metrics_port <= 65535:
            raise ConfigError(f"--metrics-port {metrics_port} is not a port (0 disables)")
        changes["metrics_port"] = metrics_port
    if poll_seconds is not None:
        if poll_seconds <= 0:
            raise ConfigError("--poll-seconds must be positive")
        changes["poll_seconds"] = poll_seconds
    if ui is not None:
        changes |= ui.changes()
    config = config.replace(**changes)
    from tunix_rt.controller import web

    web.check(config)
    return config


@app.command("operator")
def operator(
    namespace: list[str] = typer.Option(
        [], "--namespace", "-n", help="Serve this namespace (repeatable). Default: all."
    ),
    all_namespaces: bool = typer.Option(
        False, "--all-namespaces", "-A", help="Serve every namespace (cluster-wide)."
    ),
    peering: str | None = typer.Option(
        None, "--peering", help="kopf peering name, for several operator replicas."
    ),
    standalone: bool = typer.Option(
        False, "--standalone", help="No peering (a single replica). The default."
    ),
    liveness: str | None = typer.Option(
        None,
        "--liveness",
        help=f"Liveness endpoint URL ('' disables). Default: {DEFAULT_LIVENESS}.",
    ),
    metrics_port: int | None = typer.Option(
        None,
        "--metrics-port",
        help=f"Prometheus /metrics port (0 disables). Default: {DEFAULT_METRICS_PORT}.",
    ),
    poll_seconds: float | None = typer.Option(
        None, "--poll-seconds", help="How often running RayJobs and results are read."
    ),
    ui_port: int | None = typer.Option(
        None,
        "--ui-port",
        help="Serve the web view (sweeps, trials, evidence; the live phases from the API) "
        "on this port. Default: off.",
    ),
    ui_host: str | None = typer.Option(
        None, "--ui-host", help="Address the web view listens on. Default: 0.0.0.0."
    ),
    ui_store: str | None = typer.Option(
        None,
        "--ui-store",
        metavar="URI",
        help="Store the web view reads. Default: TUNIX_RT_DEFAULT_STORAGE.",
    ),
    ui_promote_repo: str | None = typer.Option(
        None,
        "--ui-promote-repo",
        metavar="REPO",
        help="Give finished sweeps a Promote button that commits the best trial's Rehearsal "
        "to REPO on a new branch and opens a pull / merge request. Default: read-only.",
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging."),
) -> None:
    """Watch Sweeps and Rehearsals, run them as RayJobs, report results in their status."""
    try:
        config = build_config(
            namespaces=namespace,
            all_namespaces=all_namespaces,
            peering=peering,
            standalone=standalone,
            liveness=liveness,
            metrics_port=metrics_port,
            poll_seconds=poll_seconds,
            ui=UiOptions(ui_port, ui_host, ui_store, ui_promote_repo),
        )
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(ExitCode.INVALID) from None

    import kopf

    from tunix_rt.controller import run

    kopf.configure(verbose=verbose, debug=verbose)
    from tunix_rt.storage.redact import scrub_log_handlers

    scrub_log_handlers()  # kopf's DEBUG log dumps whole objects: no credential in them
    logging.getLogger("tunix_rt").setLevel(logging.DEBUG if verbose else logging.INFO)
    scope = ", ".join(config.namespaces) if config.namespaces else "all namespaces"
    typer.echo(
        f"tunix-rt operator: {scope}; "
        + (f"peering {config.peering}" if config.peering else "standalone")
        + (f"; metrics on :{config.metrics_port}" if config.metrics_port else "")
        + (f"; web view on :{config.ui_port}" if config.ui_port is not None else ""),
        err=True,
    )
    run(config)
