"""The plots of report.html and the web view (``tunix-rt ui``) as inline SVG: a line chart
(learning curves) and a bar chart (scores), plus what every chart shares (scales, ticks,
colours, the ``<svg>`` start tag). Charts of many trials at once (scatter, parallel
coordinates) are in :mod:`~tunix_rt.evidence.marks`; which charts a sweep gets, in
:mod:`~tunix_rt.evidence.trial_charts`.

Pure functions from numbers to markup; no JavaScript, no external assets. Every text is
escaped, and every chart names itself twice (``aria-label`` and a ``<title>``) so that a
screen reader says what it shows. Marks may link somewhere (``href``: the web view's trial
pages, reachable with the keyboard); report.html passes none, so it holds no links.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from tunix_rt.evidence.markup import esc, fmt

COLORS = (
    "#1a73e8",
    "#e8710a",
    "#188038",
    "#9334e6",
    "#d01884",
    "#007b83",
    "#b06000",
    "#5f6368",
    "#a142f4",
    "#12b5cb",
)
BEST_COLOR = "#f9ab00"
"""The best trial's marks (the bar chart's highlighted bar too)."""
_NOT_BEST = tuple(c for c in COLORS if c != "#e8710a")
"""The colours of the other series beside a highlighted one (none that looks like it)."""
LEGEND_MAX = 8
"""More series than this get no legend (it would not fit): each line's ``<title>`` says
whose it is, and the page's table lists them."""


def chart_open(width: int, height: int, title: str, kind: str) -> str:
    """The ``<svg>`` start tag, its ``<title>`` and the visible heading."""
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{esc(title)}" '
        f'class="chart {kind}"><title>{esc(title)}</title>'
    )


def heading(x: float, title: str) -> str:
    return f'<text x="{x}" y="18" font-size="13" font-weight="600">{esc(title)}</text>'


def linked(mark: str, href: str | None, label: str) -> str:
    """``mark`` inside a link (focusable, named) when there is somewhere to go."""
    if href is None:
        return mark
    return f'<a href="{esc(href)}" aria-label="{esc(label)}">{mark}</a>'


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    if high <= low:
        return [low]
    raw = (high - low) / max(count - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = min((m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw), default=raw)
    start = math.ceil(low / step) * step
    ticks: list[float] = []
    value = start
    while value <= high + step * 1e-9 and len(ticks) < 20:
        ticks.append(round(value, 12))
        value += step
    return ticks


def _log_ticks(low: float, high: float) -> list[float]:
    """1, 2 and 5 times the powers of ten in [low, high]; decades alone when that is enough."""
    first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
    inside = [
        m * 10.0**k
        for k in range(first, last + 1)
        for m in (1, 2, 5)
        if low * (1 - 1e-9) <= m * 10.0**k <= high * (1 + 1e-9)
    ]
    decades = [t for t in inside if math.isclose(math.log10(t) % 1, 0, abs_tol=1e-9)]
    if len(decades) >= 2:
        return decades
    return inside if len(inside) >= 2 else [low, high]


def tick_label(value: float, log: bool = False, digits: int = 3) -> str:
    """A tick as a person reads it (``1e-4`` on a log axis, ``0.25`` on a linear one)."""
    if log and value > 0 and not 1e-2 <= value < 1e4:
        mantissa, exponent = f"{value:.0e}".split("e")
        return f"{mantissa}e{int(exponent)}"
    return fmt(value, digits)


@dataclass(frozen=True)
class Scale:
    """A value range mapped onto [0, 1], linear or log10 (positive values only)."""

    low: float
    high: float
    log: bool = False

    @classmethod
    def fit(cls, values: Iterable[float], *, log: bool = False, pad: float = 0.0) -> Scale:
        """The range of the finite ``values`` (a log scale only when all are positive),
        widened when it is a single value, and by ``pad`` (a fraction) on both sides."""
        scale = cls._fit(values, log)
        if pad <= 0:
            return scale
        if scale.log:
            factor = (scale.high / scale.low) ** pad
            return cls(scale.low / factor, scale.high * factor, True)
        margin = (scale.high - scale.low) * pad
        return cls(scale.low - margin, scale.high + margin)

    @classmethod
    def _fit(cls, values: Iterable[float], log: bool) -> Scale:
        finite = [v for v in values if math.isfinite(v)]
        log = log and bool(finite) and min(finite) > 0
        if not finite:
            return cls(0.0, 1.0)
        low, high = min(finite), max(finite)
        if log:
            return cls(low / 2, high * 2, True) if high == low else cls(low, high, True)
        if high == low:
            pad = abs(low) * 0.1 or 1.0
            return cls(low - pad, high + pad)
        return cls(low, high)

    def unit(self, value: float) -> float:
        if self.log:
            lo, hi = math.log10(self.low), math.log10(self.high)
            return (math.log10(max(value, self.low * 1e-12)) - lo) / (hi - lo)
        return (value - self.low) / (self.high - self.low)

    def ticks(self) -> list[float]:
        return _log_ticks(self.low, self.high) if self.log else _ticks(self.low, self.high)


def line_chart(
    series: Mapping[str, Sequence[tuple[float, float]]],
    *,
    title: str,
    x_label: str = "step",
    width: int = 640,
    height: int = 260,
    highlight: str | None = None,
) -> str:
    """An inline SVG line chart of one or more (x, y) series sharing the axes; the
    ``highlight`` series (the best trial) is drawn last, thicker, in :data:`BEST_COLOR`."""
    points = [(x, y) for values in series.values() for x, y in values if math.isfinite(y)]
    if not points:
        return f'<p class="muted">{esc(title)}: no data.</p>'
    left, right, top, bottom = 60, 16, 28, 40
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    if y1 == y0:
        pad = abs(y0) * 0.1 or 1.0
        y0, y1 = y0 - pad, y1 + pad
    plot_w, plot_h = width - left - right, height - top - bottom

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * plot_w

    def sy(y: float) -> float:
        return top + (1 - (y - y0) / (y1 - y0)) * plot_h

    parts = [chart_open(width, height, title, "line"), heading(left, title)]
    for tick in _ticks(y0, y1):
        y = sy(tick)
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eef1f4"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end" '
            f'fill="#5f6b7a">{esc(fmt(tick, 3))}</text>'
        )
    for tick in _ticks(x0, x1):
        x = sx(tick)
        parts.append(
            f'<text x="{x:.1f}" y="{height - bottom + 16}" font-size="11" text-anchor="middle" '
            f'fill="#5f6b7a">{esc(fmt(tick, 2))}</text>'
        )
    parts.append(
        f'<line x1="{left}" x2="{left}" y1="{top}" y2="{top + plot_h}" stroke="#9aa4b1"/>'
        f'<line x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}" '
        f'stroke="#9aa4b1"/>'
        f'<text x="{left + plot_w / 2:.1f}" y="{height - 6}" font-size="11" '
        f'text-anchor="middle" fill="#5f6b7a">{esc(x_label)}</text>'
    )
    legend = 1 < len(series) <= LEGEND_MAX
    palette = COLORS if highlight is None else _NOT_BEST
    legend_x = left + 8
    ordered = sorted(enumerate(series.items()), key=lambda item: item[1][0] == highlight)
    for index, (name, values) in ordered:
        best = name == highlight
        color = BEST_COLOR if best else palette[index % len(palette)]
        clean = sorted((x, y) for x, y in values if math.isfinite(y))
        if not clean:
            continue
        coords = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in clean)
        mark = (
            f'<polyline class="series" fill="none" stroke="{color}" '
            f'stroke-width="{3 if best else 2}" points="{coords}"><title>{esc(name)}</title>'
            "</polyline>"
            if len(series) > 1
            else f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{coords}"/>'
        )
        parts.append(mark)
        if len(clean) <= 40:
            parts.extend(
                f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.5" fill="{color}"/>'
                for x, y in clean
            )
        if legend:
            parts.append(
                f'<rect x="{legend_x}" y="{top + 4}" width="10" height="10" fill="{color}"/>'
                f'<text x="{legend_x + 14}" y="{top + 13}" font-size="11">{esc(name)}</text>'
            )
            legend_x += 14 + 7 * len(name) + 16
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(
    bars: Sequence[tuple[str, float | None, bool]],
    *,
    title: str,
    reference: tuple[str, float] | None = None,
    width: int = 640,
    height: int = 260,
) -> str:
    """An inline SVG bar chart of scores in [0, 1]: (label, value, highlighted) per bar;
    the axis tops out at 1, or lower (0.5, 0.25, …) when every score is small.

    ``reference`` draws a dashed horizontal line (e.g. the rehearsal's own score).
    """
    if not bars:
        return f'<p class="muted">{esc(title)}: no trials.</p>'
    left, right, top, bottom = 48, 16, 28, 64
    plot_w, plot_h = width - left - right, height - top - bottom
    slot = plot_w / len(bars)
    bar_w = max(2.0, min(40.0, slot * 0.7))

    # Scores in [0, 1]; zoom the axis in when every score is small so the bars show.
    values = [v for _, v, _ in bars if v is not None and math.isfinite(v)]
    if reference is not None and math.isfinite(reference[1]):
        values.append(reference[1])
    peak = max(values, default=1.0) * 1.1
    y_max = next((c for c in (0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5) if c >= peak), 1.0)

    def sy(v: float) -> float:
        return top + (1 - max(0.0, min(y_max, v)) / y_max) * plot_h

    parts = [chart_open(width, height, title, "bar"), heading(left, title)]
    for tick in (y_max * i / 4 for i in range(5)):
        y = sy(tick)
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eef1f4"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end" '
            f'fill="#5f6b7a">{esc(fmt(tick, 4))}</text>'
        )
    for index, (label, value, highlighted) in enumerate(bars):
        cx = left + slot * (index + 0.5)
        color = BEST_COLOR if highlighted else COLORS[0]
        if value is not None and math.isfinite(value):
            y = sy(value)
            parts.append(
                f'<rect x="{cx - bar_w / 2:.1f}" y="{y:.1f}" width="{bar_w:.1f}" '
                f'height="{top + plot_h - y:.1f}" fill="{color}"><title>{esc(label)}: '
                f"{esc(fmt(value))}</title></rect>"
                f'<text x="{cx:.1f}" y="{y - 3:.1f}" font-size="10" text-anchor="middle" '
                f'fill="#3c4550">{esc(fmt(value, 3))}</text>'
            )
        else:
            parts.append(
                f'<text x="{cx:.1f}" y="{top + plot_h - 4}" font-size="10" '
                f'text-anchor="middle" fill="#b3261e">n/a</text>'
            )
        short = label if len(label) <= 14 else label[:13] + "…"
        parts.append(
            f'<text x="{cx:.1f}" y="{top + plot_h + 12}" font-size="10" text-anchor="end" '
            f'transform="rotate(-35 {cx:.1f} {top + plot_h + 12})" fill="#3c4550">'
            f"{esc(short)}</text>"
        )
    if reference is not None and math.isfinite(reference[1]):
        y = sy(reference[1])
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="#188038" stroke-width="1.5" stroke-dasharray="6 4"/>'
            f'<text x="{width - right - 4}" y="{y - 4:.1f}" font-size="11" text-anchor="end" '
            f'fill="#188038" stroke="#fff" stroke-width="3" paint-order="stroke">'
            f"{esc(reference[0])} {esc(fmt(reference[1]))}</text>"
        )
    parts.append(
        f'<line x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}" '
        f'stroke="#9aa4b1"/></svg>'
    )
    return "".join(parts)
