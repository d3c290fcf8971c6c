"""Reading the web view's pages in tests: rows of a table, one chart."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp.test_utils import TestClient

MakeClient = Callable[..., Awaitable[TestClient[Any, Any]]]
"""tests/ui's ``make_client`` fixture: ``await make_client(config, live, promoter=…)``."""


def table_ids(html: str, table: str, attribute: str) -> list[str]:
    """The ``attribute`` of each row of ``<table id=table>``, in page order."""
    body = html.split(f'<table id="{table}"', 1)[1].split("</table>", 1)[0]
    return re.findall(rf'<tr[^>]* {attribute}="([^"]+)"', body)


def svg(html: str, label: str) -> str:
    """The SVG chart whose aria-label is ``label``."""
    return html.split(f'aria-label="{label}"', 1)[1].split("</svg>", 1)[0]
