"""The Rehearsal reconcile loop: one full run of a fixed config that leaves evidence.

Lifecycle and behaviour match the Sweep's (see ``tunix_rt.controller.sweep``): Pending ->
Running -> Succeeded | Failed, Events on each transition, create-or-adopt of the RayJob
``rehearsal-<name>``, spec changes after the start are ignored visibly
(``SpecChangeIgnored``), an invalid spec fails with the field named, deletion removes the
RayJob and keeps the evidence in the store.

``fromSweep``: the operator reads the Sweep (same namespace). Succeeded with a best trial
-> ``spec.trainer`` = the sweep's ``trial_config(best.params)`` with ``overrides`` on
top, passed inline to ``python -m tunix_rt.rehearsal``; ``status.sourceSweep``,
``sourceTrial`` and ``params`` record where it came from. Not there yet or still
running -> the Rehearsal waits (Pending, condition ``Progressing`` reason
``WaitingForSweep`` says why) and checks again every poll. Failed, or succeeded without
a best trial -> the Rehearsal fails with a message saying so.

Success: the run wrote ``eval_summary.json`` under ``<storage>/<ns>/rehearsals/<name>/``;
``status.primaryScore`` comes from it, ``evidenceUri`` / ``bundleUri`` /
``evidenceFiles`` list the bundle, ``logUri`` its log.

Failure: when the RayJob fails (its deadline included) and the run recorded why under
``<prefix>/failed/<UTC stamp>/failure.json`` (since this Rehearsal started), the status
message and the Failed reason are the run's own (e.g. its ``spec.timeoutSeconds``
message) and ``logUri`` points at the log uploaded next to it. Logs of failed attempts
are never listed in ``evidenceFiles``.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, get_args

import kopf
from pydantic import BaseModel, ValidationError

from tunix_rt.api.common import DEFAULT_STORAGE, GROUP, VERSION, Phase
from tunix_rt.api.rehearsal import RehearsalSpec
from tunix_rt.api.sweep import SweepSpec
from tunix_rt.api.trainer import TrainerConfig
from tunix_rt.contract.layout import FAILED_DIR, rehearsal_prefix
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
    PROGRESSING,
    apply_status,
    condition,
    describe_validation_error,
    failed_for_invalid_spec,
    generation_of,
    is_terminal,
    phase_conditions,
    phase_of,
    post_transition,
    timestamp,
)
from tunix_rt.controller.sweep import Verdict, reason_of
from tunix_rt.evidence import LOG_NAME, MANIFEST_NAME
from tunix_rt.evidence.upload import ARCHIVE_DIR, bundle_key
from tunix_rt.kuberay.client import KubeApiError
from tunix_rt.kuberay.errors import ManifestError
from tunix_rt.kuberay.rayjob import REHEARSAL_LABEL, build_rehearsal_rayjob, spec_annotation
from tunix_rt.rehearsal.failure import RehearsalFailure, failure_from_store
from tunix_rt.storage import Store, StoreError

KIND = "Rehearsal"
PLURAL = "rehearsals"
WAITING_FOR_SWEEP = "WaitingForSweep"
EVAL_SUMMARY = "eval_summary.json"
SUMMARY_WAIT_KEY = "tunixrt_evidence_wait"


# ----------------------------------------------------------------------------- overrides


class OverrideError(ValueError):
    """Overrides that do not apply; the message names ``spec.overrides.<field>``."""


def _field_for(model: type[BaseModel], key: str) -> tuple[str, Any] | None:
    for name, info in model.model_fields.items():
        if key in (name, info.alias):
            return (info.alias or name), info.annotation
    return None


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    for candidate in (annotation, *get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _merge(
    model: type[BaseModel], base: dict[str, Any], overrides: Mapping[str, Any], path: str
) -> dict[str, Any]:
    out = dict(base)
    for key, value in overrides.items():
        found = _field_for(model, key)
        if found is None:
            known = sorted(info.alias or name for name, info in model.model_fields.items())
            raise OverrideError(f"{path}.{key}: unknown trainer field; use one of {known}")
        wire, annotation = found
        nested = _nested_model(annotation)
        if nested is not None and isinstance(value, Mapping):
            out[wire] = _merge(nested, dict(out.get(wire) or {}), value, f"{path}.{key}")
        else:
            out[wire] = value
    return out


def apply_overrides(config: TrainerConfig, overrides: Mapping[str, Any] | None) -> TrainerConfig:
    """``config`` with ``overrides`` (either spelling, nested sections merged) re-validated;
    errors name ``spec.overrides.<field>``."""
    if not overrides:
        return config
    merged = _merge(TrainerConfig, config.to_wire(), overrides, "spec.overrides")
    try:
        return TrainerConfig.model_validate(merged)
    except ValidationError as exc:
        raise OverrideError(describe_validation_error(exc, "spec.overrides")) from exc


# ----------------------------------------------------------------------------- source


@dataclass
class Resolved:
    spec: RehearsalSpec
    source_sweep: str | None = None
    source_trial: str | None = None
    params: dict[str, Any] | None = None


@dataclass
class Waiting:
    message: str


@dataclass
class Unresolvable:
    reason: str
    message: str


async def resolve(
    runtime: Runtime, namespace: str, spec: RehearsalSpec
) -> Resolved | Waiting | Unresolvable:
    """The spec to run, with ``trainer`` inline (from the source Sweep's best trial)."""
    base = spec
    try:
        if spec.trainer is not None:
            trainer = apply_overrides(spec.trainer, spec.overrides)
            return Resolved(base.model_copy(update={"trainer": trainer, "overrides": None}))
    except OverrideError as exc:
        return Unresolvable(INVALID_SPEC, str(exc))
    sweep_name = str(spec.from_sweep)
    try:
        sweep = await runtime.rayjobs.get_sweep(namespace, sweep_name)
    except KubeApiError as exc:
        raise kopf.TemporaryError(f"reading Sweep {sweep_name}: {exc}", delay=10) from exc
    if sweep is None:
        return Waiting(f"Sweep {sweep_name} not found in namespace {namespace}; waiting for it")
    sweep_status = sweep.get("status") or {}
    phase = sweep_status.get("phase") or Phase.PENDING.value
    if phase == Phase.FAILED.value:
        why = sweep_status.get("message") or "no message"
        return Unresolvable(
            "SourceSweepFailed",
            f"Sweep {sweep_name} failed ({why}); there is no best trial to rehearse",
        )
    if phase != Phase.SUCCEEDED.value:
        progress = sweep_status.get("trialsProgress")
        extra = f", {progress} trials" if progress else ""
        return Waiting(
            f"Sweep {sweep_name} is {phase}{extra}; the Rehearsal starts when it succeeds"
        )
    best = sweep_status.get("bestTrial") or {}
    if not best.get("id"):
        return Unresolvable(
            "NoBestTrial",
            f"Sweep {sweep_name} succeeded without a best trial (no trial "
            "reported a score); nothing to rehearse",
        )
    try:
        sweep_spec = SweepSpec.model_validate(sweep.get("spec") or {})
    except ValidationError as exc:
        return Unresolvable(
            "SourceSweepInvalid",
            f"Sweep {sweep_name} has an invalid spec: {describe_validation_error(exc)}",
        )
    params = dict(best.get("params") or {})
    try:
        trainer = apply_overrides(sweep_spec.trial_config(params), spec.overrides)
    except OverrideError as exc:
        return Unresolvable(INVALID_SPEC, str(exc))
    except (ValidationError, ValueError) as exc:
        return Unresolvable(
            "SourceSweepInvalid",
            f"best trial {best['id']} of Sweep {sweep_name} has params that do "
            f"not apply: {str(exc).splitlines()[0]}",
        )
    resolved = base.model_copy(update={"trainer": trainer, "from_sweep": None, "overrides": None})
    return Resolved(resolved, sweep_name, str(best["id"]), params)


# ----------------------------------------------------------------------------- evidence


@dataclass
class Evidence:
    files: list[str] = field(default_factory=list)
    primary_score: float | None = None
    has_summary: bool = False
    bundle: str | None = None
    log: str | None = None
    problems: list[str] = field(default_factory=list)


def read_evidence(
    store: Store, namespace: str, name: str, since: datetime | None = None
) -> Evidence:
    """What the prefix holds. Evidence whose run ended before ``since`` (this Rehearsal's
    start) is an earlier run's: listed in ``files``, never taken as this run's result."""
    prefix = rehearsal_prefix(namespace, name)
    out = Evidence()
    aside = (f"{prefix}/{FAILED_DIR}/", f"{prefix}/{ARCHIVE_DIR}/")
    keys = [k for k in store.list(prefix + "/") if not k.startswith(aside)]
    out.files = [store.uri_for(k) for k in keys]
    if since is not None and f"{prefix}/{MANIFEST_NAME}" in keys:
        try:
            ended = _parse_time((store.read_json(f"{prefix}/{MANIFEST_NAME}") or {})["end_time"])
        except (StoreError, ValueError, KeyError, TypeError) as exc:
            out.problems.append(f"{store.uri_for(f'{prefix}/{MANIFEST_NAME}')}: {exc}")
            ended = None
        if ended is not None and ended < since:
            return out  # an earlier run's evidence
    if f"{prefix}/{LOG_NAME}" in keys:
        out.log = store.uri_for(f"{prefix}/{LOG_NAME}")
    bundle = bundle_key(keys, prefix)
    if bundle is not None:
        out.bundle = store.uri_for(bundle)
    summary_key = f"{prefix}/{EVAL_SUMMARY}"
    if summary_key in keys:
        try:
            summary = store.read_json(summary_key)
        except (StoreError, ValueError) as exc:
            out.problems.append(f"{store.uri_for(summary_key)}: {exc}")
            return out
        out.has_summary = True
        score = summary.get("primary_score") if isinstance(summary, dict) else None
        if isinstance(score, int | float):
            out.primary_score = float(score)
    return out


def _parse_time(value: object) -> datetime | None:
    """An RFC 3339 time (status, manifests) as an aware datetime; None when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def judge(
    rayjob: Mapping[str, Any] | None,
    rayjob_name: str,
    evidence: Evidence,
    waited: float,
    grace: float,
    uri: str,
) -> Verdict:
    if rayjob is None:
        if evidence.has_summary:
            return Verdict(Phase.SUCCEEDED, "Succeeded")
        return Verdict(
            Phase.FAILED,
            "RayJobLost",
            f"RayJob {rayjob_name} was deleted before the rehearsal finished",
        )
    job = rayjob.get("status") or {}
    job_status = str(job.get("jobStatus") or "").upper()
    deployment = str(job.get("jobDeploymentStatus") or "")
    if job_status == "SUCCEEDED":
        if evidence.has_summary:
            return Verdict(Phase.SUCCEEDED, "Succeeded")
        if waited < grace:
            return Verdict(
                Phase.RUNNING,
                "WaitingForEvidence",
                "the Ray job succeeded; waiting for the evidence bundle",
            )
        return Verdict(
            Phase.FAILED,
            "NoEvidence",
            f"RayJob {rayjob_name} succeeded but left no {EVAL_SUMMARY} in {uri}",
        )
    if job_status in ("FAILED", "STOPPED") or deployment in ("Failed", "ValidationFailed"):
        default = "RayJobStopped" if job_status == "STOPPED" else "RayJobFailed"
        message = str(job.get("message") or "").strip() or (
            f"RayJob {rayjob_name} {job_status or deployment}"
        )
        return Verdict(Phase.FAILED, reason_of(job.get("reason"), default), message)
    if job_status == "RUNNING" or deployment == "Running":
        return Verdict(Phase.RUNNING, "Running", f"RayJob {rayjob_name} is running")
    return Verdict(
        Phase.PENDING,
        "RayClusterStarting",
        f"RayJob {rayjob_name} is {deployment or 'initializing'}",
    )


# ----------------------------------------------------------------------------- handlers


def _waiting(status: Mapping[str, Any]) -> bool:
    cond = condition(status.get("conditions") or [], PROGRESSING)
    return bool(cond and cond.get("reason") == WAITING_FOR_SWEEP)


async def start_rehearsal(
    body: kopf.Body,
    meta: kopf.Meta,
    spec: kopf.Spec,
    status: kopf.Status,
    patch: kopf.Patch,
    memo: kopf.Memo,
    logger: kopf.Logger,
    **_: Any,
) -> None:
    """create / resume: validate, resolve the source, create or adopt the RayJob."""
    runtime = runtime_of(memo)
    with runtime.metrics.time("rehearsal", "start"):
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
    if await nothing_to_start(runtime, body, status, "rehearsal"):
        return  # adopted after a restart: the source sweep is not resolved again
    namespace, name = str(meta["namespace"]), str(meta["name"])
    generation = generation_of(meta)
    try:
        parsed = RehearsalSpec.model_validate(runtime.with_defaults(spec))
    except ValidationError as exc:
        _invalid(
            runtime,
            body,
            patch,
            status,
            describe_validation_error(exc),
            generation,
            namespace,
            name,
            logger,
        )
        return
    outcome = await resolve(runtime, namespace, parsed)
    old = phase_of(status)
    conditions = clear_spec_change(list(status.get("conditions") or []))
    if isinstance(outcome, Unresolvable):
        if outcome.reason == INVALID_SPEC:
            _invalid(
                runtime, body, patch, status, outcome.message, generation, namespace, name, logger
            )
        else:
            fail(
                body,
                patch,
                status,
                reason=outcome.reason,
                message=outcome.message,
                generation=generation,
            )
            runtime.metrics.observe_phase("rehearsal", namespace, name, Phase.FAILED.value)
        return
    if isinstance(outcome, Waiting):
        desired: dict[str, Any] = {
            "phase": Phase.PENDING.value,
            "message": outcome.message,
            "conditions": phase_conditions(
                conditions, Phase.PENDING, WAITING_FOR_SWEEP, outcome.message, generation
            ),
            "observedGeneration": generation,
            "sourceSweep": parsed.from_sweep,
        }
        if apply_status(patch, status, desired) and (
            old is not Phase.PENDING or status.get("message") != outcome.message
        ):
            kopf.info(body, reason=WAITING_FOR_SWEEP, message=outcome.message)
        runtime.metrics.observe_phase("rehearsal", namespace, name, Phase.PENDING.value)
        return

    try:
        manifest = build_rehearsal_rayjob(
            name=name,
            namespace=namespace,
            spec=outcome.spec,
            owner=owner_of(body, KIND),
            options=runtime.config.build_options(),
            source_sweep=outcome.source_sweep,
            source_trial=outcome.source_trial,
            params=outcome.params,
        )
    except ManifestError as exc:
        _invalid(runtime, body, patch, status, str(exc), generation, namespace, name, logger)
        return
    ensured = await ensure_rayjob(runtime, body, patch, status, manifest, "rehearsal", generation)
    if ensured is None:
        runtime.metrics.observe_phase("rehearsal", namespace, name, Phase.FAILED.value)
        return
    rayjob_name = manifest["metadata"]["name"]
    store = runtime.store(outcome.spec.storage)
    message = f"RayJob {rayjob_name} {ensured.action}; waiting for the Ray cluster"
    desired = {
        "phase": Phase.PENDING.value,
        "message": message,
        "conditions": phase_conditions(
            conditions,
            Phase.PENDING,
            "RayJobCreated" if ensured.action == "created" else "RayJobAdopted",
            message,
            generation,
        ),
        "observedGeneration": generation,
        "rayJobName": rayjob_name,
        "sourceSweep": outcome.source_sweep,
        "sourceTrial": outcome.source_trial,
        "params": outcome.params,
        "evidenceUri": store.uri_for(rehearsal_prefix(namespace, name)),
        "startTime": status.get("startTime") or timestamp(),
        "completionTime": None,
    }
    apply_status(patch, status, {k: v for k, v in desired.items() if v is not None or k in status})
    post_transition(body, old, Phase.PENDING, message)
    runtime.metrics.observe_phase("rehearsal", namespace, name, Phase.PENDING.value)


def _invalid(
    runtime: Runtime,
    body: kopf.Body,
    patch: kopf.Patch,
    status: Mapping[str, Any],
    message: str,
    generation: int | None,
    namespace: str,
    name: str,
    logger: kopf.Logger | logging.Logger,
) -> None:
    logger.warning("invalid Rehearsal spec: %s", message)
    if not (failed_for_invalid_spec(status) and status.get("message") == message):
        fail(body, patch, status, reason=INVALID_SPEC, message=message, generation=generation)
    runtime.metrics.observe_phase("rehearsal", namespace, name, Phase.FAILED.value)


async def follow_rehearsal(
    body: kopf.Body,
    meta: kopf.Meta,
    spec: kopf.Spec,
    status: kopf.Status,
    patch: kopf.Patch,
    memo: kopf.Memo,
    logger: kopf.Logger,
    **_: Any,
) -> None:
    """timer: wait for the source Sweep, or follow the RayJob and the evidence."""
    runtime = runtime_of(memo)
    current = plain(status)
    with runtime.metrics.time("rehearsal", "follow"):
        if not current.get("rayJobName"):
            await _start(runtime, body, meta, spec, current, patch, logger)
        else:
            await _follow(runtime, body, meta, current, patch, memo, logger)


async def _follow(
    runtime: Runtime,
    body: kopf.Body,
    meta: Mapping[str, Any],
    status: dict[str, Any],
    patch: kopf.Patch,
    memo: kopf.Memo,
    logger: kopf.Logger,
) -> None:
    namespace, name = str(meta["namespace"]), str(meta["name"])
    rayjob_name = str(status["rayJobName"])
    try:
        rayjob = await runtime.rayjobs.get(namespace, rayjob_name)
    except KubeApiError as exc:
        raise kopf.TemporaryError(f"reading RayJob {rayjob_name}: {exc}", delay=10) from exc
    recorded = spec_annotation(rayjob) if rayjob else None
    storage = str((recorded or {}).get("storage") or "")
    if not storage:
        storage = runtime.storage_for(body.get("spec") or {}, DEFAULT_STORAGE)
    store = runtime.store(storage)
    try:
        evidence: Evidence = await read_in_thread(
            read_evidence, store, namespace, name, _parse_time(status.get("startTime"))
        )
    except StoreError as exc:
        logger.warning("cannot read evidence from %s: %s (retrying)", store.uri, exc)
        return
    for problem in evidence.problems:
        logger.warning("unreadable evidence: %s", problem)
    job_status = str(((rayjob or {}).get("status") or {}).get("jobStatus") or "").upper()
    waited = 0.0
    if job_status == "SUCCEEDED" and not evidence.has_summary:
        waited = time.monotonic() - memo.setdefault(SUMMARY_WAIT_KEY, time.monotonic())
    uri = store.uri_for(rehearsal_prefix(namespace, name))
    verdict = judge(
        rayjob, rayjob_name, evidence, waited, runtime.config.summary_grace_seconds, uri
    )
    old = phase_of(status)
    generation = status.get("observedGeneration")
    message = verdict.message
    log_uri: str | None = None
    if verdict.phase is Phase.SUCCEEDED:
        score = "n/a" if evidence.primary_score is None else f"{evidence.primary_score:.4f}"
        message = f"rehearsal finished: primary_score {score}; evidence in {uri}"
        log_uri = evidence.log
    elif verdict.phase is Phase.FAILED:
        failure = await _own_failure(store, namespace, name, status, logger)
        if failure is not None:
            log_uri = failure.log_uri or failure.failure_uri
            message = f"{failure.message} (log: {log_uri})"
            verdict = Verdict(Phase.FAILED, reason_of(failure.reason, verdict.reason), message)
    desired: dict[str, Any] = {
        "phase": verdict.phase.value,
        "message": message,
        "conditions": phase_conditions(
            status.get("conditions") or [], verdict.phase, verdict.reason, message, generation
        ),
        "evidenceUri": uri,
        "evidenceFiles": evidence.files,
    }
    # Only a succeeded run shows a score and a bundle: until then (and after a failure)
    # what sits at the prefix is an earlier run's evidence, kept and listed in
    # evidenceFiles but not this run's result.
    succeeded = verdict.phase is Phase.SUCCEEDED
    desired["primaryScore"] = evidence.primary_score if succeeded else None
    desired["bundleUri"] = evidence.bundle if succeeded else None
    if log_uri:
        desired["logUri"] = log_uri
    if verdict.phase in (Phase.SUCCEEDED, Phase.FAILED):
        desired["completionTime"] = status.get("completionTime") or timestamp()
        memo.pop(SUMMARY_WAIT_KEY, None)
    apply_status(patch, status, desired)
    if old is not verdict.phase:
        post_transition(
            body,
            old,
            verdict.phase,
            message,
            verdict.reason if verdict.phase is Phase.FAILED else None,
        )
    runtime.metrics.observe_phase("rehearsal", namespace, name, verdict.phase.value)


async def _own_failure(
    store: Store,
    namespace: str,
    name: str,
    status: Mapping[str, Any],
    logger: kopf.Logger | logging.Logger,
) -> RehearsalFailure | None:
    """The failure the run recorded in the store since this Rehearsal started, if any."""
    since = _parse_time(status.get("startTime"))
    read = functools.partial(failure_from_store, store, namespace, name, since=since)
    try:
        failure: RehearsalFailure | None = await read_in_thread(read)
    except StoreError as exc:
        logger.warning("cannot read the run's failure record from %s: %s", store.uri, exc)
        return None
    return failure


async def rehearsal_spec_changed(
    body: kopf.Body,
    meta: kopf.Meta,
    spec: kopf.Spec,
    status: kopf.Status,
    patch: kopf.Patch,
    memo: kopf.Memo,
    logger: kopf.Logger,
    **_: Any,
) -> None:
    """update of spec: re-validate an invalid or still-waiting Rehearsal; else ignore it."""
    runtime = runtime_of(memo)
    current = plain(status)
    with runtime.metrics.time("rehearsal", "update"):
        waiting = not current.get("rayJobName") and not is_terminal(current)
        if failed_for_invalid_spec(current) or waiting:
            await _start(runtime, body, meta, spec, current, patch, logger)
        else:
            ignore_spec_change(body, patch, current, KIND, generation_of(meta))


async def delete_rehearsal(
    body: kopf.Body,
    meta: kopf.Meta,
    status: kopf.Status,
    memo: kopf.Memo,
    logger: kopf.Logger,
    **_: Any,
) -> None:
    """delete: remove the RayJob (ours only); the evidence stays in the store."""
    await delete_child_rayjob(
        runtime_of(memo),
        body,
        meta,
        status,
        logger,
        kind="rehearsal",
        label=REHEARSAL_LABEL,
        kept="evidence files",
    )


# ----------------------------------------------------------------------------- wiring


def _active(status: kopf.Status, **_: Any) -> bool:
    if is_terminal(status):
        return False
    return bool(status.get("rayJobName")) or _waiting(status)


def register(registry: kopf.OperatorRegistry, poll_seconds: float) -> None:
    """Attach the Rehearsal handlers to a registry."""
    kopf.on.resume(GROUP, VERSION, PLURAL, registry=registry, backoff=10)(start_rehearsal)
    kopf.on.create(GROUP, VERSION, PLURAL, registry=registry, backoff=10)(start_rehearsal)
    kopf.on.update(GROUP, VERSION, PLURAL, field="spec", registry=registry, backoff=10)(
        rehearsal_spec_changed
    )
    kopf.timer(
        GROUP,
        VERSION,
        PLURAL,
        registry=registry,
        interval=poll_seconds,
        backoff=max(poll_seconds, 1.0),
        when=_active,
    )(follow_rehearsal)
    kopf.on.delete(GROUP, VERSION, PLURAL, registry=registry, backoff=10)(delete_rehearsal)
