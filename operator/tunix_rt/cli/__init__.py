"""The ``tunix-rt`` command line.

Importing this package stays light (pydantic, typer, rich, yaml): Ray and JAX are
imported inside the commands that need them, so ``tunix-rt --help``, ``validate`` and
``crds`` are instant and work in the operator image, which has neither.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

import typer
from typer.core import TyperGroup

from tunix_rt.cli import crds as crds_cmd
from tunix_rt.cli import promote as promote_cmd
from tunix_rt.cli import sweep as sweep_cmd
from tunix_rt.cli import validate as validate_cmd
from tunix_rt.cli.common import quiet_store_retries
from tunix_rt.contract.exits import ExitCode

# ----------------------------------------------------------------------------- plugins
# Commands contributed by other modules of tunix_rt.cli: command name -> module.
#
# To add a command, create the module and expose a `typer.Typer` named `app` in it; no
# edit here is needed for the ones below. A missing module is skipped.
#   * an app with exactly one command whose name is the command name below (e.g.
#     `@app.command()` on `def package(...)`) becomes that command:
#         tunix-rt package RUN_DIR [--verify ZIP]
#   * any other app becomes a command group:  tunix-rt rehearsal run FILE
# Modules are imported only when their command is used (or --help lists them). Keep
# heavy imports (ray, jax, kopf, …) inside the command functions all the same; a module
# that fails to import (e.g. an extra that is not installed) shows up as a command that
# says why instead of breaking the whole CLI.
PLUGINS: dict[str, str] = {
    "operator": "tunix_rt.cli.operator",
    "rehearsal": "tunix_rt.cli.rehearsal",
    "package": "tunix_rt.cli.package",
    "ui": "tunix_rt.cli.ui",
}


def _module_exists(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _broken_command(name: str, module: str, error: BaseException) -> Any:
    reason = f"{type(error).__name__}: {error}"
    stub = typer.Typer()

    @stub.command(name=name, help=f"(unavailable: {reason})")
    def unavailable() -> None:
        typer.secho(
            f"tunix-rt {name} is unavailable here: importing {module} failed ({reason}). "
            "Install the extra it needs: make demo, or uv sync --frozen --all-extras, "
            "or pip install 'tunix-rt[train]'.",
            fg="red",
            err=True,
        )
        raise typer.Exit(ExitCode.INVALID)

    return typer.main.get_command(stub)


def load_plugin(name: str, module: str) -> Any:
    """The click command of one plugin module (see PLUGINS), or None when it is absent."""
    if not _module_exists(module):
        return None
    try:
        plugin = importlib.import_module(module)
    except Exception as exc:
        return _broken_command(name, module, exc)
    plugin_app = getattr(plugin, "app", None)
    if not isinstance(plugin_app, typer.Typer):
        return _broken_command(name, module, TypeError(f"{module} has no typer.Typer `app`"))
    commands = plugin_app.registered_commands
    if len(commands) == 1 and not plugin_app.registered_groups:
        info = commands[0]
        callback_name = getattr(info.callback, "__name__", "")
        command_name = info.name or typer.main.get_command_name(callback_name)
        if command_name == name:
            return typer.main.get_command(plugin_app)
    group = typer.main.get_group(plugin_app)
    group.name = name
    return group


class TunixGroup(TyperGroup):
    """The root group: built-in commands plus the PLUGINS, loaded on first use."""

    _plugins: dict[str, Any]

    def _plugin(self, name: str) -> Any:
        cache = self.__dict__.setdefault("_plugins", {})
        if name not in cache:
            command = load_plugin(name, PLUGINS[name])
            if command is not None:
                command.name = name
            cache[name] = command
        return cache[name]

    def list_commands(self, ctx: Any) -> list[str]:
        names = super().list_commands(ctx)
        names.sort(key=lambda n: ORDER.index(n) if n in ORDER else len(ORDER))
        extra = [n for n, m in PLUGINS.items() if n not in names and _module_exists(m)]
        return names + extra

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in PLUGINS:
            command = self._plugin(cmd_name)
        return command


# ----------------------------------------------------------------------------- the app

ORDER = ["sweep", "promote", "validate", "crds"]
"""Built-in commands in the order --help lists them (plugins follow)."""

app = typer.Typer(
    name="tunix-rt",
    cls=TunixGroup,
    no_args_is_help=True,
    add_completion=False,
    help="tunix-rt: hyperparameter sweeps and rehearsal runs for trace-first LLM "
    "post-training, on Kubernetes (Ray Tune on KubeRay) or on this machine.",
)


@app.callback()
def _setup() -> None:
    """Before any command: store retries shown as one line per burst."""
    quiet_store_retries()


app.add_typer(sweep_cmd.app, name="sweep")
app.command("promote")(promote_cmd.promote)
app.command("validate")(validate_cmd.validate)
app.command("crds")(crds_cmd.crds)


def main() -> None:
    """Console script entry point (``tunix-rt``)."""
    app()


__all__ = ["PLUGINS", "app", "main"]
