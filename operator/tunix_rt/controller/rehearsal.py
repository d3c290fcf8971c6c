"""The Rehearsal reconcile loop: one full run of a fixed config that leaves evidence.

Lifecycle and behaviour match the Sweep's (see ``tunix_rt.controller.sweep``): Pending ->
Running -> Succeeded | Failed, Events on each transition, create-or-adopt of the RayJob
``rehearsal-<name>``, spec changes after the start are ignored visibly
(``SpecChangeIgnored``), an invalid spec fails with the field named, deletion removes the
RayJob and keeps the evidence in the store. The handlers are in
:mod:`tunix_rt.controller.handlers`, what both kinds share in
:mod:`tunix_rt.controller.kind`; :data:`REHEARSAL` is what this module gives it.

``fromSweep`` (:mod:`tunix_rt.controller.rehearsal_source`): the operator reads the Sweep
(same namespace). Succeeded with a best trial -> ``spec.trainer`` = the sweep's
``trial_config(best.params)`` with ``overrides`` on top, passed inline to ``python -m
tunix_rt.rehearsal``; ``status.sourceSweep``, ``sourceTrial`` and ``params`` record where
it came from. Not there yet or still running -> the Rehearsal waits (Pending, condition
``Progressing`` reason ``WaitingForSweep`` says why) and checks again every poll. Failed,
or succeeded without a best trial -> the Rehearsal fails with a message saying so.

Success (judged by :func:`tunix_rt.contract.phases.judge_rehearsal`): the run wrote
``eval_summary.json`` under ``<storage>/<ns>/rehearsals/<name>/`` (read with
:class:`~tunix_rt.contract.layout.RehearsalFiles`); ``status.primaryScore`` comes from
it, ``evidenceUri`` / ``bundleUri`` / ``evidenceFiles`` list the bundle, ``logUri`` its
log (:mod:`tunix_rt.controller.rehearsal_status`).

Failure: when the RayJob fails (its deadline included) and the run recorded why under
``<prefix>/failed/<UTC stamp>/failure.json`` (since this Rehearsal started), the status
message and the Failed reason are the run's own (e.g. its ``spec.timeoutSeconds``
message) and ``logUri`` points at the log uploaded next to it. Logs of failed attempts
are never listed in ``evidenceFiles``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from tunix_rt.api.common import DEFAULT_STORAGE, Phase
from tunix_rt.api.errors import ManifestError, describe, describe_pairs
from tunix_rt.api.placement import SKIP_PLACEMENT, UNSCHEDULABLE, check_placement
from tunix_rt.api.rehearsal import RehearsalSpec
from tunix_rt.contract import reasons
from tunix_rt.contract.layout import RehearsalFiles, RehearsalLayout
from tunix_rt.contract.phases import Verdict, job_status, judge_rehearsal
from tunix_rt.contract.rehearsal_evidence import read_rehearsal_evidence
from tunix_rt.controller.call import Call
from tunix_rt.controller.kind import Kind
from tunix_rt.controller.rehearsal_source import Resolved, Unresolvable, Waiting, resolve
from tunix_rt.controller.rehearsal_status import (
    Evidence,
    desired_status,
    failed_as_recorded,
    parse_time,
    score_of,
    succeeded,
)
from tunix_rt.controller.runtime import owner_of, read_in_thread
from tunix_rt.controller.status import is_terminal
from tunix_rt.controller.status_writer import write_waiting
from tunix_rt.evidence.failure import RehearsalFailure, failure_from_store
from tunix_rt.kuberay.metadata import REHEARSAL_LABEL, spec_annotation
from tunix_rt.kuberay.rayjob import build_rehearsal_rayjob
from tunix_rt.storage import Store, StoreError

SUMMARY_WAIT_KEY = "tunixrt_evidence_wait"


# ----------------------------------------------------------------------------- evidence


def read_evidence(files: RehearsalFiles, since: datetime | None = None) -> Evidence:
    """What the prefix holds (:func:`read_rehearsal_evidence`). Evidence whose run ended
    before ``since`` (this Rehearsal's start) is an earlier run's: listed in ``files``,
    never taken as this run's result."""
    found = read_rehearsal_evidence(files)
    out = Evidence(files=found.uris)
    if since is not None and _ended_before(found.manifest, since):
        return out  # an earlier run's evidence
    out.log = found.log_uri
    out.bundle = found.bundle_uri
    if found.eval_summary is not None:
        out.has_summary = True
        out.primary_score = score_of(found.eval_summary)
    return out


def _ended_before(manifest: Mapping[str, Any] | None, since: datetime) -> bool:
    """The run that wrote the manifest at the prefix ended before ``since``."""
    ended = parse_time((manifest or {}).get("end_time"))
    return ended is not None and ended < since


# ----------------------------------------------------------------------------- start


async def start(call: Call) -> None:
    """create / resume: validate, resolve the source, create or adopt the RayJob."""
    if await REHEARSAL.already_started(call):
        return  # adopted after a restart: the source sweep is not resolved again
    try:
        parsed = RehearsalSpec.model_validate(
            call.runtime.with_defaults(call.spec), context=SKIP_PLACEMENT
        )
    except ValidationError as exc:
        REHEARSAL.reject_invalid(call, describe(exc))
        return
    if unschedulable := check_placement(parsed):
        REHEARSAL.reject_invalid(call, describe_pairs(unschedulable), UNSCHEDULABLE)
        return
    outcome = await resolve(
        call.runtime, call.namespace, parsed, call.meta.get("annotations") or {}
    )
    if isinstance(outcome, Unresolvable):
        _unresolvable(call, outcome)
    elif isinstance(outcome, Waiting):
        _wait_for_sweep(call, parsed, outcome)
    else:
        await _launch(call, outcome)


def _unresolvable(call: Call, outcome: Unresolvable) -> None:
    if outcome.reason == reasons.INVALID_SPEC:
        REHEARSAL.reject_invalid(call, outcome.message)
    else:
        REHEARSAL.give_up(call, outcome.reason, outcome.message)


def _wait_for_sweep(call: Call, parsed: RehearsalSpec, waiting: Waiting) -> None:
    """Pending until the source Sweep succeeds; an Event when the reason is new."""
    write_waiting(call, waiting.message, call.generation, parsed.from_sweep)
    REHEARSAL.observe(call, Phase.PENDING)


async def _launch(call: Call, outcome: Resolved) -> None:
    try:
        manifest = build_rehearsal_rayjob(
            name=call.name,
            namespace=call.namespace,
            spec=outcome.spec,
            owner=owner_of(call.body, REHEARSAL.name),
            options=call.runtime.config.build_options(),
            source=outcome.source,
            params=outcome.params,
        )
    except ManifestError as exc:
        REHEARSAL.reject_invalid(call, str(exc))
        return
    files = _files(call, call.runtime.store(outcome.spec.storage))
    source = {
        "sourceSweep": outcome.source.sweep,
        "sourceTrial": outcome.source.trial,
        "params": outcome.params,
    }
    await REHEARSAL.launch(call, manifest, {**source, "evidenceUri": files.uri})


def _files(call: Call, store: Store) -> RehearsalFiles:
    return RehearsalFiles(store, RehearsalLayout.of(call.namespace, call.name))


# ----------------------------------------------------------------------------- follow


async def follow(call: Call) -> None:
    """timer: wait for the source Sweep, or follow the RayJob and the evidence."""
    if not call.status.get("rayJobName"):
        await start(call)
        return
    rayjob_name = str(call.status["rayJobName"])
    rayjob = await call.read_rayjob(rayjob_name)
    files = _files(call, call.runtime.store(_storage(call, rayjob)))
    read = functools.partial(read_evidence, files, parse_time(call.status.get("startTime")))
    evidence = await call.read_store(files, read, "evidence", "unreadable evidence: %s")
    if evidence is None:
        return
    waiting = job_status(rayjob) == "SUCCEEDED" and not evidence.has_summary
    waited = call.output_wait(SUMMARY_WAIT_KEY, waiting)
    grace = call.runtime.config.summary_grace_seconds
    judged = judge_rehearsal(rayjob, rayjob_name, evidence.has_summary, waited, grace, files.uri)
    verdict, log_uri = await _settle(call, files, judged, evidence)
    if verdict.finished:
        call.memo.pop(SUMMARY_WAIT_KEY, None)
    desired = desired_status(verdict, evidence, files.uri, log_uri, call.status)
    REHEARSAL.publish(call, verdict, desired)


def _storage(call: Call, rayjob: Mapping[str, Any] | None) -> str:
    """The storage the RayJob runs with (its recorded spec), else the current spec's."""
    recorded = spec_annotation(rayjob) if rayjob else None
    storage = str((recorded or {}).get("storage") or "")
    return storage or call.runtime.storage_for(call.spec, DEFAULT_STORAGE)


async def _settle(
    call: Call, files: RehearsalFiles, verdict: Verdict, evidence: Evidence
) -> tuple[Verdict, str | None]:
    """The verdict with its status message, and the log to link."""
    if verdict.phase is Phase.SUCCEEDED:
        return succeeded(verdict, evidence, files.uri), evidence.log
    if verdict.phase is Phase.FAILED:
        failure = await _own_failure(call, files.store)
        if failure is not None:
            return failed_as_recorded(verdict, failure)
    return verdict, None


async def _own_failure(call: Call, store: Store) -> RehearsalFailure | None:
    """The failure the run recorded in the store since this Rehearsal started, if any."""
    since = parse_time(call.status.get("startTime"))
    read = functools.partial(failure_from_store, store, call.namespace, call.name, since=since)
    try:
        failure: RehearsalFailure | None = await read_in_thread(read)
    except StoreError as exc:
        call.logger.warning("cannot read the run's failure record from %s: %s", store.uri, exc)
        return None
    return failure


# ----------------------------------------------------------------------------- wiring


def _not_started(status: Mapping[str, Any]) -> bool:
    return not status.get("rayJobName") and not is_terminal(status)


REHEARSAL = Kind(
    "Rehearsal",
    REHEARSAL_LABEL,
    kept="evidence files",
    spec_fields="trainer or fromSweep, overrides",
    start=start,
    follow=follow,
    restarts=_not_started,
)
