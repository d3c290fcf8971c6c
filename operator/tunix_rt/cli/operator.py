"""``tunix-rt operator``: run the Kubernetes operator (kopf under the hood).

Settings come from the environment (``TUNIX_RT_*``, see ``tunix_rt.controller.config``);
the options below override them.
"""

from __future__ import annotations

import logging

import typer

from tunix_rt.contract.exits import ExitCode
from tunix_rt.controller.config import (
    DEFAULT_LIVENESS,
    DEFAULT_METRICS_PORT,
    ConfigError,
    OperatorConfig,
)

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
    base: OperatorConfig | None = None,
) -> OperatorConfig:
    """Environment config with the command-line options applied (they win)."""
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
    return config.replace(**changes)


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
        + (f"; metrics on :{config.metrics_port}" if config.metrics_port else ""),
        err=True,
    )
    run(config)
