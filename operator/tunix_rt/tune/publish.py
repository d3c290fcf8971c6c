"""After Tune's run: how it ended, ``summary.json`` and the evidence bundle in the store."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ray

from tunix_rt.api.sweep import SweepSpec
from tunix_rt.api.trial import SweepResult, TrialResult
from tunix_rt.contract.best_trial import best_trial, ranked
from tunix_rt.contract.exits import exit_code_for
from tunix_rt.contract.numerics import numerics_record, trial_flags
from tunix_rt.contract.phases import SweepEnd, Verdict, goal_trial
from tunix_rt.evidence import SweepRunFacts, commit_info, publish_folder, write_sweep_evidence
from tunix_rt.evidence.sweep import wire_bytes
from tunix_rt.tune.budget import SweepLimits
from tunix_rt.tune.records import utcnow
from tunix_rt.tune.session import Session, SweepOutcome, SweepRun
from tunix_rt.tune.warm_search import WarmStart


def grid_trial_ids(grid: Any) -> list[str]:
    """The id of every trial in Tune's ResultGrid (restored ones included)."""
    ids = []
    for index in range(len(grid)):
        result = grid[index]
        trial_id = (result.metrics or {}).get("trial_id") or Path(str(result.path)).name
        ids.append(str(trial_id))
    return ids


def sweep_end(
    grid: Any,
    records: list[TrialResult],
    spec: SweepSpec,
    elapsed: float,
    limits: SweepLimits | None = None,
    warm: WarmStart | None = None,
) -> SweepEnd:
    """How Tune's run ended: this run's trial records (``records`` may hold earlier
    ones), how many trials it launched, whether some did not finish, whether time ran
    out, whether a sweep budget or the goal ended it; a warm start's reused trials and
    the new trials it plans."""
    ids = grid_trial_ids(grid)
    by_id = {r.trial_id: r for r in records}
    timeout = spec.budget.sweep_timeout_seconds
    trials = [by_id[i] for i in sorted(set(ids)) if i in by_id]
    goal = goal_trial(trials, spec)
    return SweepEnd(
        trials=trials,
        launched=len(ids),
        incomplete=grid.num_terminated + grid.num_errors < len(grid),
        timed_out=bool(timeout and elapsed >= timeout - 1),
        budget=limits.closed if limits is not None else None,
        goal_trial=goal.trial_id if goal is not None else None,
        planned=warm.planned() if warm is not None else None,
        reused=warm.trials if warm is not None else (),
    )


def summarise(
    run: SweepRun,
    trials: Sequence[TrialResult],
    verdict: Verdict,
    limits: SweepLimits | None = None,
    unreadable: Sequence[str] = (),
    warm: WarmStart | None = None,
) -> SweepResult:
    """``summary.json`` of a finished sweep: its verdict and its trials, best first, and
    the trial records it found but could not read (``unreadable``: 'file: why' each),
    counted in its message too: damage is reported, never hidden. A warm start's reused
    trials are among the trials (``reusedFrom`` set) and may be the best; the hours and
    the planned count are this sweep's own."""
    spec = run.spec
    reused = warm.trials if warm is not None else []
    every = [*trials, *reused]
    best = best_trial(every, spec.objective)
    starts = [t.started_at for t in trials if t.started_at is not None]
    seconds = limits.used_seconds(time.monotonic()) if limits is not None else None
    return SweepResult(
        sweep=run.name,
        namespace=run.namespace,
        phase=verdict.phase,
        message=with_damage(verdict.message, unreadable),
        reason=verdict.reason,
        unreadable_trials=list(unreadable) or None,
        accelerator_hours_used=sum(t.accelerator_hours for t in trials),
        preemptions=sum(t.preemptions for t in trials),
        lost_accelerator_hours=sum(t.lost_accelerator_hours for t in trials),
        wall_seconds_used=seconds,
        trials_planned=warm.planned() if warm is not None else spec.planned_trials(),
        objective_metric=spec.objective.metric,
        objective_mode=spec.objective.mode,
        trials=ranked(every, spec.objective),
        best_trial_id=best.trial_id if best else None,
        best_params=dict(best.params) if best else None,
        best_schedule=best.schedule if best else None,
        primary_score=best.primary_score if best else None,
        base_config=spec.trial_config({}).to_wire(),
        started_at=min(starts) if starts else None,
        finished_at=utcnow(),
        warm_start=warm.record.summary() if warm is not None else None,
    )


def with_damage(message: str | None, unreadable: Sequence[str]) -> str | None:
    """``message`` and how many trial records were unreadable (none: ``message``)."""
    if not unreadable:
        return message
    damage = f"{len(unreadable)} trial record(s) unreadable and left out"
    return f"{message}; {damage}" if message else damage


def publish(
    session: Session,
    summary: SweepResult,
    trials: Sequence[TrialResult],
    warm: WarmStart | None = None,
) -> SweepOutcome:
    """The evidence bundle, then ``summary.json``; the outcome of the finished sweep."""
    files = session.files
    evidence_uri, bundle_uri = publish_evidence(session, summary, trials, warm)
    # Last: summary.json tells the operator and the CLI the sweep is over, so everything
    # it points to (trial records, the evidence bundle) is already in the store.
    summary_uri = files.write_summary(summary)
    session.say(f"results: {summary_uri}")
    return SweepOutcome(
        exit_code_for(summary.phase),
        summary.message or "",
        summary,
        files.uri,
        evidence_uri,
        bundle_uri,
    )


def _devices() -> list[str]:
    """What the trials could run on: the Ray cluster's resources."""
    have = ray.cluster_resources()  # type: ignore[no-untyped-call]
    parts = [f"{have[k]:g} {k}" for k in ("CPU", "GPU", "TPU") if have.get(k)]
    return [f"ray cluster: {', '.join(parts) or 'no resources'}"]


def _numerics(run: SweepRun) -> dict[str, object]:
    """What the trials pin (they start from this environment, the sweep's variables
    under it) and this machine's CPU: on a local Ray, the trials' CPU too."""
    resources = run.spec.resources
    env = {**run.env, **os.environ}
    return numerics_record(
        accelerator=bool(resources.gpu or resources.tpu),
        environ=trial_flags(env),
        scope="driver",
    )


def publish_evidence(
    session: Session,
    summary: SweepResult,
    trials: Sequence[TrialResult],
    warm: WarmStart | None = None,
) -> tuple[str | None, str | None]:
    """Write the finished sweep's evidence folder and zip, upload them; (folder, zip) URIs.
    A warm start's reused trials go in as the records ``warm_start.json`` holds, beside it.

    A bundle that cannot be built is reported in the log, never the end of the sweep:
    the trial records and the summary are the results; the bundle is their evidence.
    """
    from tunix_rt.api.trainer import TrainerConfig
    from tunix_rt.train.backends import model_id
    from tunix_rt.train.data import dataset_info

    run, say = session.run, session.say
    store, layout = session.files.store, session.files.layout
    prefix = layout.evidence_prefix
    try:
        base = TrainerConfig.model_validate(summary.base_config)
        trial_files = {t.trial_id: store.read_bytes(layout.trial_key(t.trial_id)) for t in trials}
        warm_bytes = store.read_bytes(layout.warm_start_key) if warm is not None else None
        trial_files |= reused_files(warm)
        started = min([session.started, *(t.started_at for t in trials if t.started_at)])
        ended = summary.finished_at or utcnow()
        facts = SweepRunFacts(
            spec=run.spec.to_wire(),
            config_path=run.spec_path or "inline",
            command=run.command or _default_command(),
            commit=commit_info(),
            model_id=model_id(base),
            dataset=dataset_info(base.dataset).model_dump(mode="json"),
            seed=base.seed,
            devices=_devices(),
            start_time=started,
            end_time=ended,
            wall_seconds=max((ended - started).total_seconds(), 0.0),
            storage_uri=store.uri,
            storage_prefix=prefix,
            numerics=_numerics(run),
        )
        with tempfile.TemporaryDirectory(prefix="tunix-rt-sweep-") as tmp:
            folder = Path(tmp) / "evidence"
            say(f"evidence: commit {facts.commit.short}, {len(trial_files)} trial records")
            say.save()
            write_sweep_evidence(
                folder,
                summary=summary,
                trial_files=trial_files,
                log_text=say.text,
                facts=facts,
                warm_start=warm_bytes,
            )
            published = publish_folder(store, folder, prefix, say=say)
    except Exception as exc:  # any failure here must not lose the results
        say(f"WARNING: the sweep's evidence bundle was not written: {type(exc).__name__}: {exc}")
        return None, None
    say(f"evidence bundle: {published.bundle_uri}")
    return store.uri_for(prefix), published.bundle_uri


def reused_files(warm: WarmStart | None) -> dict[str, bytes]:
    """The reused trials' records as the evidence holds them (trial id -> JSON bytes)."""
    if warm is None:
        return {}
    return {t.trial_id: wire_bytes(t) for t in warm.trials}


def _default_command() -> list[str]:
    """This process's command line; the --spec-b64 blob is elided (the manifest's config
    holds the spec)."""
    argv = list(sys.argv) or ["tunix-rt"]
    head = Path(argv[0]).name
    command = ["python", "-m", "tunix_rt.tune"] if head == "__main__.py" else [head]
    for arg in argv[1:]:
        command.append("<spec: see config>" if command[-1] == "--spec-b64" else arg)
    return command
