"""Preemption-tolerant trials: a lost worker is a preemption, a trainer error a failure.

Tune retries a trial whose actor died (its process killed, its pod deleted, its node
lost) up to :data:`MAX_PREEMPTIONS` times (``FailureConfig``); the retried trial resumes
from its newest checkpoint. What tells the two apart is the trial's own record: the
trainable writes ``Failed`` before it re-raises a trainer error, so a trial that errored
with its record still ``Running`` lost its worker. The driver's monitor counts that as a
preemption (:func:`preempted_record`); a trainer error is not retried
(:func:`trainer_failed`: the retry raises at once, :class:`TrainerFailed`) and counts
toward ``maxFailedTrials`` as before. A sweep resumed after its driver was lost restarts
its trials without an error, so no preemption is counted for it.

Nothing here imports Ray at import time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from tunix_rt.api.trial import TrialResult, TrialState, accelerator_hours
from tunix_rt.tune.records import plain

MAX_PREEMPTIONS = 3
"""Lost workers a trial survives (Tune's ``max_failures``); one more fails the trial."""


class TrainerFailed(RuntimeError):
    """A retried trial whose trainer had failed: it fails again without training."""


def trainer_failed(record: TrialResult | None) -> bool:
    """Whether the trial's own record says its trainer failed (not its worker lost)."""
    return record is not None and record.state is TrialState.FAILED


def refuse_retry(record: TrialResult) -> TrainerFailed:
    """The error a retried trial raises when its trainer had failed."""
    last = (record.error or "failed").strip().splitlines()[-1][:300]
    return TrainerFailed(
        f"trial {record.trial_id} failed in its trainer ({last}); only a lost worker is "
        "retried, fix the trainer error and run the sweep with --fresh"
    )


def lost_worker(exc: BaseException) -> bool:
    """Whether a multi-host trial's ``JaxTrainer.fit()`` failed because workers were lost
    (their actors died: process, pod or node gone; or Ray Train's PreemptionError), not
    because the trainer raised: then the trial is retried as a preemption."""
    from ray.exceptions import RayActorError
    from ray.train.v2.api.exceptions import PreemptionError, WorkerGroupError

    if isinstance(exc, PreemptionError):
        return True
    if isinstance(exc, WorkerGroupError):
        failures = list(exc.worker_failures.values())
        return bool(failures) and all(_actor_died(f, RayActorError) for f in failures)
    return isinstance(exc, RayActorError)


def _actor_died(error: BaseException, actor_error: type[BaseException]) -> bool:
    """The error, or one it was raised from, is Ray's 'actor died' (not user code)."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, actor_error):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def newest_step(directory: str | None) -> int | None:
    """The step of the newest checkpoint in ``directory`` (orbax: a folder a step)."""
    if not directory:
        return None
    try:
        names = os.listdir(directory)
    except OSError:
        return None
    steps = [int(n) for n in names if n.isdigit()]
    return max(steps) if steps else None


def preempted_record(
    record: TrialResult,
    now: datetime,
    accelerators: float,
    last_result: Mapping[str, Any] | None = None,
    hours_now: float | None = None,
) -> TrialResult:
    """The record of a trial whose worker was lost: one more preemption, the steps and
    accelerator-hours since its newest checkpoint counted as lost, still Running (it
    resumes from that checkpoint). ``last_result``: Tune's last report of the trial (it
    may be newer than the record); ``hours_now``: the driver's count of its hours."""
    reported = plain((last_result or {}).get("step", 0))
    reached = int(reported) if isinstance(reported, int | float) else 0
    step = max(record.steps, reached, record.checkpoint_step or 0)
    since = record.checkpointed_at or record.started_at or now
    lost_hours = accelerator_hours(accelerators, (now - since).total_seconds())
    return record.model_copy(
        update={
            "state": TrialState.RUNNING,
            "steps": step,
            "preemptions": record.preemptions + 1,
            "lost_steps": record.lost_steps + max(0, step - (record.checkpoint_step or 0)),
            "lost_accelerator_hours": record.lost_accelerator_hours + lost_hours,
            "accelerator_hours": max(record.accelerator_hours, hours_now or 0.0),
        }
    )


def checkpoint_seen(record: TrialResult, directory: str | None, now: datetime) -> TrialResult:
    """``record`` with the newest checkpoint in ``directory``, when it is a new one."""
    step = newest_step(directory)
    if step is None or step == record.checkpoint_step:
        return record
    return record.model_copy(update={"checkpoint_step": step, "checkpointed_at": now})
