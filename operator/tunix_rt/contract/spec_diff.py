"""What changed between a sweep's stored spec and the one given again: the fields a
refused resume names (the driver's message, ``sweep run``'s hint), so that the reader
knows whether to undo an edit or start over."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from tunix_rt.api.sweep import SweepSpec

NOT_COMPARED = ("storage", "cluster")
"""Where a sweep runs, not what it runs: a resume elsewhere is the same sweep."""

_MISSING = object()


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a.b": 1}`` from ``{"a": {"b": 1}}``; lists are compared whole."""
    if isinstance(value, Mapping) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flat(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def _shown(value: Any, width: int = 40) -> str:
    if value is _MISSING:
        return "(unset)"
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= width else text[: width - 1] + "…"


def spec_changes(old: SweepSpec, new: SweepSpec) -> list[str]:
    """Each changed field as ``maxTrials: 3 -> 4`` (wire names, dotted), in name order;
    empty when the two run the same sweep."""
    before, after = old.to_wire(), new.to_wire()
    for key in NOT_COMPARED:
        before.pop(key, None)
        after.pop(key, None)
    flat_before, flat_after = _flat(before), _flat(after)
    changed = []
    for path in sorted(set(flat_before) | set(flat_after)):
        was, now = flat_before.get(path, _MISSING), flat_after.get(path, _MISSING)
        if was != now:
            changed.append(f"{path}: {_shown(was)} -> {_shown(now)}")
    return changed


def changes_text(changes: list[str], limit: int = 5) -> str:
    """``a: 1 -> 2; b: …`` (the first ``limit``, then how many more)."""
    text = "; ".join(changes[:limit])
    if len(changes) > limit:
        text += f"; and {len(changes) - limit} more"
    return text
