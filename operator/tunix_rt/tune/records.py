"""Trial records: built by the trial (start, eval points, end) and by the driver's
callback (stopped by the scheduler, failed). Where they live in the store, and how they
are read and written, is the run contract's (:mod:`tunix_rt.contract.layout`).

Nothing here imports Ray; the Ray callback lives in ``hooks.py``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from tunix_rt.api.trial import FINISHED_STATES, TrialResult, TrialState
from tunix_rt.scoring import PRIMARY_SCORE

# Keys Ray Tune adds to every result; not the trial's own metrics.
TUNE_KEYS = frozenset(
    {
        "training_iteration",
        "time_total_s",
        "time_this_iter_s",
        "time_since_restore",
        "iterations_since_restore",
        "timesteps_total",
        "episodes_total",
        "timesteps_since_restore",
        "timestamp",
        "date",
        "done",
        "trial_id",
        "experiment_id",
        "experiment_tag",
        "pid",
        "hostname",
        "node_ip",
        "config",
        "should_checkpoint",
        "checkpoint_dir_name",
        "warmup_time",
    }
)


HOURS_KEY = "accelerator_hours"
"""What every trial report to Tune also carries: the trial's accelerator-hours so far (its
record's), so that the driver's budget counts what the records say."""

CURVE_LIMIT = 10_000
"""Reports kept in a record's curve (the newest); a trial reports every logEvery steps."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def plain(value: Any) -> Any:
    """numpy scalars (what Tune samples) -> Python scalars, for JSON and pydantic."""
    item = getattr(value, "item", None)
    if callable(item):
        return item()
    return value


def numeric_metrics(result: Mapping[str, Any]) -> dict[str, float]:
    """The finite numeric metrics of a report (Tune bookkeeping and config left out)."""
    out: dict[str, float] = {}
    for key, value in result.items():
        if key in TUNE_KEYS or key == HOURS_KEY or key.startswith("config/"):
            continue
        value = plain(value)
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if math.isfinite(value):
            out[key] = float(value)
    return out


def finished(record: TrialResult | None) -> bool:
    return record is not None and record.state in FINISHED_STATES


def stopped_record(
    base: TrialResult, last_result: Mapping[str, Any], *, reason: str | None = None
) -> TrialResult:
    """A trial ended by the scheduler, a stopper or the sweep: its last report counts, in
    its metrics and on its curve (a report the trial had not yet written when it was
    stopped, often the rung's one, is not lost)."""
    reported = numeric_metrics(last_result)
    metrics = reported or dict(base.metrics)
    score = metrics.get(PRIMARY_SCORE, base.primary_score)
    steps = int(metrics.get("step", base.steps))
    curve = extend_curve(base.curve, reported) if "step" in reported else base.curve
    return base.model_copy(
        update={
            "state": TrialState.STOPPED,
            "curve": curve,
            "metrics": metrics,
            "primary_score": score,
            "steps": steps,
            "wall_seconds": float(plain(last_result.get("time_total_s", base.wall_seconds))),
            "finished_at": utcnow(),
            "error": reason,
        }
    )


def failed_record(base: TrialResult, error: str) -> TrialResult:
    return base.model_copy(
        update={"state": TrialState.FAILED, "error": error[-4000:], "finished_at": utcnow()}
    )


def extend_curve(
    curve: list[dict[str, float]], point: Mapping[str, float]
) -> list[dict[str, float]]:
    """``curve`` with ``point`` added: one point a step, in step order. A report at the
    step of the last point adds to it (the final eval after the last train report); one
    at a step the curve already passed (a trial resumed from an earlier checkpoint
    repeats steps) replaces the points from that step on."""
    step = point.get("step")
    if step is None:
        return [*curve, dict(point)][-CURVE_LIMIT:]
    kept = [p for p in curve if p.get("step", -1.0) < step]
    same = [p for p in curve if p.get("step") == step]
    merged = {**same[-1], **point} if same and len(kept) + len(same) == len(curve) else point
    return [*kept, dict(merged)][-CURVE_LIMIT:]
