"""report.html: one self-contained page a person would rather read than the JSON.

The config, the score, the learning curve and sample traces; for a promoted run also the
sweep's trial table, a primary_score-per-trial plot, primary_score against each searched
parameter and every trial's learning curves (:mod:`~tunix_rt.evidence.trial_charts`, the
same charts the web view draws).
There is no JavaScript and nothing is fetched from anywhere; every piece of text is
HTML-escaped (:mod:`~tunix_rt.evidence.markup`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from tunix_rt.evidence.charts import bar_chart
from tunix_rt.evidence.markup import esc, flatten, fmt, kv_table, page
from tunix_rt.evidence.schedules import schedule_section
from tunix_rt.evidence.trial_charts import (
    REWARD_PREFIX,
    from_wire,
    history_charts,
    log_params,
    param_scatters,
    trial_curve_charts,
)
from tunix_rt.scoring import PRIMARY_SCORE

__all__ = ["REWARD_PREFIX", "render_report", "render_sweep_report"]


def _trial_section(
    sweep: Mapping[str, Any], own_score: float | None, space: Mapping[str, Any] | None = None
) -> str:
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
            f"<td><code>{esc(tid(trial))}</code></td><td>{esc(state_of(trial))}</td>"
            f'<td class="num">{esc(fmt(score(trial)))}</td>'
            f'<td class="num">{esc(fmt(trial.get("steps")))}</td>'
            f"<td><code>{esc(json.dumps(params, sort_keys=True))}</code></td></tr>"
        )
    table = (
        "<table><tr><th>#</th><th>trial</th><th>state</th><th>primary_score</th>"
        f"<th>steps</th><th>params</th></tr>{''.join(rows)}</table>"
    )
    smoke = esc(fmt(sweep.get(PRIMARY_SCORE, sweep.get("primaryScore"))))
    return (
        f"<h2>Sweep {esc(sweep.get('sweep', ''))}: {len(trials)} trials "
        f"(best <code>{esc(best)}</code>, smoke primary_score {smoke})"
        f"</h2>{chart}{table}{_trial_plots(trials, best, space)}"
    )


def _trial_plots(
    trials: Sequence[Mapping[str, Any]], best: Any, space: Mapping[str, Any] | None
) -> str:
    """primary_score against each searched parameter, and every trial's learning curves
    (the web view draws the same charts: :mod:`~tunix_rt.evidence.trial_charts`)."""
    plots = from_wire(trials, str(best) if best else None)
    scatters = param_scatters(plots, log=log_params(space, plots))
    curves = trial_curve_charts(plots)
    parts = []
    if scatters:
        parts += ["<h3>primary_score against each searched parameter</h3>", *scatters]
    if curves:
        parts += ["<h3>Learning curves of every trial (best in orange)</h3>", *curves]
    return "".join(parts)


def state_of(trial: Mapping[str, Any]) -> str:
    """A trial's state, or where it was measured when a warm start reused it."""
    origin = trial.get("reusedFrom") or trial.get("reused_from")
    if isinstance(origin, Mapping):
        return f"reused from sweep {origin.get('sweep', '?')} ({trial.get('state', '')})"
    return str(trial.get("state", ""))


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
            f'<tr><td class="num">{esc(row.get("index"))}</td><td>{esc(row.get("prompt"))}</td>'
            f"<td><code>{esc(row.get('expected_answer'))}</code></td>"
            f"<td><code>{esc(row.get('answer'))}</code> {mark}</td>"
            f"<td><pre>{esc(trace)}</pre></td></tr>"
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
        f"promoted from sweep <code>{esc(source.get('sweep'))}</code>, trial "
        f"<code>{esc(source.get('trial'))}</code>"
        if isinstance(source, Mapping) and source.get("sweep")
        else "inline config"
    )
    head = (
        f"<h1>{esc(title)}</h1><p class='muted'>{provenance} · commit "
        f"<code>{esc(manifest.get('commit_sha'))}</code>"
        f"{' (dirty tree)' if manifest.get('commit_dirty') else ''} · "
        f"{esc(manifest.get('start_time'))} → {esc(manifest.get('end_time'))}</p>"
        '<div class="score">'
        f"<div>primary_score<b>{esc(fmt(score))}</b></div>"
        f"<div>correct rows<b>{esc(counts.get('correct_rows', '—'))} / "
        f"{esc(counts.get('scored_rows', '—'))}</b></div>"
        f"<div>format valid<b>{esc(counts.get('format_valid_rows', '—'))}</b></div>"
        f"<div>capped traces<b>{esc(counts.get('capped_rows', '—'))}</b></div>"
        f"<div>steps<b>{esc(fmt(manifest.get('steps')))}</b></div>"
        f"<div>wall<b>{esc(fmt(manifest.get('wall_seconds'), 1))} s</b></div>"
        "</div>"
    )
    curve_html = "".join(history_charts(summary.get("learning_curve") or [])) or (
        '<p class="muted">No learning curve was recorded.</p>'
    )
    parts = [head, "<h2>Learning curve</h2>", curve_html]
    if sweep:
        parts.append(_trial_section(sweep, score if isinstance(score, int | float) else None))
    parts += [
        "<h2>Eval metrics</h2>",
        kv_table(sorted((summary.get("metrics") or {}).items())),
        "<h2>Run</h2>",
        kv_table(_run_facts(manifest)),
        "<h2>Config</h2>",
        kv_table(flatten(manifest.get("config") or {})),
        _versions_section(manifest),
        _rows_section(rows, sample_rows),
        _manifest_section(manifest),
    ]
    return page(title, parts)


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
        f"<h1>{esc(title)}</h1><p class='muted'>commit <code>{esc(manifest.get('commit_sha'))}"
        f"</code>{' (dirty tree)' if manifest.get('commit_dirty') else ''} · "
        f"{esc(manifest.get('start_time'))} → {esc(manifest.get('end_time'))}</p>"
        f'<p class="{verdict}">{esc(phase)}: {esc(summary.get("message") or "")}</p>'
        '<div class="score">'
        f"<div>best primary_score<b>{esc(fmt(get('primary_score', 'primaryScore')))}</b></div>"
        f"<div>best trial<b>{esc(get('best_trial_id', 'bestTrialId') or '—')}</b></div>"
        f"<div>trials<b>{len(trials)} / {esc(get('trials_planned', 'trialsPlanned') or '—')}"
        "</b></div>"
        f"<div>wall<b>{esc(fmt(manifest.get('wall_seconds'), 1))} s</b></div>"
        "</div>"
        f"<p class='muted'>trial states: "
        f"{esc(', '.join(f'{k} {v}' for k, v in sorted(states.items())) or 'none')}</p>"
        + _preemptions(
            get("preemptions", "preemptions"), get("lost_accelerator_hours", "lostAcceleratorHours")
        )
        + _damage(get("unreadable_trials", "unreadableTrials"))
    )
    best_params = get("best_params", "bestParams")
    spec = manifest.get("config") or {}
    space = spec.get("searchSpace", spec.get("search_space")) if isinstance(spec, Mapping) else None
    parts = [head, _trial_section(summary, None, space if isinstance(space, Mapping) else None)]
    parts.append(schedule_section(trials, get("best_trial_id", "bestTrialId")))
    if best_params:
        parts += ["<h2>Best params</h2>", kv_table(sorted(best_params.items()))]
    if best_config:
        parts += [
            "<h2>Best trial's trainer config</h2>",
            "<p class='muted'>best_config.json; <code>tunix-rt promote</code> turns it into a "
            "Rehearsal manifest.</p>",
            kv_table(flatten(best_config)),
        ]
    parts += [
        "<h2>Run</h2>",
        kv_table(_run_facts(manifest)),
        "<h2>Sweep spec</h2>",
        kv_table(flatten(manifest.get("config") or {})),
        _versions_section(manifest),
        _manifest_section(manifest),
    ]
    return page(title, parts)


def _preemptions(count: Any, lost_hours: Any) -> str:
    """Trials resumed after losing their worker: never failures, but work re-done."""
    if not count:
        return ""
    return (
        f"<p class='muted'>preemptions: {esc(count)} (trials resumed from their newest "
        f"checkpoint after losing their worker; {esc(fmt(lost_hours))} accelerator-hours "
        "re-done)</p>"
    )


def _damage(unreadable: Any) -> str:
    """The trial records the driver found but could not read, named (none: nothing)."""
    if not unreadable:
        return ""
    items = "".join(f"<li>{esc(str(line))}</li>" for line in unreadable)
    count = len(unreadable)
    return f"<p class='bad'>{count} trial record(s) unreadable, left out:</p><ul>{items}</ul>"


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
    return "<h2>Versions</h2>\n" + kv_table(sorted((manifest.get("versions") or {}).items()))


def _manifest_section(manifest: Mapping[str, Any]) -> str:
    return (
        "<h2>run_manifest.json</h2>\n<details><summary>show</summary><pre>"
        f"{esc(json.dumps(manifest, indent=2, sort_keys=True))}</pre></details>"
    )
