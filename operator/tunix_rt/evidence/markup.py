"""HTML pieces the report pages and their charts share: escaping, numbers, tables, the page.

Every piece of text goes through :func:`esc`; the page is self-contained (its CSS inline,
no JavaScript, nothing fetched from anywhere).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:1040px;color:#1d2430;padding:0 1rem}
h1{font-size:1.5rem;margin:.2rem 0}h2{font-size:1.15rem;margin-top:2rem;
border-bottom:1px solid #dde3ea;padding-bottom:.25rem}
.score{display:flex;gap:2rem;flex-wrap:wrap;margin:1rem 0}
.score div{background:#f4f6f9;border-radius:8px;padding:.6rem 1rem}
.score b{display:block;font-size:1.6rem}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{border-bottom:1px solid #e6eaef;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f4f6f9}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.best td{background:#fff6d6}code,pre{font:12px/1.4 ui-monospace,Menlo,Consolas,monospace}
pre{background:#f6f8fa;padding:.6rem;overflow:auto;white-space:pre-wrap;word-break:break-word}
.ok{color:#137333}.bad{color:#b3261e}.muted{color:#5f6b7a}
svg{background:#fff;border:1px solid #e6eaef;border-radius:6px;margin:.5rem 0}
"""


def esc(value: Any) -> str:
    """``value`` as HTML text (quotes escaped too: safe in attributes)."""
    return escape(str(value), quote=True)


def fmt(value: Any, digits: int = 4) -> str:
    """A value as a person reads it: ``—`` for none, short floats, scientific when tiny."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e6):
            return f"{value:.3e}"
        text = f"{value:.{digits}f}"
        return text.rstrip("0").rstrip(".") if "." in text else text
    return str(value)


def flatten(obj: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Nested mappings as (dotted key, value) rows, sorted."""
    if isinstance(obj, Mapping):
        out: list[tuple[str, Any]] = []
        for key in sorted(obj):
            out.extend(flatten(obj[key], f"{prefix}.{key}" if prefix else str(key)))
        return out
    return [(prefix, obj)]


def _cell(value: Any) -> str:
    if isinstance(value, list | dict):
        return esc(json.dumps(value, sort_keys=True))
    return esc(fmt(value))


def kv_table(rows: Sequence[tuple[str, Any]]) -> str:
    """A two-column table of (key, value) rows."""
    body = "".join(f"<tr><th>{esc(k)}</th><td>{_cell(v)}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def page(title: str, parts: Sequence[str]) -> str:
    """The whole HTML document around ``parts``."""
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>",
            *parts,
            "</body></html>\n",
        ]
    )
