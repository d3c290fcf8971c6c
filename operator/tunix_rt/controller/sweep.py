"""The Sweep reconcile loop (kopf handlers; all state lives in ``status``).

Lifecycle: ``Pending`` (RayJob created, Ray cluster starting) -> ``Running`` (the Tune
driver runs trials) -> ``Succeeded`` or ``Failed``. Each transition posts an Event.

* create / resume (``start_sweep``): validate the spec with the pydantic model (an invalid
  spec -> ``Failed`` with condition ``Failed=True, reason=InvalidSpec`` whose message names
  the field, plus a Warning Event; nothing is retried), build the RayJob and create it
  under the deterministic name ``sweep-<name>`` -- or adopt it when it exists (operator
  restarts, another replica, a 409 on create). Never a second RayJob.
* timer (``follow_sweep``, every ``TUNIX_RT_POLL_SECONDS`` while not finished): read the
  RayJob's ``jobStatus`` / ``jobDeploymentStatus`` and the trial files the driver writes
  to the store; patch phase, conditions, trials (params, state, primary_score), counts,
  best trial and primary score; an Event per finished trial. The job SUCCEEDED and the
  summary exists -> ``Succeeded`` (final trials from the summary); the job FAILED/STOPPED
  (or its deployment failed, e.g. DeadlineExceeded) -> ``Failed`` with the RayJob's
  message, keeping every trial result already in the store.
* spec changes (``sweep_spec_changed``): a Sweep whose spec was invalid is validated again
  and started once valid. Otherwise the change is *not* applied: the running RayJob keeps
  the spec it started with (recorded on the RayJob as ``tunixrt.io/spec``), a finished
  Sweep is not re-run; the status gets condition ``SpecChangeIgnored=True`` and a Warning
  Event says to create a new Sweep.
* delete (``delete_sweep``): deletes the RayJob (it also carries an ownerReference, so
  Kubernetes' garbage collector would too). Results in the store are never deleted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import kopf
from pydantic import ValidationError

from tunix_rt.api.common import GROUP, VERSION, Phase
from tunix_rt.api.names import child_name
from tunix_rt.api.results import best_summary, best_trial, trial_summary
from tunix_rt.api.sweep import SweepSpec
from tunix_rt.api.trial import FINISHED_STATES, SweepResult, TrialResult, TrialState
from tunix_rt.contract.layout import (
    summary_key,
    sweep_evidence_prefix,
    sweep_prefix,
    trials_prefix,
)
from tunix_rt.controller.runtime import (
    Runtime,
    clear_spec_change,
    delete_child_rayjob,
    ensure_rayjob,
    fail,
    ignore_spec_change,
    nothing_to_start,
    owner_of,
    plain,
    read_in_thread,
    runtime_of,
)
from tunix_rt.controller.status import (
    INVALID_SPEC,
    apply_status,
    describe_validation_error,
    failed_for_invalid_spec,
    generation_of,
    is_terminal,
    phase_conditions,
    phase_of,
    post_transition,
    timestamp,
)
from tunix_rt.evidence.upload import latest_bundle
from tunix_rt.kuberay.client import KubeApiError
from tunix_rt.kuberay.errors import ManifestError
from tunix_rt.kuberay.rayjob import SWEEP_LABEL, build_sweep_rayjob, spec_annotation
from tunix_rt.storage import Store, StoreError

KIND = "Sweep"
PLURAL = "sweeps"
CACHE_KEY = "tunixrt_trials"
SUMMARY_WAIT_KEY = "tunixrt_summary_wait"


# ----------------------------------------------------------------------------- spec


def parse_spec(spec: Mapping[str, Any], runtime: Runtime) -> SweepSpec:
    """The validated spec, with the operator's defaults (storage, pools) where it sets none."""
    return SweepSpec.model_validate(runtime.with_defaults(spec))


def running_spec(
    rayjob: Mapping[str, Any] | None, spec: Mapping[str, Any], runtime: Runtime
) -> SweepSpec | None:
    """The spec the RayJob runs (its annotation), else the current spec, else None."""
    recorded = spec_annotation(rayjob) if rayjob else None
    for candidate in (recorded, None):
        try:
            if candidate is not None:
                return SweepSpec.model_validate(candidate)
            return parse_spec(spec, runtime)
        except ValidationError:
            continue
    return None


# ----------------------------------------------------------------------------- store


@dataclass
class Snapshot:
    trials: list[TrialResult] = field(default_factory=list)
    summary: SweepResult | None = None
    bundle_uri: str | None = None
    """The finished sweep's evidence zip (uploaded before summary.json)."""
    problems: list[str] = field(default_factory=list)


def read_results(
    store: Store, namespace: str, name: str, cache: dict[str, TrialResult], with_summary: bool
) -> Snapshot:
    """Trial files (finished ones read once, then cached) and, if asked, the summary."""
    snap = Snapshot()
    for key in store.list(trials_prefix(namespace, name)):
        if not key.endswith(".json"):
            continue
        cached = cache.get(key)
        if cached is not None:
            snap.trials.append(cached)
            continue
        try:
            trial = TrialResult.model_validate(store.read_json(key))
        except (StoreError, ValidationError, ValueError) as exc:
            snap.problems.append(f"{store.uri_for(key)}: {str(exc).splitlines()[0]}")
            continue
        if trial.state in FINISHED_STATES:
            cache[key] = trial
        snap.trials.append(trial)
    if with_summary and store.exists(summary_key(namespace, name)):
        try:
            snap.summary = SweepResult.model_validate(store.read_json(summary_key(namespace, name)))
        except (StoreError, ValidationError, ValueError) as exc:
            snap.problems.append(f"summary: {str(exc).splitlines()[0]}")
    if snap.summary is not None:
        snap.bundle_uri = latest_bundle(store, sweep_evidence_prefix(namespace, name))
    return snap


def merge_trials(files: list[TrialResult], summary: SweepResult | None) -> list[TrialResult]:
    """Summary trials win (they are final); trials only in files are kept too."""
    by_id = {t.trial_id: t for t in files}
    if summary is not None:
        by_id.update({t.trial_id: t for t in summary.trials})
    return [by_id[k] for k in sorted(by_id)]


# ----------------------------------------------------------------------------- status


def trial_fields(
    trials: list[TrialResult], spec: SweepSpec, summary: SweepResult | None
) -> dict[str, Any]:
    """trials / counts / progress / best trial / primary score for status."""
    completed = sum(t.state in (TrialState.SUCCEEDED, TrialState.STOPPED) for t in trials)
    failed = sum(t.state is TrialState.FAILED for t in trials)
    running = sum(t.state is TrialState.RUNNING for t in trials)
    planned = (summary.trials_planned if summary and summary.trials_planned else None) or (
        spec.planned_trials()
    )
    total = max(planned, len(trials))
    best = None
    if summary is not None and summary.best_trial_id:
        best = next((t for t in trials if t.trial_id == summary.best_trial_id), None)
    if best is None:
        best = best_trial(trials, spec.objective)
    best_wire = best_summary(best)
    return {
        "trials": [trial_summary(t).to_wire() for t in trials],
        "trialsTotal": total,
        "trialsCompleted": completed,
        "trialsFailed": failed,
        "trialsRunning": running,
        "trialsProgress": f"{completed + failed}/{total}",
        "bestTrial": best_wire.to_wire() if best_wire else None,
        "primaryScore": best.primary_score if best else None,
    }


def progress_message(fields: Mapping[str, Any]) -> str:
    done = fields["trialsCompleted"] + fields["trialsFailed"]
    text = f"{done}/{fields['trialsTotal']} trials finished"
    extras = []
    if fields["trialsRunning"]:
        extras.append(f"{fields['trialsRunning']} running")
    if fields["trialsFailed"]:
        extras.append(f"{fields['trialsFailed']} failed")
    if extras:
        text += f" ({', '.join(extras)})"
    best = fields.get("bestTrial")
    if best and fields.get("primaryScore") is not None:
        text += f"; best trial {best['id']} primary_score {fields['primaryScore']:.4f}"
    return text


_REASON_CHARS = str.maketrans({c: "" for c in " -./"})


def reason_of(raw: object, default: str) -> str:
    text = str(raw or "").translate(_REASON_CHARS)
    return text if text[:1].isalpha() and text.isalnum() else default


@dataclass
class Verdict:
    phase: Phase
    reason: str
    message: str = ""


def judge(
    rayjob: Mapping[str, Any] | None,
    rayjob_name: str,
    snap: Snapshot,
    summary_waited: float,
    grace: float,
) -> Verdict:
    """The Sweep's phase from the RayJob's status and what the store holds."""
    summary = snap.summary
    if rayjob is None:
        if summary is not None:
            return _from_summary(summary)
        return Verdict(
            Phase.FAILED,
            "RayJobLost",
            f"RayJob {rayjob_name} was deleted before the sweep finished; trial "
            "results found so far are kept",
        )
    job = rayjob.get("status") or {}
    job_status = str(job.get("jobStatus") or "").upper()
    deployment = str(job.get("jobDeploymentStatus") or "")
    if job_status == "SUCCEEDED":
        if summary is not None:
            return _from_summary(summary)
        if summary_waited < grace:
            return Verdict(
                Phase.RUNNING,
                "WaitingForSummary",
                "the Ray job succeeded; waiting for the sweep summary",
            )
        return Verdict(
            Phase.FAILED,
            "NoSummary",
            f"RayJob {rayjob_name} succeeded but the driver left no summary.json",
        )
    if job_status in ("FAILED", "STOPPED") or deployment in ("Failed", "ValidationFailed"):
        default = "RayJobStopped" if job_status == "STOPPED" else "RayJobFailed"
        reason = reason_of(job.get("reason"), default)
        message = str(job.get("message") or "").strip() or (
            f"RayJob {rayjob_name} {job_status or deployment}"
        )
        if summary is not None and summary.message and summary.phase is Phase.FAILED:
            message = f"{message}; {summary.message}"
        return Verdict(Phase.FAILED, reason, message)
    if job_status == "RUNNING" or deployment == "Running" or snap.trials:
        return Verdict(Phase.RUNNING, "TrialsRunning")
    if deployment == "Suspended":
        return Verdict(Phase.PENDING, "RayJobSuspended", f"RayJob {rayjob_name} is suspended")
    return Verdict(
        Phase.PENDING,
        "RayClusterStarting",
        f"RayJob {rayjob_name} is {deployment or 'initializing'}",
    )


def _from_summary(summary: SweepResult) -> Verdict:
    if summary.phase is Phase.FAILED:
        return Verdict(Phase.FAILED, "SweepFailed", summary.message or "the sweep failed")
    return Verdict(Phase.SUCCEEDED, "Succeeded", summary.message or "")


# ----------------------------------------------------------------------------- handlers


async def start_sweep(
    body: kopf.Body,
    meta: kopf.Meta,
    spec: kopf.Spec,
    status: kopf.Status,
    patch: kopf.Patch,
    memo: kopf.Memo,
    logger: kopf.Logger,
    **_: Any,
) -> None:
    """create / resume: validate, then create or adopt the RayJob."""
    runtime = runtime_of(memo)
    with runtime.metrics.time("sweep", "start"):
        await _start(runtime, body, meta, spec, plain(status), patch, logger)


async def _start(
    runtime: Runtime,
    body: kopf.Body,
    meta: Mapping[str, Any],
    spec: Mapping[str, Any],
    status: dict[str, Any],
    patch: kopf.Patch,
    logger: kopf.Logger | logging.Logger,
) -> None:
    if await nothing_to_start(runtime, body, status, "sweep"):
        return
    namespace, name = str(meta["namespace"]), str(meta["name"])
    generation = generation_of(meta)
    retry_invalid = failed_for_invalid_spec(status)
    try:
        parsed = parse_spec(spec, runtime)
        manifest = build_sweep_rayjob(
            name=name,
            namespace=namespace,
            spec=parsed,
            owner=owner_of(body, KIND),
            options=runtime.config.build_options(),
        )
    except ValidationError as exc:
        message = describe_validation_error(exc)
    except ManifestError as exc:
        message = str(exc)
    else:
        message = ""
    if message:
        logger.warning("invalid Sweep spec: %s", message)
        if not (retry_invalid and status.get("message") == message):
            fail(body, patch, status, reason=INVALID_SPEC, message=message, generation=generation)
        runtime.metrics.observe_phase("sweep", namespace, name, Phase.FAILED.value)
        return

    ensured = await ensure_rayjob(runtime, body, patch, status, manifest, "sweep", generation)
    if ensured is None:
        runtime.metrics.observe_phase("sweep", namespace, name, Phase.FAILED.value)
        return
    rayjob_name = manifest["metadata"]["name"]
    store = runtime.store(parsed.storage)
    old = phase_of(status)
    planned = parsed.planned_trials()
    message = f"RayJob {rayjob_name} {ensured.action}; waiting for the Ray cluster"
    reason = "RayJobCreated" if ensured.action == "created" else "RayJobAdopted"
    conditions = clear_spec_change(list(status.get("conditions") or []))
    desired: dict[str, Any] = {
        "phase": Phase.PENDING.value,
        "message": message,
        "conditions": phase_conditions(conditions, Phase.PENDING, reason, message, generation),
        "observedGeneration": generation,
        "rayJobName": rayjob_name,
        "resultsUri": store.uri_for(sweep_prefix(namespace, name)),
        "trialsTotal": planned,
        "trialsProgress": f"0/{planned}",
        "startTime": status.get("startTime") or timestamp(),
        "completionTime": None,
    }
    apply_status(patch, status, desired)
    post_transition(body, old, Phase.PENDING, message)
    runtime.metrics.observe_phase("sweep", namespace, name, Phase.PENDING.value)


async def follow_sweep(
    body: kopf.Body,
    meta: kopf.Meta,
    spec: kopf.Spec,
    status: kopf.Status,
    patch: kopf.Patch,
    memo: kopf.Memo,
    logger: kopf.Logger,
    **_: Any,
) -> None:
    """timer: follow the RayJob and the trial files; patch status."""
    runtime = runtime_of(memo)
    with runtime.metrics.time("sweep", "follow"):
        await _follow(runtime, body, meta, spec, plain(status), patch, memo, logger)


async def _follow(
    runtime: Runtime,
    body: kopf.Body,
    meta: Mapping[str, Any],
    spec: Mapping[str, Any],
    status: dict[str, Any],
    patch: kopf.Patch,
    memo: kopf.Memo,
    logger: kopf.Logger,
) -> None:
    namespace, name = str(meta["namespace"]), str(meta["name"])
    rayjob_name = str(status.get("rayJobName") or child_name("sweep", name))
    try:
        rayjob = await runtime.rayjobs.get(namespace, rayjob_name)
    except KubeApiError as exc:
        raise kopf.TemporaryError(f"reading RayJob {rayjob_name}: {exc}", delay=10) from exc
    parsed = running_spec(rayjob, spec, runtime)
    if parsed is None:
        fail(
            body,
            patch,
            status,
            reason="RayJobLost" if rayjob is None else INVALID_SPEC,
            message=f"cannot read the spec RayJob {rayjob_name} runs",
            generation=None,
        )
        return

    job_status = str(((rayjob or {}).get("status") or {}).get("jobStatus") or "").upper()
    finished_job = rayjob is None or job_status in ("SUCCEEDED", "FAILED", "STOPPED")
    cache: dict[str, TrialResult] = memo.setdefault(CACHE_KEY, {})
    store = runtime.store(parsed.storage)
    try:
        snap: Snapshot = await read_in_thread(
            read_results, store, namespace, name, cache, finished_job
        )
    except StoreError as exc:
        logger.warning("cannot read results from %s: %s (retrying)", store.uri, exc)
        return
    for problem in snap.problems:
        logger.warning("skipping an unreadable result: %s", problem)

    waited = 0.0
    if job_status == "SUCCEEDED" and snap.summary is None:
        first = memo.setdefault(SUMMARY_WAIT_KEY, time.monotonic())
        waited = time.monotonic() - first
    verdict = judge(rayjob, rayjob_name, snap, waited, runtime.config.summary_grace_seconds)

    trials = merge_trials(snap.trials, snap.summary)
    fields = trial_fields(trials, parsed, snap.summary)
    old = phase_of(status)
    generation = status.get("observedGeneration")
    message = verdict.message or progress_message(fields)
    if verdict.phase is Phase.SUCCEEDED:
        message = verdict.message or (
            f"{fields['trialsCompleted']} trials succeeded"
            + (
                f"; best trial {fields['bestTrial']['id']} primary_score "
                f"{fields['primaryScore']:.4f}"
                if fields.get("bestTrial") and fields.get("primaryScore") is not None
                else ""
            )
        )
    elif verdict.phase is Phase.RUNNING and verdict.message:
        message = f"{verdict.message}; {progress_message(fields)}"

    desired: dict[str, Any] = dict(fields)
    desired.update(
        phase=verdict.phase.value,
        message=message,
        conditions=phase_conditions(
            status.get("conditions") or [], verdict.phase, verdict.reason, message, generation
        ),
        rayJobName=rayjob_name,
    )
    if verdict.phase in (Phase.SUCCEEDED, Phase.FAILED):
        desired["completionTime"] = status.get("completionTime") or timestamp()
    if snap.bundle_uri is not None:
        desired["evidenceUri"] = store.uri_for(sweep_evidence_prefix(namespace, name))
        desired["bundleUri"] = snap.bundle_uri
    if not desired.get("bestTrial"):
        desired.pop("bestTrial")
        desired.pop("primaryScore")

    _trial_events(body, status, trials, runtime, namespace)
    apply_status(patch, status, desired)
    if old is not verdict.phase:
        post_transition(
            body,
            old,
            verdict.phase,
            message,
            verdict.reason if verdict.phase is Phase.FAILED else None,
        )
    runtime.metrics.observe_phase("sweep", namespace, name, verdict.phase.value)
    if verdict.phase in (Phase.SUCCEEDED, Phase.FAILED):
        memo.pop(CACHE_KEY, None)
        memo.pop(SUMMARY_WAIT_KEY, None)


def _trial_events(
    body: kopf.Body,
    status: Mapping[str, Any],
    trials: list[TrialResult],
    runtime: Runtime,
    namespace: str,
) -> None:
    """An Event per trial that finished since the last status."""
    before = {t.get("id"): t.get("state") for t in status.get("trials") or []}
    finished_states = {s.value for s in FINISHED_STATES}
    newly = [
        t
        for t in trials
        if t.state in FINISHED_STATES and before.get(t.trial_id) not in finished_states
    ]
    for trial in newly:
        score = "n/a" if trial.primary_score is None else f"{trial.primary_score:.4f}"
        text = f"trial {trial.trial_id} {trial.state.value}: primary_score {score}"
        if trial.error:
            text += f" ({trial.error.splitlines()[0][:200]})"
        if trial.state is TrialState.FAILED:
            kopf.warn(body, reason="TrialFailed", message=text)
        else:
            kopf.info(body, reason="TrialFinished", message=text)
    runtime.metrics.trials_finished(namespace, len(newly))


async def sweep_spec_changed(
    body: kopf.Body,
    meta: kopf.Meta,
    spec: kopf.Spec,
    status: kopf.Status,
    patch: kopf.Patch,
    memo: kopf.Memo,
    logger: kopf.Logger,
    **_: Any,
) -> None:
    """update of spec: start an invalid Sweep once fixed; otherwise ignore, visibly."""
    runtime = runtime_of(memo)
    current = plain(status)
    with runtime.metrics.time("sweep", "update"):
        if failed_for_invalid_spec(current) or not current.get("rayJobName"):
            await _start(runtime, body, meta, spec, current, patch, logger)
        else:
            ignore_spec_change(body, patch, current, KIND, generation_of(meta))


async def delete_sweep(
    body: kopf.Body,
    meta: kopf.Meta,
    status: kopf.Status,
    memo: kopf.Memo,
    logger: kopf.Logger,
    **_: Any,
) -> None:
    """delete: remove the RayJob (ours only); the store keeps every result."""
    await delete_child_rayjob(
        runtime_of(memo),
        body,
        meta,
        status,
        logger,
        kind="sweep",
        label=SWEEP_LABEL,
        kept="results",
    )


# ----------------------------------------------------------------------------- wiring


def _following(status: kopf.Status, **_: Any) -> bool:
    return bool(status.get("rayJobName")) and not is_terminal(status)


def register(registry: kopf.OperatorRegistry, poll_seconds: float) -> None:
    """Attach the Sweep handlers to a registry."""
    kopf.on.resume(GROUP, VERSION, PLURAL, registry=registry, backoff=10)(start_sweep)
    kopf.on.create(GROUP, VERSION, PLURAL, registry=registry, backoff=10)(start_sweep)
    kopf.on.update(GROUP, VERSION, PLURAL, field="spec", registry=registry, backoff=10)(
        sweep_spec_changed
    )
    kopf.timer(
        GROUP,
        VERSION,
        PLURAL,
        registry=registry,
        interval=poll_seconds,
        backoff=max(poll_seconds, 1.0),
        when=_following,
    )(follow_sweep)
    kopf.on.delete(GROUP, VERSION, PLURAL, registry=registry, backoff=10)(delete_sweep)
