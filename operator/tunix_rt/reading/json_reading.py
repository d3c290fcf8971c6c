"""JSON read within :class:`Limits`: the files and store objects the project writes
(trial records, summaries, sessions.json, run manifests, evidence documents)."""

from __future__ import annotations

import json
from typing import Any

from tunix_rt.reading.limits import RECORD, Limits, ReadError, too_big


def depth_over(data: Any, limit: int) -> bool:
    """Whether ``data`` nests deeper than ``limit`` (iterative: no recursion to exhaust)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            return True
        stack += [(child, depth + 1) for child in children if isinstance(child, dict | list)]
    return False


def load_json(raw: bytes | str, source: str, limits: Limits = RECORD) -> Any:
    """The JSON document in ``raw``; a :class:`ReadError` when over the size or depth
    limits or not JSON (the parser's position, never the content)."""
    size = len(raw.encode() if isinstance(raw, str) else raw)
    if size > limits.max_bytes:
        raise ReadError(source, too_big(size, limits))
    try:
        data = json.loads(raw)
    except RecursionError:
        raise ReadError(source, f"nested deeper than {limits.max_depth} levels") from None
    except UnicodeDecodeError as exc:
        raise ReadError(source, f"not UTF-8 text (byte {exc.start})") from None
    except json.JSONDecodeError as exc:  # its message holds the position only
        raise ReadError(source, _not_json(exc, size)) from None
    except ValueError as exc:
        raise ReadError(source, f"not JSON ({exc})") from None
    if depth_over(data, limits.max_depth):
        raise ReadError(source, f"nested deeper than {limits.max_depth} levels")
    return data


def _not_json(exc: json.JSONDecodeError, size: int) -> str:
    """Why a document is not JSON, telling a file cut short (an interrupted write) from
    one that is malformed."""
    if not exc.doc.strip():
        return f"not JSON: empty ({size} bytes)"
    if exc.pos >= len(exc.doc.rstrip()) or exc.msg.startswith("Unterminated string"):
        return f"not JSON: cut short (the document ends mid-way, after {size} bytes)"
    return f"not JSON: malformed at line {exc.lineno} column {exc.colno} ({exc.msg})"
