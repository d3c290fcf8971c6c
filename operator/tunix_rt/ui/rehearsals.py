"""Rehearsals as the web view reads them from ``<ns>/rehearsals/<name>/`` (the store
layout's :class:`~tunix_rt.contract.layout.RehearsalLayout`): the score and evidence
(eval_summary.json, run_manifest.json), failed attempts (``failed/<stamp>/failure.json``),
the bundle and whether it verifies, and the first eval rows with their traces.

A rehearsal's folder appears when its evidence is uploaded, at the end: one without
eval_summary.json but with failed attempts Failed; a running one is not in the store
yet (the live phase from the API lists it).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from tunix_rt.api.trial import accelerator_hours
from tunix_rt.contract.file_names import (
    EVAL_ROWS_JSONL,
    EVAL_SUMMARY_JSON,
    FAILED_DIR,
    FAILURE_JSON,
    REHEARSALS_DIR,
    RUN_MANIFEST_JSON,
    SUBMISSION_DIR,
)
from tunix_rt.contract.layout import RehearsalLayout
from tunix_rt.evidence.failure import RehearsalFailure
from tunix_rt.reading.limits import MIB
from tunix_rt.scoring import PRIMARY_SCORE
from tunix_rt.storage import StoreEntry
from tunix_rt.ui.catalog import Catalog
from tunix_rt.ui.models import (
    EvalRow,
    EvalSample,
    Failure,
    FileLink,
    RehearsalView,
    RunRow,
)

FAILURES_SHOWN = 10
SAMPLE_BYTES = MIB
"""The head of eval_rows.jsonl read for the sample (whole rows only)."""


def rehearsal_prefix(namespace: str) -> str:
    return f"{namespace}/{REHEARSALS_DIR}"


def rehearsal_names(catalog: Catalog, namespace: str) -> list[str]:
    if REHEARSALS_DIR not in catalog.folders(namespace):
        return []
    return catalog.folders(rehearsal_prefix(namespace))


def rehearsal_rows(catalog: Catalog, namespace: str) -> list[RunRow]:
    rows = catalog.map(
        lambda n: rehearsal_row(catalog, namespace, n), rehearsal_names(catalog, namespace)
    )
    return [r for r in rows if r is not None]


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def rehearsal_hours(manifest: dict[str, Any]) -> float | None:
    """A rehearsal's accelerator-hours from its run manifest, counted as a sweep counts a
    trial's (``SweepSpec.accelerators_per_trial``): its GPUs or TPU chips for its wall
    time, and a CPU-only run as one device however many JAX devices it split the CPU into."""
    wall = _number(manifest.get("wall_seconds"))
    devices = manifest.get("devices")
    if wall is None or not isinstance(devices, list) or not devices:
        return None
    held = 1 if all("cpu" in str(d).lower() for d in devices) else len(devices)
    return accelerator_hours(held, wall)


def rehearsal_row(
    catalog: Catalog, namespace: str, name: str, problems: list[str] | None = None
) -> RunRow | None:
    """The list's row of a rehearsal (None: nothing of it in the store)."""
    layout = RehearsalLayout.of(namespace, name)
    entries = catalog.store.entries(layout.prefix)
    if not entries:
        return None
    found: list[str] = [] if problems is None else problems
    summary = catalog.json(layout.eval_summary_key, entries.get(EVAL_SUMMARY_JSON), found)
    manifest = catalog.json(layout.manifest_key, entries.get(RUN_MANIFEST_JSON), found)
    failures = [] if summary else _failures(catalog, layout, limit=1)
    phase, started, ended, message = "Unknown", None, None, None
    if summary:
        phase = "Succeeded"
        started, ended = _when(manifest.get("start_time")), _when(manifest.get("end_time"))
    elif failures:
        phase, ended = "Failed", failures[0].ended_at
        message = f"{failures[0].reason}: {failures[0].message}"
    return RunRow(
        kind="Rehearsal",
        namespace=namespace,
        name=name,
        phase=phase,
        score=_number(summary.get(PRIMARY_SCORE)),
        accelerator_hours=rehearsal_hours(manifest) if summary else None,
        started_at=started,
        ended_at=ended,
        message=message,
    )


def _when(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


def _failures(catalog: Catalog, layout: RehearsalLayout, limit: int) -> list[Failure]:
    """The newest failed attempts (their failure.json), newest first."""
    base = layout.failed_prefix
    folders = sorted(catalog.folders(base), reverse=True)[:limit]
    out = []
    for folder in folders:
        key = f"{base}/{folder}/{FAILURE_JSON}"
        entries = catalog.store.entries(f"{base}/{folder}")
        failure = catalog.model(key, entries.get(FAILURE_JSON), RehearsalFailure, [])
        if failure is not None:
            out.append(
                Failure(
                    folder=f"{FAILED_DIR}/{folder}",
                    reason=failure.reason,
                    message=failure.message,
                    ended_at=failure.end_time,
                )
            )
    return out


def rehearsal_view(
    catalog: Catalog, namespace: str, name: str, sample_rows: int, trace_chars: int
) -> RehearsalView | None:
    """A rehearsal's page (None: nothing of it in the store)."""
    problems: list[str] = []
    row = rehearsal_row(catalog, namespace, name, problems)
    if row is None:
        return None
    layout = RehearsalLayout.of(namespace, name)
    entries = catalog.store.entries(layout.prefix)
    files = [FileLink(path=n, size=e.size) for n, e in sorted(entries.items()) if not e.folder]
    bundle, checked = catalog.bundle(layout.prefix, SUBMISSION_DIR)
    view = RehearsalView(
        row=row,
        manifest=catalog.json(layout.manifest_key, entries.get(RUN_MANIFEST_JSON), []),
        summary=catalog.json(layout.eval_summary_key, entries.get(EVAL_SUMMARY_JSON), []),
        files=files,
        bundle=bundle,
        verification=checked,
        failures=_failures(catalog, layout, FAILURES_SHOWN),
        problems=problems,
    )
    if EVAL_ROWS_JSONL in entries and sample_rows:
        view.sample = eval_sample(
            catalog, layout, entries[EVAL_ROWS_JSONL], view.summary, sample_rows, trace_chars
        )
    return view


def eval_sample(
    catalog: Catalog,
    layout: RehearsalLayout,
    entry: StoreEntry,
    summary: dict[str, Any],
    limit: int,
    trace_chars: int,
) -> EvalSample:
    """The first ``limit`` rows of eval_rows.jsonl (its head only is read)."""
    name = layout.prefix.rsplit("/", 1)[-1]
    key = layout.key(EVAL_ROWS_JSONL)

    def load() -> list[dict[str, Any]]:
        head = catalog.store.read_range(key, 0, SAMPLE_BYTES)
        lines = head.split(b"\n")
        if len(head) >= SAMPLE_BYTES:
            lines = lines[:-1]  # the last one may be cut
        rows = []
        for line in lines[:limit]:
            try:
                data = json.loads(line)
            except ValueError:
                continue
            if isinstance(data, dict):
                rows.append(data)
        return rows

    rows = catalog.cache.get(f"sample{limit}", key, entry.stamp, load)
    counts = summary.get("rows")
    total = counts.get("eval_rows") if isinstance(counts, dict) else None
    return EvalSample(
        source=name,
        href=f"/rehearsals/{layout.prefix.split('/', 1)[0]}/{name}",
        rows=[eval_row(r, trace_chars) for r in rows],
        total=total if isinstance(total, int) else None,
    )


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def eval_row(data: dict[str, Any], trace_chars: int) -> EvalRow:
    """One row of eval_rows.jsonl as the page shows it (the trace clipped)."""
    output = _text(data.get("output"))
    correct = data.get("answer_correctness")
    return EvalRow(
        index=_int(data.get("index")),
        prompt=_text(data.get("prompt")),
        expected=_text(data.get("expected_answer")),
        answer=_text(data.get("answer")),
        output=output[:trace_chars],
        clipped=len(output) > trace_chars,
        correct=None if correct is None else bool(correct),
        format_valid=data.get("format_valid")
        if isinstance(data.get("format_valid"), bool)
        else None,
        hit_cap=data.get("hit_cap") if isinstance(data.get("hit_cap"), bool) else None,
    )


def promoted_from(catalog: Catalog, namespace: str, sweep: str) -> dict[str, list[str]]:
    """The rehearsals of ``namespace`` promoted from ``sweep``, by trial id (their
    manifests' ``source``)."""
    out: dict[str, list[str]] = {}
    for name in rehearsal_names(catalog, namespace):
        layout = RehearsalLayout.of(namespace, name)
        entries = catalog.store.entries(layout.prefix)
        manifest = catalog.json(layout.manifest_key, entries.get(RUN_MANIFEST_JSON), [])
        source = manifest.get("source")
        if isinstance(source, dict) and source.get("sweep") == sweep and source.get("trial"):
            out.setdefault(str(source["trial"]), []).append(name)
    return out


def trial_sample(
    catalog: Catalog, namespace: str, rehearsals: list[str], limit: int, trace_chars: int
) -> EvalSample | None:
    """Eval rows for a trial: trials keep none, so the rows of a rehearsal promoted from
    it (the first with eval_rows.jsonl)."""
    for name in rehearsals:
        layout = RehearsalLayout.of(namespace, name)
        entries = catalog.store.entries(layout.prefix)
        if EVAL_ROWS_JSONL in entries:
            summary = catalog.json(layout.eval_summary_key, entries.get(EVAL_SUMMARY_JSON), [])
            return eval_sample(
                catalog, layout, entries[EVAL_ROWS_JSONL], summary, limit, trace_chars
            )
    return None
