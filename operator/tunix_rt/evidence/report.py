"""report.html: one self-contained page a person would rather read than the JSON.

The config, the score, the learning curve and sample traces; for a promoted run also the
sweep's trial table and a primary_score-per-trial plot. Plots are inline SVG; there is no
JavaScript and nothing is fetched from anywhere. Every piece of text is HTML-escaped.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from tunix_rt.scoring import PRIMARY_SCORE

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

_COLORS = ("#1a73e8", "#e8710a", "#188038", "#9334e6")


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def _fmt(value: Any, digits: int = 4) -> str:
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


def line_chart(
    series: Mapping[str, Sequence[tuple[float, float]]],
    *,
    title: str,
    x_label: str = "step",
    width: int = 640,
    height: int = 260,
) -> str:
    """An inline SVG line chart of one or more (x, y) series sharing the axes."""
    points = [(x, y) for values in series.values() for x, y in values if math.isfinite(y)]
    if not points:
        return f'<p class="muted">{_e(title)}: no data.</p>'
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

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{_e(title)}">',
        f'<text x="{left}" y="18" font-size="13" font-weight="600">{_e(title)}</text>',
    ]
    for tick in _ticks(y0, y1):
        y = sy(tick)
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eef1f4"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end" '
            f'fill="#5f6b7a">{_e(_fmt(tick, 3))}</text>'
        )
    for tick in _ticks(x0, x1):
        x = sx(tick)
        parts.append(
            f'<text x="{x:.1f}" y="{height - bottom + 16}" font-size="11" text-anchor="middle" '
            f'fill="#5f6b7a">{_e(_fmt(tick, 2))}</text>'
        )
    parts.append(
        f'<line x1="{left}" x2="{left}" y1="{top}" y2="{top + plot_h}" stroke="#9aa4b1"/>'
        f'<line x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}" '
        f'stroke="#9aa4b1"/>'
        f'<text x="{left + plot_w / 2:.1f}" y="{height - 6}" font-size="11" '
        f'text-anchor="middle" fill="#5f6b7a">{_e(x_label)}</text>'
    )
    legend_x = left + 8
    for index, (name, values) in enumerate(series.items()):
        color = _COLORS[index % len(_COLORS)]
        clean = sorted((x, y) for x, y in values if math.isfinite(y))
        if not clean:
            continue
        coords = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in clean)
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{coords}"/>')
        if len(clean) <= 40:
            parts.extend(
                f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.5" fill="{color}"/>'
                for x, y in clean
            )
        if len(series) > 1:
            parts.append(
                f'<rect x="{legend_x}" y="{top + 4}" width="10" height="10" fill="{color}"/>'
                f'<text x="{legend_x + 14}" y="{top + 13}" font-size="11">{_e(name)}</text>'
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
        return f'<p class="muted">{_e(title)}: no trials.</p>'
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

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{_e(title)}">',
        f'<text x="{left}" y="18" font-size="13" font-weight="600">{_e(title)}</text>',
    ]
    for tick in (y_max * i / 4 for i in range(5)):
        y = sy(tick)
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eef1f4"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end" '
            f'fill="#5f6b7a">{_e(_fmt(tick, 4))}</text>'
        )
    for index, (label, value, highlighted) in enumerate(bars):
        cx = left + slot * (index + 0.5)
        color = "#f9ab00" if highlighted else "#1a73e8"
        if value is not None and math.isfinite(value):
            y = sy(value)
            parts.append(
                f'<rect x="{cx - bar_w / 2:.1f}" y="{y:.1f}" width="{bar_w:.1f}" '
                f'height="{top + plot_h - y:.1f}" fill="{color}"><title>{_e(label)}: '
                f"{_e(_fmt(value))}</title></rect>"
                f'<text x="{cx:.1f}" y="{y - 3:.1f}" font-size="10" text-anchor="middle" '
                f'fill="#3c4550">{_e(_fmt(value, 3))}</text>'
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
            f"{_e(short)}</text>"
        )
    if reference is not None and math.isfinite(reference[1]):
        y = sy(reference[1])
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="#188038" stroke-width="1.5" stroke-dasharray="6 4"/>'
            f'<text x="{width - right - 4}" y="{y - 4:.1f}" font-size="11" text-anchor="end" '
            f'fill="#188038" stroke="#fff" stroke-width="3" paint-order="stroke">'
            f"{_e(reference[0])} {_e(_fmt(reference[1]))}</text>"
        )
    parts.append(
        f'<line x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}" '
        f'stroke="#9aa4b1"/></svg>'
    )
    return "".join(parts)


def _flatten(obj: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(obj, Mapping):
        out: list[tuple[str, Any]] = []
        for key in sorted(obj):
            out.extend(_flatten(obj[key], f"{prefix}.{key}" if prefix else str(key)))
        return out
    return [(prefix, obj)]


def _cell(value: Any) -> str:
    if isinstance(value, list | dict):
        return _e(json.dumps(value, sort_keys=True))
    return _e(_fmt(value))


def _kv_table(rows: Sequence[tuple[str, Any]]) -> str:
    body = "".join(f"<tr><th>{_e(k)}</th><td>{_cell(v)}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


_CURVE_PRIORITY = (PRIMARY_SCORE, "format_valid_rate", "learning_rate", "lr")
REWARD_PREFIX = "reward"
"""History metrics plotted together as the reward curves (GRPO reports ``reward_mean``
and ``reward_<fn>`` per reward function)."""
_CURVE_SKIP = ("seconds", "per_second", "eval_rows", "step")


def _curve_series(history: Sequence[Mapping[str, Any]]) -> list[tuple[str, dict[str, list[Any]]]]:
    """Charts to draw from the history: the loss series together, then primary_score,
    format_valid_rate and the learning rate; any series with fewer than 2 points is left
    out (a final-eval-only metric is in the metrics table, not a curve)."""
    points: dict[str, list[tuple[float, float]]] = {}
    for index, point in enumerate(history):
        step = point.get("step", index)
        if not isinstance(step, int | float) or isinstance(step, bool):
            continue
        for key, value in point.items():
            if key == "step" or isinstance(value, bool) or not isinstance(value, int | float):
                continue
            if math.isfinite(value):
                points.setdefault(key, []).append((float(step), float(value)))
    usable = {k: v for k, v in points.items() if len(v) >= 2}
    charts: list[tuple[str, dict[str, list[Any]]]] = []
    loss = {k: usable[k] for k in sorted(usable) if "loss" in k}
    if loss:
        charts.append(("loss", loss))
    reward = {k: usable[k] for k in sorted(usable) if k.startswith(REWARD_PREFIX)}
    if reward:  # GRPO: reward_mean and one reward_<fn> per reward function
        charts.append(("reward", reward))
    for key in _CURVE_PRIORITY:
        if key in usable:
            charts.append((key, {key: usable[key]}))
    if not charts:  # an unfamiliar history: show what there is, timings aside
        for key in sorted(usable)[:4]:
            if not any(part in key for part in _CURVE_SKIP):
                charts.append((key, {key: usable[key]}))
    return charts


def _trial_section(sweep: Mapping[str, Any], own_score: float | None) -> str:
    trials = [t for t in sweep.get("trials") or [] if isinstance(t, Mapping)]
    best = sweep.get("best_trial_id") or sweep.get("bestTrialId")

    def score(t: Mapping[str, Any]) -> float | None:
        value = t.get(PRIMARY_SCORE, t.get("primaryScore"))
        return float(value) if isinstance(value, int | float) else None

    def tid(t: Mapping[str, Any]) -> str:
        return str(t.get("trial_id", t.get("trialId", "?")))

    by_id = sorted(trials, key=tid)
    chart = bar_chart(
        [(tid(t), score(t), tid(t) == best) for t in by_id],
        title=f"primary_score per trial — sweep {sweep.get('sweep', '?')} (best in orange)",
        reference=("rehearsal", own_score) if own_score is not None else None,
    )
    ranked = sorted(by_id, key=lambda t: (score(t) is None, -(score(t) or 0.0), tid(t)))
    rows = []
    for rank, trial in enumerate(ranked, start=1):
        params = trial.get("params") or {}
        rows.append(
            f'<tr class="{"best" if tid(trial) == best else ""}"><td class="num">{rank}</td>'
            f"<td><code>{_e(tid(trial))}</code></td><td>{_e(trial.get('state', ''))}</td>"
            f'<td class="num">{_e(_fmt(score(trial)))}</td>'
            f'<td class="num">{_e(_fmt(trial.get("steps")))}</td>'
            f"<td><code>{_e(json.dumps(params, sort_keys=True))}</code></td></tr>"
        )
    table = (
        "<table><tr><th>#</th><th>trial</th><th>state</th><th>primary_score</th>"
        f"<th>steps</th><th>params</th></tr>{''.join(rows)}</table>"
    )
    smoke = _e(_fmt(sweep.get(PRIMARY_SCORE, sweep.get("primaryScore"))))
    return (
        f"<h2>Sweep {_e(sweep.get('sweep', ''))}: {len(trials)} trials "
        f"(best <code>{_e(best)}</code>, smoke primary_score {smoke})"
        f"</h2>{chart}{table}"
    )


def _rows_section(rows: Sequence[Mapping[str, Any]], limit: int) -> str:
    if not rows:
        return ""
    shown = rows[:limit]
    body = []
    for row in shown:
        correct = row.get("answer_correctness")
        mark = '<span class="ok">✓</span>' if correct else '<span class="bad">✗</span>'
        trace = str(row.get("output") or "")
        if len(trace) > 600:
            trace = trace[:600] + "…"
        body.append(
            f'<tr><td class="num">{_e(row.get("index"))}</td><td>{_e(row.get("prompt"))}</td>'
            f"<td><code>{_e(row.get('expected_answer'))}</code></td>"
            f"<td><code>{_e(row.get('answer'))}</code> {mark}</td>"
            f"<td><pre>{_e(trace)}</pre></td></tr>"
        )
    return (
        f"<h2>Sample traces (first {len(shown)} of {len(rows)} eval rows)</h2>"
        "<table><tr><th>#</th><th>prompt</th><th>expected</th><th>answer</th>"
        f"<th>model output (trace)</th></tr>{''.join(body)}</table>"
    )


def render_report(
    *,
    manifest: Mapping[str, Any],
    summary: Mapping[str, Any],
    rows: Sequence[Mapping[str, Any]] = (),
    sweep: Mapping[str, Any] | None = None,
    sample_rows: int = 12,
) -> str:
    """The whole page as a string (deterministic for the same inputs)."""
    score = summary.get(PRIMARY_SCORE)
    counts = summary.get("rows") or {}
    source = manifest.get("source") or None
    title = f"tunix-rt rehearsal {manifest.get('run_name', '')}"
    provenance = (
        f"promoted from sweep <code>{_e(source.get('sweep'))}</code>, trial "
        f"<code>{_e(source.get('trial'))}</code>"
        if isinstance(source, Mapping) and source.get("sweep")
        else "inline config"
    )
    head = (
        f"<h1>{_e(title)}</h1><p class='muted'>{provenance} · commit "
        f"<code>{_e(manifest.get('commit_sha'))}</code>"
        f"{' (dirty tree)' if manifest.get('commit_dirty') else ''} · "
        f"{_e(manifest.get('start_time'))} → {_e(manifest.get('end_time'))}</p>"
        '<div class="score">'
        f"<div>primary_score<b>{_e(_fmt(score))}</b></div>"
        f"<div>correct rows<b>{_e(counts.get('correct_rows', '—'))} / "
        f"{_e(counts.get('scored_rows', '—'))}</b></div>"
        f"<div>format valid<b>{_e(counts.get('format_valid_rows', '—'))}</b></div>"
        f"<div>capped traces<b>{_e(counts.get('capped_rows', '—'))}</b></div>"
        f"<div>steps<b>{_e(_fmt(manifest.get('steps')))}</b></div>"
        f"<div>wall<b>{_e(_fmt(manifest.get('wall_seconds'), 1))} s</b></div>"
        "</div>"
    )
    curves = _curve_series(summary.get("learning_curve") or [])
    curve_html = "".join(line_chart(series, title=name) for name, series in curves) or (
        '<p class="muted">No learning curve was recorded.</p>'
    )
    parts = [head, "<h2>Learning curve</h2>", curve_html]
    if sweep:
        parts.append(_trial_section(sweep, score if isinstance(score, int | float) else None))
    parts += [
        "<h2>Eval metrics</h2>",
        _kv_table(sorted((summary.get("metrics") or {}).items())),
        "<h2>Run</h2>",
        _kv_table(_run_facts(manifest)),
        "<h2>Config</h2>",
        _kv_table(_flatten(manifest.get("config") or {})),
        _versions_section(manifest),
        _rows_section(rows, sample_rows),
        _manifest_section(manifest),
    ]
    return _page(title, parts)


def render_sweep_report(
    *,
    manifest: Mapping[str, Any],
    summary: Mapping[str, Any],
    best_config: Mapping[str, Any] | None = None,
) -> str:
    """A finished sweep's page: verdict, trial table and plot, best config, the spec."""

    def get(key: str, camel: str) -> Any:
        return summary.get(key, summary.get(camel))

    trials = [t for t in summary.get("trials") or [] if isinstance(t, Mapping)]
    states: dict[str, int] = {}
    for trial in trials:
        states[str(trial.get("state", "?"))] = states.get(str(trial.get("state", "?")), 0) + 1
    title = f"tunix-rt sweep {manifest.get('run_name', '')}"
    phase = str(summary.get("phase", ""))
    verdict = "ok" if phase == "Succeeded" else "bad"
    head = (
        f"<h1>{_e(title)}</h1><p class='muted'>commit <code>{_e(manifest.get('commit_sha'))}"
        f"</code>{' (dirty tree)' if manifest.get('commit_dirty') else ''} · "
        f"{_e(manifest.get('start_time'))} → {_e(manifest.get('end_time'))}</p>"
        f'<p class="{verdict}">{_e(phase)}: {_e(summary.get("message") or "")}</p>'
        '<div class="score">'
        f"<div>best primary_score<b>{_e(_fmt(get('primary_score', 'primaryScore')))}</b></div>"
        f"<div>best trial<b>{_e(get('best_trial_id', 'bestTrialId') or '—')}</b></div>"
        f"<div>trials<b>{len(trials)} / {_e(get('trials_planned', 'trialsPlanned') or '—')}"
        "</b></div>"
        f"<div>wall<b>{_e(_fmt(manifest.get('wall_seconds'), 1))} s</b></div>"
        "</div>"
        f"<p class='muted'>trial states: "
        f"{_e(', '.join(f'{k} {v}' for k, v in sorted(states.items())) or 'none')}</p>"
    )
    best_params = get("best_params", "bestParams")
    parts = [head, _trial_section(summary, None)]
    if best_params:
        parts += ["<h2>Best params</h2>", _kv_table(sorted(best_params.items()))]
    if best_config:
        parts += [
            "<h2>Best trial's trainer config</h2>",
            "<p class='muted'>best_config.json; <code>tunix-rt promote</code> turns it into a "
            "Rehearsal manifest.</p>",
            _kv_table(_flatten(best_config)),
        ]
    parts += [
        "<h2>Run</h2>",
        _kv_table(_run_facts(manifest)),
        "<h2>Sweep spec</h2>",
        _kv_table(_flatten(manifest.get("config") or {})),
        _versions_section(manifest),
        _manifest_section(manifest),
    ]
    return _page(title, parts)


def _run_facts(manifest: Mapping[str, Any]) -> list[tuple[str, Any]]:
    dataset = manifest.get("dataset") or {}
    return [
        *_backend_facts(manifest),
        ("model_id", manifest.get("model_id")),
        ("dataset", f"{dataset.get('name')} (sha256 {dataset.get('sha256')})"),
        ("dataset rows", f"train {dataset.get('train_rows')}, eval {dataset.get('eval_rows')}"),
        ("seed", manifest.get("seed")),
        ("config_path", manifest.get("config_path")),
        ("config_sha256", manifest.get("config_sha256")),
        ("devices", ", ".join(str(d) for d in manifest.get("devices") or [])),
        ("image", manifest.get("image")),
        ("command", " ".join(str(a) for a in manifest.get("command") or [])),
    ]


def _backend_facts(manifest: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """The backend and where its model came from (manifests that record them)."""
    if "backend" not in manifest:
        return []
    facts: list[tuple[str, Any]] = [("backend", manifest.get("backend"))]
    source = manifest.get("model_source")
    if isinstance(source, Mapping):
        checkpoint = source.get("checkpoint")
        weights = (
            "random init (no checkpoint loaded)"
            if source.get("random_init")
            else f"{checkpoint} (sha256 {source.get('checkpoint_sha256') or 'not recorded'})"
        )
        facts += [("model", source.get("name")), ("weights", weights)]
        versions = source.get("versions") or {}
        if versions:
            facts.append(
                ("model libraries", ", ".join(f"{k} {v}" for k, v in sorted(versions.items())))
            )
    return facts


def _versions_section(manifest: Mapping[str, Any]) -> str:
    return "<h2>Versions</h2>\n" + _kv_table(sorted((manifest.get("versions") or {}).items()))


def _manifest_section(manifest: Mapping[str, Any]) -> str:
    return (
        "<h2>run_manifest.json</h2>\n<details><summary>show</summary><pre>"
        f"{_e(json.dumps(manifest, indent=2, sort_keys=True))}</pre></details>"
    )


def _page(title: str, parts: Sequence[str]) -> str:
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
            *parts,
            "</body></html>\n",
        ]
    )
