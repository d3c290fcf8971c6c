"""The Sweep reconcile loop (kopf handlers; all state lives in ``status``).

Lifecycle: ``Pending`` (RayJob created, Ray cluster starting) -> ``Running`` (the Tune
driver runs trials) -> ``Succeeded`` or ``Failed``. Each transition posts an Event.

* create / resume (``start_sweep``, :func:`start`; for a new Sweep the RayJob itself is
  created a cycle earlier, on its first watch event: :func:`eager_rayjob` and
  :func:`~tunix_rt.controller.handlers.eager_start`): validate the spec with the pydantic
  model (an invalid spec -> ``Failed`` with condition ``Failed=True, reason=InvalidSpec``
  whose message names the field, plus a Warning Event; nothing is retried), build the
  RayJob and create it under the deterministic name ``sweep-<name>`` -- or adopt it when
  it exists (operator restarts, another replica, a 409 on create). Never a second RayJob.
* follow (:func:`follow`; timer ``follow_sweep`` every ``TUNIX_RT_POLL_SECONDS`` while
  Running; while Pending, each change of its RayJob's status seen by the watch
  (:mod:`~tunix_rt.controller.wake`) and timer ``resync_sweep`` every
  ``TUNIX_RT_RESYNC_SECONDS``): read the RayJob's ``jobStatus`` /
  ``jobDeploymentStatus`` and the trial files the driver writes to the store
  (:class:`~tunix_rt.contract.layout.SweepFiles`, finished records read once); judge
  the phase with the run contract's :func:`~tunix_rt.contract.phases.judge_sweep`;
  patch phase, conditions, trials (params, state, primary_score), counts, best trial
  and primary score
  (:mod:`tunix_rt.controller.sweep_status`); an Event per finished trial. The job
  SUCCEEDED and the summary exists -> ``Succeeded`` (final trials from the summary); the
  job FAILED/STOPPED (or its deployment failed, e.g. DeadlineExceeded) -> ``Failed``
  with the RayJob's message, keeping every trial result already in the store. A store
  that cannot be reached is retried at the next poll (condition ``Degraded=True``,
  reason ``StoreUnavailable``, until it can be read again; no phase change).
* resume (:func:`retry`): a RayJob that failed for an infrastructure reason (its driver
  started and did not end on its own: killed, head pod or node lost, cluster deleted;
  or ended INTERRUPTED; :func:`~tunix_rt.contract.phases.infrastructure_failure`, from
  the RayJob's status and the driver's ``sessions.json``) is followed by a new RayJob
  ``sweep-<name>-a<N>`` running the same spec, whose driver resumes Ray Tune's state
  from the store; up to ``spec.retries`` times (``status.attempts``,
  ``lastRetryReason``, a ``Retrying`` Warning Event). The sweep's own failures (too
  many failed trials, a bad spec, its deadline) are final.
* spec changes (``sweep_spec_changed``): a Sweep whose spec was invalid is validated again
  and started once valid. Otherwise the change is *not* applied: the running RayJob keeps
  the spec it started with (recorded on the RayJob as ``tunixrt.io/spec``), a finished
  Sweep is not re-run; the status gets condition ``SpecChangeIgnored=True`` and a Warning
  Event says to create a new Sweep.
* delete (``delete_sweep``): deletes the RayJob (it also carries an ownerReference, so
  Kubernetes' garbage collector would too). Results in the store are never deleted.
* warm start (``spec.warmStartFrom.sweep``, :mod:`tunix_rt.controller.warm_source`): the
  Sweep it names is read first; until it has finished this Sweep waits (Pending, reason
  ``WaitingForSweep``, polled); then its results URI goes to the driver
  (``--warm-start-uri``) and into ``status.warmStart``, which the follow step completes
  from the driver's ``warm_start.json`` (reused and skipped trials). A reused trial can
  be ``bestTrial`` (``reusedFrom`` names its sweep); counts and ``trials`` are this
  Sweep's own.

The handlers themselves are in :mod:`tunix_rt.controller.handlers`, what both kinds
share in :mod:`tunix_rt.controller.kind`; :data:`SWEEP` is what this module gives it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import kopf
from pydantic import ValidationError

from tunix_rt.api.common import Phase
from tunix_rt.api.errors import ManifestError, describe, describe_pairs
from tunix_rt.api.names import child_name
from tunix_rt.api.placement import SKIP_PLACEMENT, UNSCHEDULABLE, check_placement
from tunix_rt.api.sweep import SweepSpec
from tunix_rt.api.trial import DriverSessions, SweepResult, TrialResult, WarmStartRecord
from tunix_rt.contract import reasons
from tunix_rt.contract.layout import SweepFiles, SweepLayout
from tunix_rt.contract.phases import (
    Verdict,
    infrastructure_failure,
    job_finished,
    job_status,
    judge_sweep,
    session_of_attempt,
)
from tunix_rt.controller.call import Call
from tunix_rt.controller.kind import Kind, waiting_for_sweep
from tunix_rt.controller.runtime import Runtime, owner_of
from tunix_rt.controller.status import timestamp
from tunix_rt.controller.status_writer import write_failed, write_waiting
from tunix_rt.controller.sweep_status import (
    Retry,
    attempt_fields,
    attempt_rayjob_name,
    attempt_start,
    desired_status,
    evidence_fields,
    merge_trials,
    newly_finished,
    out_of_retries,
    retry_plan,
    settle,
    trial_event,
    trial_fields,
    unreadable_fields,
)
from tunix_rt.controller.warm_source import Found
from tunix_rt.controller.warm_source import resolve as resolve_warm_source
from tunix_rt.kuberay.metadata import SWEEP_LABEL, spec_annotation
from tunix_rt.kuberay.rayjob import build_sweep_rayjob

CACHE_KEY = "tunixrt_trials"
SUMMARY_WAIT_KEY = "tunixrt_summary_wait"
ANNOUNCED_KEY = "tunixrt_announced_trials"
WARM_KEY = "tunixrt_warm_start"


# ----------------------------------------------------------------------------- spec


def parse_spec(spec: Mapping[str, Any], runtime: Runtime) -> SweepSpec:
    """The validated spec, with the operator's defaults (storage, pools) where it sets none;
    placement is checked apart (:func:`start`: reason ``Unschedulable``)."""
    return SweepSpec.model_validate(runtime.with_defaults(spec), context=SKIP_PLACEMENT)


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
    sessions: DriverSessions | None = None
    """The driver sessions (read once the RayJob ended: did its driver end on its own?)."""
    damaged: dict[str, str] = field(default_factory=dict)
    """Trial records there but unreadable: key -> why (status says how many and which)."""
    warm: WarmStartRecord | None = None
    """The warm start's verdicts (read once they are there: they never change)."""


def read_snapshot(
    files: SweepFiles,
    cache: dict[str, TrialResult],
    with_summary: bool,
    with_warm: bool = False,
) -> Snapshot:
    """Trial files (finished ones read once, then cached) and, if asked, the summary and
    the driver sessions, and the warm start's record."""
    snap = Snapshot(trials=files.trials(cache=cache))
    snap.damaged = dict(files.damaged_trials)
    if with_warm:
        snap.warm = files.warm_start()
    if with_summary:
        snap.summary = files.summary()
        snap.sessions = files.sessions()
    if snap.summary is not None:
        snap.bundle_uri = files.bundle_uri()
    return snap


# ----------------------------------------------------------------------------- start


@dataclass(frozen=True)
class Plan:
    """A start's pure part: the spec and its RayJob, or why the spec cannot run."""

    spec: SweepSpec | None = None
    manifest: dict[str, Any] | None = None
    problem: str | None = None
    reason: str = reasons.INVALID_SPEC


def plan(call: Call, warm_start_uri: str | None = None) -> Plan:
    """Validate the spec, check it can be placed, build the RayJob (``warm_start_uri``:
    the results of the Sweep ``warmStartFrom.sweep`` names, resolved)."""
    try:
        parsed = parse_spec(call.spec, call.runtime)
        if unschedulable := check_placement(parsed):
            return Plan(problem=describe_pairs(unschedulable), reason=UNSCHEDULABLE)
        manifest = _rayjob(call, parsed, warm_start_uri)
    except ValidationError as exc:
        return Plan(problem=describe(exc))
    except ManifestError as exc:
        return Plan(problem=str(exc))
    return Plan(parsed, manifest)


def _rayjob(call: Call, spec: SweepSpec, warm_start_uri: str | None = None) -> dict[str, Any]:
    """The Sweep's RayJob for ``spec`` (its first attempt's name)."""
    return build_sweep_rayjob(
        name=call.name,
        namespace=call.namespace,
        spec=spec,
        owner=owner_of(call.body, SWEEP.name),
        options=call.runtime.config.build_options(),
        warm_start_uri=warm_start_uri,
    )


def _warm_sweep(spec: SweepSpec | None) -> str | None:
    """The Sweep ``spec.warmStartFrom`` names (None: none, or a URI)."""
    warm = spec.warm_start_from if spec is not None else None
    return warm.sweep if warm is not None else None


def eager_rayjob(call: Call) -> dict[str, Any] | None:
    """The RayJob of a new Sweep that can run (the eager start's; None: ``start`` says why,
    or resolves the Sweep a warm start names first)."""
    planned = plan(call)
    return None if _warm_sweep(planned.spec) else planned.manifest


async def start(call: Call) -> None:
    """create / resume: validate, resolve a warm start's Sweep, create or adopt the RayJob."""
    if await SWEEP.already_started(call):
        return
    planned, started = await _plan_with_source(call)
    if planned is None:
        return  # waiting for the Sweep spec.warmStartFrom names
    if planned.spec is None or planned.manifest is None:
        SWEEP.reject_invalid(call, planned.problem or "invalid spec", planned.reason)
        return
    trials = planned.spec.planned_trials()
    results = _files(call, planned.spec).uri
    started |= {"resultsUri": results, "trialsTotal": trials, "trialsProgress": f"0/{trials}"}
    started["attempts"] = 1  # its RayJob's creation: status.startTime (attempt_start)
    await SWEEP.launch(call, planned.manifest, started)


async def _plan_with_source(call: Call) -> tuple[Plan | None, dict[str, Any]]:
    """The plan, its RayJob given the results of the Sweep ``warmStartFrom.sweep`` names,
    and the status fields that say so; (None, {}) while that Sweep has not finished
    (the status says it waits)."""
    planned = plan(call)
    source = _warm_sweep(planned.spec)
    if source is None:
        return planned, {}
    found = await resolve_warm_source(call.runtime, call.namespace, source)
    if not isinstance(found, Found):
        write_waiting(call, found.message, call.generation, None)
        SWEEP.observe(call, Phase.PENDING)
        return None, {}
    return plan(call, found.uri), {"warmStart": {"source": f"Sweep {source}", "uri": found.uri}}


def _files(call: Call, spec: SweepSpec) -> SweepFiles:
    return SweepFiles(call.runtime.store(spec.storage), SweepLayout.of(call.namespace, call.name))


# ----------------------------------------------------------------------------- follow


async def follow(call: Call) -> None:
    """timer: wait for a warm start's Sweep, or follow the RayJob and the trial files;
    patch status."""
    if waiting_for_sweep(call.status):
        await start(call)  # for the Sweep spec.warmStartFrom names
        return
    rayjob_name = str(call.status.get("rayJobName") or child_name(SWEEP.key, call.name))
    rayjob = await call.read_rayjob(rayjob_name)
    parsed = running_spec(rayjob, call.spec, call.runtime)
    if parsed is None:
        _spec_lost(call, rayjob, rayjob_name)
        return
    files = _files(call, parsed)
    cache: dict[str, TrialResult] = call.memo.setdefault(CACHE_KEY, {})
    with_warm = parsed.warm_start_from is not None and WARM_KEY not in call.memo
    read = partial(read_snapshot, files, cache, job_finished(rayjob), with_warm)
    snap = await call.read_store(files, read, "results", "skipping an unreadable result: %s")
    if snap is None:
        return
    if snap.warm is not None:
        call.memo[WARM_KEY] = snap.warm
    warm: WarmStartRecord | None = call.memo.get(WARM_KEY)
    waiting = job_status(rayjob) == "SUCCEEDED" and snap.summary is None
    waited = call.output_wait(SUMMARY_WAIT_KEY, waiting)
    grace = call.runtime.config.summary_grace_seconds
    judged = judge_sweep(rayjob, rayjob_name, snap.summary, bool(snap.trials), waited, grace)
    trials = merge_trials(snap.trials, snap.summary)
    fields = trial_fields(trials, parsed, snap.summary, warm) | unreadable_fields(snap.damaged)
    _damage_event(call, fields)
    verdict = settle(judged, fields)
    if verdict.phase is Phase.FAILED:
        verdict = await retry_or_fail(call, rayjob, rayjob_name, parsed, snap, verdict)
        if verdict.phase is not Phase.FAILED:
            return
    evidence = evidence_fields(files.store.uri_for(files.layout.evidence_prefix), snap.bundle_uri)
    _trial_events(call, trials)
    desired = desired_status(verdict, fields, call.status, rayjob_name, evidence)
    SWEEP.publish(call, verdict, desired)
    if verdict.finished:
        call.memo.pop(CACHE_KEY, None)
        call.memo.pop(SUMMARY_WAIT_KEY, None)
        call.memo.pop(WARM_KEY, None)


async def retry_or_fail(
    call: Call,
    rayjob: Mapping[str, Any] | None,
    rayjob_name: str,
    spec: SweepSpec,
    snap: Snapshot,
    verdict: Verdict,
) -> Verdict:
    """A failed attempt: resume it with a new RayJob when its infrastructure failed and
    ``spec.retries`` allows (returns Pending), else the failure, saying why it was not."""
    last = snap.sessions.last if snap.sessions else None
    session = session_of_attempt(last, attempt_start(call.status))
    infra = infrastructure_failure(rayjob, snap.summary, session)
    plan = retry_plan(verdict, infra, call.status, spec.max_retries(), rayjob_name)
    if plan is None:
        return out_of_retries(verdict, infra, call.status, spec.max_retries())
    await retry(call, spec, plan)
    return Verdict(Phase.PENDING, reasons.RETRYING, plan.message)


async def retry(call: Call, spec: SweepSpec, plan: Retry) -> None:
    """Create (or adopt) the next attempt's RayJob; status Pending with the attempt."""
    kopf.warn(call.body, reason=reasons.RETRYING, message=plan.message)
    warm = call.status.get("warmStart") or {}
    manifest = _rayjob(call, spec, warm.get("uri") if _warm_sweep(spec) else None)
    manifest["metadata"]["name"] = attempt_rayjob_name(call.name, plan.attempt)
    call.memo.pop(SUMMARY_WAIT_KEY, None)
    await SWEEP.launch(call, manifest, attempt_fields(plan.attempt, timestamp(), plan.reason))


def _spec_lost(call: Call, rayjob: Mapping[str, Any] | None, rayjob_name: str) -> None:
    """Failed: neither the RayJob's recorded spec nor the current one validates."""
    reason = reasons.RAYJOB_LOST if rayjob is None else reasons.INVALID_SPEC
    write_failed(call, reason, f"cannot read the spec RayJob {rayjob_name} runs", None)


def _damage_event(call: Call, fields: Mapping[str, Any]) -> None:
    """A Warning Event when more trial records are unreadable than status said."""
    count = int(fields.get("trialsUnreadable") or 0)
    if count > int(call.status.get("trialsUnreadable") or 0):
        listed = "; ".join(fields.get("unreadableTrials") or [])
        kopf.warn(
            call.body,
            reason=reasons.RESULTS_UNREADABLE,
            message=f"{count} trial record(s) in the store could not be read: {listed}"[:1000],
        )


def _trial_events(call: Call, trials: list[TrialResult]) -> None:
    """An Event per trial that finished since the last status (and was not announced
    already by this process: the memo)."""
    announced: set[str] = call.memo.setdefault(ANNOUNCED_KEY, set())
    newly = newly_finished(call.status, trials, announced)
    announced.update(t.trial_id for t in newly)
    for trial in newly:
        warning, text = trial_event(trial)
        if warning:
            kopf.warn(call.body, reason=reasons.TRIAL_FAILED, message=text)
        else:
            kopf.info(call.body, reason=reasons.TRIAL_FINISHED, message=text)
    call.runtime.metrics.trials_finished(call.namespace, len(newly))


# ----------------------------------------------------------------------------- wiring


SWEEP = Kind(
    "Sweep",
    SWEEP_LABEL,
    kept="results",
    spec_fields="searchSpace, maxTrials",
    start=start,
    follow=follow,
    eager=eager_rayjob,
)
