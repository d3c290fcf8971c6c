"""The chart's Argo CD health check (charts/tunix-rt/files/argocd-health.lua), run by a real
Lua runtime (lupa) the way Argo CD runs it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lupa import LuaRuntime

LUA = Path(__file__).resolve().parents[2] / "charts" / "tunix-rt" / "files" / "argocd-health.lua"


def health(obj: dict[str, Any]) -> tuple[str, str]:
    """Argo CD's contract: a global ``obj``, the script returns {status, message}."""
    lua = LuaRuntime(unpack_returned_tuples=True)

    def table(value: Any) -> Any:
        if isinstance(value, dict):
            return lua.table_from({k: table(v) for k, v in value.items()})
        if isinstance(value, list):
            return lua.table_from([table(v) for v in value])
        return value

    lua.globals().obj = table(obj)
    result = lua.execute(LUA.read_text())
    return str(result["status"]), str(result["message"])
