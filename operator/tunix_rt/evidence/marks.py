"""Charts of many trials at once, as inline SVG: a scatter plot (the objective against one
parameter) and parallel coordinates (every parameter and the objective of each trial).

Each trial is a :class:`Mark` (its values by axis name); an axis is numeric (linear or
log) or categorical (text, booleans, lists), as its values are. Same conventions as
:mod:`~tunix_rt.evidence.charts`: escaped text, a ``<title>`` per chart and per mark, links
only when a mark has an ``href`` (the web view's trial pages).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tunix_rt.evidence.charts import (
    BEST_COLOR,
    COLORS,
    Scale,
    chart_open,
    heading,
    linked,
    tick_label,
)
from tunix_rt.evidence.markup import esc, fmt

Value = float | str
"""A parameter's value on an axis: a number, or a category (its text)."""


def axis_value(value: Any) -> Value | None:
    """A parameter value as an axis takes it: numbers as numbers, anything else (text,
    booleans, lists) as a category; None and non-finite numbers are not plotted."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True)


@dataclass(frozen=True)
class Axis:
    """One axis of a scatter or parallel-coordinates chart: a scale or categories."""

    name: str
    scale: Scale | None
    categories: tuple[str, ...] = ()

    @classmethod
    def fit(cls, name: str, values: Iterable[Value], *, log: bool = False, pad: float = 0) -> Axis:
        """Numbers get a scale (log when asked and possible; ``pad``: a margin, a fraction
        of the range); any text makes the axis categorical."""
        seen = list(values)
        if any(isinstance(v, str) for v in seen):
            return cls(name, None, tuple(sorted({str(v) for v in seen}, key=_natural)))
        return cls(name, Scale.fit((float(v) for v in seen), log=log, pad=pad))

    def unit(self, value: Value) -> float:
        if self.scale is None or isinstance(value, str):
            index = self.categories.index(str(value)) if str(value) in self.categories else 0
            return (index + 0.5) / max(len(self.categories), 1)
        return min(1.0, max(0.0, self.scale.unit(value)))

    def ticks(self) -> list[tuple[float, str]]:
        """(position in [0, 1], label) of each tick."""
        if self.scale is None:
            return [(self.unit(c), c if len(c) <= 12 else c[:11] + "…") for c in self.categories]
        return [(self.unit(t), tick_label(t, self.scale.log)) for t in self.scale.ticks()]

    @property
    def log(self) -> bool:
        return self.scale is not None and self.scale.log


def _natural(text: str) -> tuple[int, float, str]:
    try:
        return (0, float(text), text)
    except ValueError:
        return (1, 0.0, text)


@dataclass(frozen=True)
class Mark:
    """One trial on a scatter or parallel-coordinates chart."""

    label: str
    values: Mapping[str, Value | None]
    highlighted: bool = False
    href: str | None = None
    note: str = field(default="", compare=False)
    """Said after the values in the mark's tooltip (its state, say)."""

    def at(self, name: str) -> Value:
        """The value on axis ``name`` (0 when it has none: callers plot only marks with
        every value)."""
        value = self.values.get(name)
        return 0.0 if value is None else value

    def tooltip(self, names: Sequence[str]) -> str:
        shown = ", ".join(f"{n} {_say(self.values.get(n))}" for n in names)
        return f"{self.label}: {shown}" + (f" ({self.note})" if self.note else "")


def _say(value: Value | None) -> str:
    return value if isinstance(value, str) else fmt(value)


def scatter_chart(
    marks: Sequence[Mark],
    *,
    x: str,
    y: str,
    title: str,
    log_x: bool = False,
    width: int = 320,
    height: int = 240,
) -> str:
    """One circle per mark that has both ``x`` and ``y`` (category or number each; ``log_x``
    puts ``x`` on a log axis); highlighted marks last, in :data:`BEST_COLOR`."""
    shown = [
        (mark, vx, vy)
        for mark in marks
        if (vx := mark.values.get(x)) is not None and (vy := mark.values.get(y)) is not None
    ]
    if not shown:
        return f'<p class="muted">{esc(title)}: no scored trials.</p>'
    left, right, top, bottom = 52, 12, 28, 44
    plot_w, plot_h = width - left - right, height - top - bottom
    ax = Axis.fit(x, [vx for _, vx, _ in shown], log=log_x, pad=0.06)
    ay = Axis.fit(y, [vy for _, _, vy in shown], pad=0.08)
    parts = [chart_open(width, height, title, "scatter"), heading(left, title)]
    for pos, label in ay.ticks():
        py = top + (1 - pos) * plot_h
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{py:.1f}" y2="{py:.1f}" '
            f'stroke="#eef1f4"/><text x="{left - 6}" y="{py + 4:.1f}" font-size="11" '
            f'text-anchor="end" fill="#5f6b7a">{esc(label)}</text>'
        )
    for pos, label in ax.ticks():
        px = left + pos * plot_w
        parts.append(
            f'<text x="{px:.1f}" y="{top + plot_h + 16}" font-size="11" text-anchor="middle" '
            f'fill="#5f6b7a">{esc(label)}</text>'
        )
    scale_note = " (log)" if ax.log else ""
    parts.append(
        f'<line x1="{left}" x2="{left}" y1="{top}" y2="{top + plot_h}" stroke="#9aa4b1"/>'
        f'<line x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}" '
        f'stroke="#9aa4b1"/><text x="{left + plot_w / 2:.1f}" y="{height - 6}" font-size="11" '
        f'text-anchor="middle" fill="#5f6b7a">{esc(x + scale_note)}</text>'
    )
    ordered = sorted(enumerate(shown), key=lambda item: item[1][0].highlighted)
    for index, (mark, vx, vy) in ordered:
        jitter = ((index % 5) - 2) * 3.0 if ax.scale is None else 0.0
        px = left + ax.unit(vx) * plot_w + jitter
        py = top + (1 - ay.unit(vy)) * plot_h
        color, stroke = (BEST_COLOR, "#7a5300") if mark.highlighted else (COLORS[0], "#fff")
        tip = mark.tooltip([x, y])
        circle = (
            f'<circle class="pt" cx="{px:.1f}" cy="{py:.1f}" r="{6 if mark.highlighted else 4.5}" '
            f'fill="{color}" fill-opacity="0.85" stroke="{stroke}"><title>{esc(tip)}</title>'
            "</circle>"
        )
        parts.append(linked(circle, mark.href, tip))
    parts.append("</svg>")
    return "".join(parts)


def parallel_coordinates(
    marks: Sequence[Mark],
    axes: Sequence[tuple[str, bool]],
    *,
    title: str,
    width: int = 640,
    height: int = 280,
) -> str:
    """One polyline per mark across ``axes`` ((name, log) each, the objective last, say);
    a mark missing a value is left out (the caption counts them)."""
    names = [name for name, _ in axes]
    shown = [m for m in marks if all(m.values.get(n) is not None for n in names)]
    if len(names) < 2 or not shown:
        return f'<p class="muted">{esc(title)}: nothing to draw.</p>'
    fitted = [
        Axis.fit(name, [v for m in shown if (v := m.values.get(name)) is not None], log=log)
        for name, log in axes
    ]
    left, right, top, bottom = 48, 48, 44, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    gap = plot_w / (len(fitted) - 1)
    parts = [chart_open(width, height, title, "parcoords"), heading(8, title)]
    for i, axis in enumerate(fitted):
        ax_x = left + i * gap
        name = axis.name if len(axis.name) <= 16 else axis.name[:15] + "…"
        anchor = "start" if i == 0 else "end" if i == len(fitted) - 1 else "middle"
        label_x = 8 if i == 0 else width - 8 if i == len(fitted) - 1 else ax_x
        parts.append(
            f'<line x1="{ax_x:.1f}" x2="{ax_x:.1f}" y1="{top}" y2="{top + plot_h}" '
            f'stroke="#9aa4b1"/><text x="{label_x:.1f}" y="{top - 8}" font-size="11" '
            f'text-anchor="{anchor}" font-weight="600">{esc(name)}'
            f"{' (log)' if axis.log else ''}</text>"
        )
        for pos, label in axis.ticks():
            ty = top + (1 - pos) * plot_h
            parts.append(
                f'<text x="{ax_x + 4:.1f}" y="{ty + 4:.1f}" font-size="10" fill="#5f6b7a" '
                f'stroke="#fff" stroke-width="3" paint-order="stroke">{esc(label)}</text>'
            )
    for mark in sorted(shown, key=lambda m: m.highlighted):
        coords = " ".join(
            f"{left + i * gap:.1f},{top + (1 - a.unit(mark.at(a.name))) * plot_h:.1f}"
            for i, a in enumerate(fitted)
        )
        color, size = (BEST_COLOR, 3) if mark.highlighted else (COLORS[0], 1.5)
        tip = mark.tooltip(names)
        line = (
            f'<polyline class="line" fill="none" stroke="{color}" stroke-width="{size}" '
            f'stroke-opacity="{1 if mark.highlighted else 0.55}" points="{coords}">'
            f"<title>{esc(tip)}</title></polyline>"
        )
        parts.append(linked(line, mark.href, tip))
    left_out = len(marks) - len(shown)
    if left_out:
        parts.append(
            f'<text x="{width - 8}" y="{height - 8}" font-size="10" text-anchor="end" '
            f'fill="#5f6b7a">{left_out} trial(s) without every value left out</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
