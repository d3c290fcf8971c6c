"""THE rehearsal run: resolve a fixed config, train and evaluate it, leave evidence.

    plan  = plan_from_file("rehearsal.yaml")            # or plan_from_spec(spec, ...)
    result = run_rehearsal(plan)                        # trains (JAX), writes, packages, uploads
    result.primary_score, result.evidence_uri, result.bundle_uri, result.to_status()

Steps: config (inline, a Sweep's best trial from its summary in the store, or a promoted
config file) → ``tunix_rt.train.run_trial`` with its log captured (tee'd to
kaggle_output_log.txt with timestamps) → the evidence folder (run_manifest.json,
eval_summary.json, eval_rows.jsonl, kaggle_output_log.txt, report.html,
sweep_summary.json for a promoted run, SHA256SUMS) → the reproducible zip under
``submission/`` → upload of all of it to ``<storage>/<namespace>/rehearsals/<name>/``.

``spec.timeoutSeconds`` (or ``--timeout-seconds``) becomes the trainer's deadline,
counted from the start of the run. A run that fails (the trainer raised, the deadline
passed, bad evidence, a failed upload) uploads its log and failure.json to
``<prefix>/failed/<UTC stamp>/`` (see ``tunix_rt.rehearsal.failure``), leaves an earlier
good bundle at the prefix alone, and raises RehearsalError saying where the log went.

JAX is imported only when a run starts (``tunix_rt.train``), so the operator can import
this module for ``result_from_store`` without the training stack.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from pydantic import Field, ValidationError

from tunix_rt.api.base import ApiModel
from tunix_rt.api.common import DEFAULT_STORAGE, Phase
from tunix_rt.api.errors import ManifestError
from tunix_rt.api.manifests import decode_text, read_document
from tunix_rt.api.names import SOURCE_SWEEP_ANNOTATION, SOURCE_TRIAL_ANNOTATION
from tunix_rt.api.rehearsal import EvidenceOptions, Rehearsal, RehearsalSpec, RehearsalStatus
from tunix_rt.api.trainer import TrainerConfig
from tunix_rt.api.trial import SweepResult
from tunix_rt.contract.exits import ExitCode
from tunix_rt.contract.layout import EVAL_SUMMARY_FILE as SUMMARY_NAME
from tunix_rt.contract.layout import (
    FAILED_DIR,
    LOCAL_NAMESPACE,
    SUBMISSION_DIR,
    RehearsalFiles,
    RehearsalLayout,
    SweepLayout,
    bundle_key,
)
from tunix_rt.contract.layout import FAILURE_FILE as FAILURE_NAME
from tunix_rt.contract.layout import MANIFEST_FILE as MANIFEST_NAME
from tunix_rt.contract.layout import RUN_LOG_FILE as LOG_NAME
from tunix_rt.evidence import (
    REPORT_NAME,
    ROWS_NAME,
    SUMS_NAME,
    SWEEP_SUMMARY_NAME,
    ChecksumError,
    EvidenceError,
    PackageError,
    build_eval_summary,
    build_run_manifest,
    build_zip,
    commit_info,
    render_report,
    verify_zip,
    write_sums,
)
from tunix_rt.evidence.manifest import CommitInfo, canonical_json, iso
from tunix_rt.evidence.summary import row_dict, rows_jsonl
from tunix_rt.evidence.upload import publish_folder
from tunix_rt.rehearsal.failure import (
    BAD_DATASET_REASON,
    BAD_EVIDENCE_REASON,
    ERROR_REASON,
    INTERRUPTED_REASON,
    TIMEOUT_REASON,
    TRAINING_FAILED_REASON,
    UPLOAD_FAILED_REASON,
    RehearsalFailure,
    failure_schema_errors,
    upload_failure,
)
from tunix_rt.scoring import PRIMARY_SCORE, compute_primary_score
from tunix_rt.storage import Store, StoreError, StoreNotFoundError, redact_uri, scrub

Trainer = Callable[..., Any]
"""``run_trial(config, *, report=None, checkpoint_dir=None, log=None[, deadline]) ->
TrainResult``; ``deadline`` (a ``time.monotonic()`` instant) is passed only when the run
has a timeout, and a trainer that stops at it raises a TimeoutError (``step`` attribute:
the steps reached), as ``tunix_rt.train.TrainingTimeout`` does."""

TIMEOUT_FIELD = "spec.timeoutSeconds"


class RehearsalError(RuntimeError):
    """The rehearsal cannot run or did not finish; the message says why and where.

    For a run that started and failed: ``reason`` (CamelCase: TrainingTimeout,
    TrainingFailed, BadEvidence, UploadFailed, RehearsalError), ``step`` (train steps
    reached, when known), ``log_uri`` / ``failure_uri`` (where its log and failure.json
    went; None when that upload failed) and ``local_log`` (the log on this machine when
    the upload failed).
    """

    def __init__(self, message: str, *, reason: str = ERROR_REASON, step: int | None = None):
        super().__init__(message)
        self.reason = reason
        self.step = step
        self.log_uri: str | None = None
        self.failure_uri: str | None = None
        self.local_log: str | None = None


# --------------------------------------------------------------------------- the plan


@dataclass
class RehearsalPlan:
    """Everything a run needs, resolved: the exact config and where it came from."""

    name: str
    namespace: str
    storage: str
    config: TrainerConfig
    config_path: str
    config_source_sha256: str | None = None
    overrides: dict[str, Any] | None = None
    evidence: EvidenceOptions = field(default_factory=EvidenceOptions)
    source_sweep: str | None = None
    source_trial: str | None = None
    source_params: dict[str, Any] | None = None
    source_score: float | None = None
    sweep_summary: dict[str, Any] | None = None
    """The source sweep's SweepResult (snake_case dict), for the report."""
    sweep_summary_bytes: bytes | None = None
    """The summary exactly as stored, copied into the evidence as sweep_summary.json."""
    summary_uri: str | None = None
    notes: list[str] = field(default_factory=list)
    timeout_seconds: float | None = None
    """Wall-clock limit of the run from its start (the trainer's deadline); None: none."""
    timeout_field: str = TIMEOUT_FIELD
    """Where the limit came from, for messages: spec.timeoutSeconds or --timeout-seconds."""

    @property
    def layout(self) -> RehearsalLayout:
        return RehearsalLayout.of(self.namespace, self.name)

    @property
    def prefix(self) -> str:
        return self.layout.prefix

    def source(self) -> dict[str, Any] | None:
        if not (self.source_sweep or self.source_trial):
            return None
        return {
            "sweep": self.source_sweep,
            "trial": self.source_trial,
            "params": self.source_params,
            "trial_primary_score": self.source_score,
            "summary_uri": self.summary_uri,
        }


def _overridden(config: TrainerConfig, overrides: Mapping[str, Any] | None) -> TrainerConfig:
    """``TrainerConfig.with_overrides`` (the one way overrides apply, as in admission); a
    bad override is a RehearsalError naming ``spec.overrides.<key>``."""
    try:
        return config.with_overrides(overrides)
    except ManifestError as exc:
        raise RehearsalError(str(exc)) from None


def _sweep_summary(store: Store, namespace: str, sweep: str) -> tuple[SweepResult, str, bytes]:
    """The source sweep's summary, its URI, and its bytes as stored (copied into the
    evidence unchanged, so read once)."""
    key = SweepLayout.of(namespace, sweep).summary_key
    try:
        raw = store.read_bytes(key)
    except StoreNotFoundError:
        raise RehearsalError(
            f"sweep {sweep!r} has no summary at {store.uri_for(key)}: run the sweep first "
            f"(tunix-rt sweep run …) or check --storage/--namespace"
        ) from None
    try:
        return SweepResult.model_validate_json(raw), store.uri_for(key), raw
    except ValidationError as exc:
        raise RehearsalError(f"{store.uri_for(key)} is not a sweep summary: {exc}") from None


@dataclass
class _Source:
    """Where a plan's config comes from: inline, or a sweep's best trial (its summary)."""

    config: TrainerConfig
    sweep: str | None
    trial: str | None
    summary: SweepResult | None = None
    summary_uri: str | None = None
    summary_bytes: bytes | None = None
    notes: list[str] = field(default_factory=list)

    def trial_record(self) -> tuple[dict[str, Any] | None, float | None]:
        """(params, primary_score) of the source trial, when the summary has it."""
        summary = self.summary
        if summary is None or not self.trial:
            return None, None
        params: dict[str, Any] | None = None
        score: float | None = None
        for trial in summary.trials:
            if trial.trial_id == self.trial:
                params, score = dict(trial.params), trial.primary_score
        if params is None and self.trial == summary.best_trial_id:
            params, score = dict(summary.best_params or {}), summary.primary_score
        return params, score


def _from_sweep(
    store: Store, namespace: str, sweep: str, source_sweep: str | None, source_trial: str | None
) -> _Source:
    """The sweep's base config with its best trial's params (``spec.fromSweep``)."""
    summary, summary_uri, summary_bytes = _sweep_summary(store, namespace, sweep)
    if summary.best_trial_id is None or summary.best_params is None:
        raise RehearsalError(f"sweep {sweep!r} has no best trial yet ({summary_uri})")
    try:
        # base_config is the sweep's trial_config({}) (smoke cap included): the same
        # config the operator builds with SweepSpec.trial_config(best params).
        base = TrainerConfig.model_validate(summary.base_config)
        config = base.with_params(summary.best_params)
        if config.max_steps != base.max_steps:  # a searched maxSteps is capped too
            config = config.with_params({"max_steps": base.max_steps})
    except (ValidationError, ValueError) as exc:
        raise RehearsalError(f"{summary_uri}: cannot rebuild the trainer config: {exc}") from None
    trial = source_trial or summary.best_trial_id
    return _Source(
        config=config,
        sweep=source_sweep or sweep,
        trial=trial,
        summary=summary,
        summary_uri=summary_uri,
        summary_bytes=summary_bytes,
        notes=[f"config: sweep {sweep} base config + best trial {trial}"],
    )


def _inline(
    store: Store,
    namespace: str,
    config: TrainerConfig,
    source_sweep: str | None,
    source_trial: str | None,
) -> _Source:
    """``spec.trainer``; a named source sweep's summary is read for the report, if it can."""
    source = _Source(config=config, sweep=source_sweep, trial=source_trial)
    if source_sweep:
        try:
            source.summary, source.summary_uri, source.summary_bytes = _sweep_summary(
                store, namespace, source_sweep
            )
        except (RehearsalError, StoreError) as exc:
            source.notes.append(f"sweep summary unavailable, report without trial table: {exc}")
    return source


def plan_from_spec(
    spec: RehearsalSpec,
    *,
    name: str,
    namespace: str = LOCAL_NAMESPACE,
    storage: str | None = None,
    config_path: str = "<inline>",
    config_source_sha256: str | None = None,
    source_sweep: str | None = None,
    source_trial: str | None = None,
    max_steps: int | None = None,
    store: Store | None = None,
    timeout_seconds: float | None = None,
) -> RehearsalPlan:
    """Resolve a RehearsalSpec to a plan (reads the sweep summary from the store if needed).

    ``timeout_seconds`` overrides ``spec.timeoutSeconds`` (the CLI's --timeout-seconds).
    """
    if timeout_seconds is not None and not timeout_seconds > 0:
        raise RehearsalError(f"--timeout-seconds must be positive, not {timeout_seconds}")
    storage_uri = storage or spec.storage or DEFAULT_STORAGE
    store = store or Store(storage_uri)
    if spec.from_sweep is not None:
        source = _from_sweep(store, namespace, spec.from_sweep, source_sweep, source_trial)
    else:
        assert spec.trainer is not None
        source = _inline(store, namespace, spec.trainer, source_sweep, source_trial)
    overrides = dict(spec.overrides or {})
    config = _overridden(source.config, overrides)
    if max_steps is not None:
        config = _overridden(config, {"maxSteps": max_steps})
        overrides["maxSteps"] = max_steps
    source_params, source_score = source.trial_record()
    return RehearsalPlan(
        name=name,
        namespace=namespace,
        storage=storage_uri,
        config=config,
        config_path=config_path,
        config_source_sha256=config_source_sha256,
        overrides=overrides or None,
        evidence=spec.evidence,
        source_sweep=source.sweep,
        source_trial=source.trial,
        source_params=source_params,
        source_score=source_score,
        sweep_summary=source.summary.model_dump(mode="json") if source.summary else None,
        sweep_summary_bytes=source.summary_bytes,
        summary_uri=source.summary_uri,
        notes=source.notes,
        timeout_seconds=timeout_seconds if timeout_seconds is not None else spec.timeout_seconds,
        timeout_field="--timeout-seconds" if timeout_seconds is not None else TIMEOUT_FIELD,
    )


_COMMENT_SOURCE = re.compile(
    r"(?:tunixrt\.io/)?source[-_ ](sweep|trial)\s*[:=]\s*([A-Za-z0-9._-]+)", re.IGNORECASE
)
_COMMENT_PROSE = re.compile(
    r"\bsweep\s+['\"]?([a-z0-9][-a-z0-9./]*)['\"]?.{0,40}?\btrial\s+['\"]?([A-Za-z0-9._-]+)",
    re.IGNORECASE,
)


def source_from_comments(text: str) -> tuple[str | None, str | None]:
    """(sweep, trial) named in the leading '#' comments of a promoted config file."""
    comments = "\n".join(
        line.lstrip()[1:] for line in text.splitlines() if line.lstrip().startswith("#")
    )
    found = {kind.lower(): value for kind, value in _COMMENT_SOURCE.findall(comments)}
    if "sweep" in found or "trial" in found:
        return found.get("sweep"), found.get("trial")
    prose = _COMMENT_PROSE.search(comments)
    if prose:
        # "sweep local/sweep-smoke" (namespace/name, as tunix-rt promote writes) -> the name
        sweep = prose.group(1).rstrip("./").rsplit("/", 1)[-1]
        return sweep or None, prose.group(2).rstrip(".")
    return None, None


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return slug[:63].strip("-") or "rehearsal"


def plan_from_file(
    path: str | Path,
    *,
    storage: str | None = None,
    namespace: str | None = None,
    name: str | None = None,
    max_steps: int | None = None,
    source_sweep: str | None = None,
    source_trial: str | None = None,
    timeout_seconds: float | None = None,
) -> RehearsalPlan:
    """A plan from a Rehearsal manifest (YAML/JSON) or a promoted TrainerConfig file;
    ``timeout_seconds`` overrides the manifest's ``spec.timeoutSeconds``."""
    source = Path(path)
    try:
        raw = source.read_bytes()
    except OSError as exc:
        raise RehearsalError(f"cannot read {source}: {exc.strerror or exc}") from None
    try:
        doc = read_document(raw, str(source))
    except ManifestError as exc:
        raise RehearsalError(f"{source} is not YAML/JSON: {exc.reason}") from None
    if not isinstance(doc, dict):
        raise RehearsalError(f"{source}: expected a Rehearsal manifest or a trainer config")
    if doc.get("kind") == "Rehearsal" or "spec" in doc:
        spec, default_name, named_sweep, named_trial = _manifest_parts(source, doc)
    else:
        spec, default_name = _config_spec(source, doc, storage), _slug(source.stem)
        named_sweep, named_trial = source_from_comments(decode_text(raw, str(source)))
    return plan_from_spec(
        spec,
        name=name or default_name,
        namespace=namespace or LOCAL_NAMESPACE,
        storage=storage,
        config_path=str(path),
        config_source_sha256=hashlib.sha256(raw).hexdigest(),
        source_sweep=source_sweep or named_sweep,
        source_trial=source_trial or named_trial,
        max_steps=max_steps,
        timeout_seconds=timeout_seconds,
    )


def _manifest_parts(
    source: Path, doc: dict[str, Any]
) -> tuple[RehearsalSpec, str, str | None, str | None]:
    """(spec, name, source sweep, source trial) of a Rehearsal manifest."""
    try:
        manifest = Rehearsal.model_validate(doc)
    except ValidationError as exc:
        raise RehearsalError(f"{source}: invalid Rehearsal: {_short(exc)}") from None
    annotations = manifest.metadata.annotations or {}
    return (
        manifest.spec,
        manifest.metadata.name,
        annotations.get(SOURCE_SWEEP_ANNOTATION),
        annotations.get(SOURCE_TRIAL_ANNOTATION),
    )


def _config_spec(source: Path, doc: dict[str, Any], storage: str | None) -> RehearsalSpec:
    """The spec of a promoted trainer config file (``tunix-rt promote``)."""
    try:
        config = TrainerConfig.model_validate(doc)
    except ValidationError as exc:
        raise RehearsalError(f"{source}: invalid trainer config: {_short(exc)}") from None
    return RehearsalSpec(trainer=config, storage=storage or DEFAULT_STORAGE)


def _short(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()[:10]
    )


# --------------------------------------------------------------------------- the result


class RehearsalResult(ApiModel):
    """What a finished rehearsal reports: the score and where its evidence lives."""

    name: str
    namespace: str
    phase: Phase = Phase.SUCCEEDED
    message: str | None = None
    primary_score: float | None = None
    metrics: dict[str, float | None] = Field(default_factory=dict)
    steps: int = 0
    wall_seconds: float = 0.0
    evidence_uri: str = Field(description="Store URI of the evidence folder.")
    bundle_uri: str | None = Field(None, description="Store URI of the submission zip.")
    bundle_name: str | None = None
    evidence_files: list[str] = Field(default_factory=list, description="URIs, sorted.")
    log_uri: str | None = Field(None, description="Store URI of kaggle_output_log.txt.")
    local_dir: str | None = Field(None, description="Local evidence folder, when kept.")
    source_sweep: str | None = None
    source_trial: str | None = None
    params: dict[str, Any] | None = None
    config_sha256: str | None = None
    commit_sha: str | None = None
    start_time: datetime | None = None
    completion_time: datetime | None = None

    def to_status(self, observed_generation: int | None = None) -> RehearsalStatus:
        """The Rehearsal status this result implies (phase, score, URIs, provenance)."""
        shared = {name: getattr(self, name) for name in _STATUS_FIELDS}
        return RehearsalStatus(observed_generation=observed_generation, **shared)


_STATUS_FIELDS = (
    "phase",
    "message",
    "source_sweep",
    "source_trial",
    "params",
    PRIMARY_SCORE,
    "evidence_uri",
    "bundle_uri",
    "evidence_files",
    "log_uri",
    "start_time",
    "completion_time",
)
"""The fields a result hands to its Rehearsal's status, as they are."""


def result_from_store(storage: str | Store, namespace: str, name: str) -> RehearsalResult | None:
    """Rebuild a finished rehearsal's result from its evidence in the store (no JAX).

    None when there is no evidence (no eval_summary.json) under the rehearsal's prefix.
    Logs of failed attempts (``failed/``) and earlier runs' evidence (``archive/``) are not
    part of it; see ``tunix_rt.rehearsal.failure_from_store``.
    """
    store = storage if isinstance(storage, Store) else Store(storage)
    layout = RehearsalLayout.of(namespace, name)
    keys = RehearsalFiles(store, layout).current_keys()
    if layout.eval_summary_key not in keys:
        return None
    summary = store.read_json(layout.eval_summary_key)
    manifest: dict[str, Any] = {}
    if layout.manifest_key in keys:
        manifest = store.read_json(layout.manifest_key)
    bundle = bundle_key(keys, layout.prefix)
    source = manifest.get("source") or {}
    return RehearsalResult(
        name=name,
        namespace=namespace,
        primary_score=summary.get(PRIMARY_SCORE),
        metrics=summary.get("metrics") or {},
        steps=int(summary.get("steps") or 0),
        wall_seconds=float(summary.get("wall_seconds") or 0.0),
        evidence_uri=store.uri_for(layout.prefix),
        bundle_uri=store.uri_for(bundle) if bundle else None,
        bundle_name=bundle.rsplit("/", 1)[-1] if bundle else None,
        evidence_files=[store.uri_for(k) for k in keys],
        log_uri=store.uri_for(layout.log_key) if layout.log_key in keys else None,
        source_sweep=source.get("sweep"),
        source_trial=source.get("trial"),
        params=source.get("params"),
        config_sha256=manifest.get("config_sha256"),
        commit_sha=manifest.get("commit_sha"),
        start_time=manifest.get("start_time"),
        completion_time=manifest.get("end_time"),
    )


# --------------------------------------------------------------------------- the log


class RunLog:
    """Timestamped lines to kaggle_output_log.txt (and an echo), credentials scrubbed."""

    def __init__(
        self, path: Path, echo: Callable[[str], None] | None = None, *, append: bool = False
    ) -> None:
        self.path = path
        self.echo = echo
        self._lock = threading.Lock()
        self._handle: TextIO | None = path.open("a" if append else "w", encoding="utf-8")

    def __call__(self, message: str) -> None:
        stamp = iso(datetime.now(UTC))
        lines = scrub(str(message)).splitlines() or [""]
        with self._lock:
            for line in lines:
                text = f"{stamp} {line}"
                if self._handle is not None:
                    self._handle.write(text + "\n")
                    self._handle.flush()
                if self.echo is not None:
                    self.echo(text)

    def close(self) -> None:
        with self._lock:
            if self._handle is not None:
                self._handle.close()
                self._handle = None


class _LogHandler(logging.Handler):
    def __init__(self, sink: RunLog) -> None:
        super().__init__(logging.INFO)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.sink(f"[{record.name}] {record.levelname}: {record.getMessage()}")
        except Exception:  # a log line must never break the run
            self.handleError(record)


@contextmanager
def _capture_logging(sink: RunLog) -> Iterator[None]:
    """tunix_rt's own loggers (storage retries, trainer) go to the run log too."""
    handler = _LogHandler(sink)
    logger = logging.getLogger("tunix_rt")
    previous = logger.level
    logger.addHandler(handler)
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


def _stderr_echo(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- running


def _as_dict(obj: Any) -> dict[str, Any]:
    if obj is None:
        return {}
    if isinstance(obj, Mapping):
        return dict(obj)
    if hasattr(obj, "model_dump"):
        dumped: dict[str, Any] = obj.model_dump(mode="json")
        return dumped
    if hasattr(obj, "_asdict"):
        return dict(obj._asdict())
    return dict(vars(obj))


def _prepare_dir(out_dir: Path) -> None:
    """An empty folder for the evidence; a previous evidence folder there is replaced."""
    if out_dir.is_symlink():
        raise RehearsalError(f"refusing to write evidence through symlink {out_dir}")
    if out_dir.exists():
        if not out_dir.is_dir():
            raise RehearsalError(f"{out_dir} exists and is not a folder")
        entries = list(out_dir.iterdir())
        if entries:
            markers = {MANIFEST_NAME, LOG_NAME, SUMS_NAME, SUMMARY_NAME}
            if not any(e.name in markers for e in entries):
                raise RehearsalError(
                    f"refusing to write evidence into {out_dir}: it holds other files"
                )
            shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)


def default_command() -> list[str]:
    argv = list(sys.argv) or ["tunix-rt"]
    first = Path(argv[0]).name
    if first == "__main__.py":
        return ["python", "-m", "tunix_rt.rehearsal", *argv[1:]]
    return [first, *argv[1:]]


def exit_code(error: RehearsalError) -> ExitCode:
    """Process exit status for a failed run: INTERRUPTED (130) when it was interrupted,
    else FAILED (1)."""
    return ExitCode.INTERRUPTED if error.reason == INTERRUPTED_REASON else ExitCode.FAILED


@contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """SIGTERM (a stopped or deleted RayJob, ``kill``) ends the run like Ctrl-C does: as a
    failure whose log and failure.json are uploaded before the process exits."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def check_user_dataset(plan: RehearsalPlan) -> None:
    """A bad user dataset fails the run in seconds, before any training, naming the field
    (it would otherwise surface as a training failure, after the model compiled)."""
    from tunix_rt.train.data import check_dataset

    try:
        check_dataset(plan.config)
    except (ValueError, OSError) as exc:
        raise RehearsalError(
            f"rehearsal {plan.name}: bad dataset, nothing trained: {exc}", reason=BAD_DATASET_REASON
        ) from None


def run_rehearsal(
    plan: RehearsalPlan,
    *,
    out_dir: str | Path | None = None,
    command: list[str] | None = None,
    echo: Callable[[str], None] | None = _stderr_echo,
    trainer: Trainer | None = None,
    cwd: Path | None = None,
    store: Store | None = None,
) -> RehearsalResult:
    """Train, evaluate, write the evidence folder, package it, upload it; return the result.

    ``out_dir``: keep the evidence folder there (else a temp folder, removed at the end;
    with file:// storage the store itself holds the folder). ``trainer`` replaces
    ``tunix_rt.train.run_trial`` (tests). ``plan.timeout_seconds`` bounds the run from
    here on (the trainer's deadline).

    A run that fails raises RehearsalError after uploading its log and failure.json to
    ``<prefix>/failed/<UTC stamp>/``; the error says where they went (or, when that upload
    failed too, why, and where the log is kept locally).
    """
    store = store or Store(plan.storage)
    preflight(plan, store)
    if trainer is None:
        check_user_dataset(plan)
    # --out naming the store's own folder (file://) is built elsewhere too, so that a
    # failed run cannot remove the good evidence there: only a complete bundle replaces it.
    keep = out_dir is not None and not _is_store_folder(store, plan.prefix, Path(out_dir))
    folder = (
        Path(out_dir)
        if keep and out_dir is not None
        else Path(tempfile.mkdtemp(prefix="tunix-rt-"))
    )
    _prepare_dir(folder)
    clock = time.monotonic()
    attempt = _Attempt(
        started=datetime.now(UTC),
        clock=clock,
        deadline=clock + plan.timeout_seconds if plan.timeout_seconds is not None else None,
        commit=commit_info(cwd),  # the code as it is when the run starts (it runs that code)
        config_digest=hashlib.sha256(canonical_json(plan.config.to_wire())).hexdigest(),
    )
    remove = not keep
    try:
        return _run(plan, folder, keep, command or default_command(), echo, trainer, store, attempt)
    except (Exception, KeyboardInterrupt) as exc:  # Ctrl-C, SIGTERM (stopped): log it too
        error = _failure_error(plan, exc, attempt.step)
        try:
            located = _record_failure(plan, store, folder, attempt, error, exc, echo)
        except Exception as bug:  # never hide the run's own error behind this one
            located = RehearsalError(
                f"{error} (recording the failure failed: {type(bug).__name__}: {bug})",
                reason=error.reason,
                step=error.step,
            )
        if located.local_log is not None:
            remove = False  # the only copy of the log
        raise located from exc
    finally:
        if remove:
            shutil.rmtree(folder, ignore_errors=True)


STORE_UNAVAILABLE_REASON = "StoreUnavailable"
"""The reason of a rehearsal whose store could not be written before it started."""


def preflight(plan: RehearsalPlan, store: Store) -> None:
    """Before any training: the store takes a probe object (written, then deleted) at
    the rehearsal's prefix, or the run fails at once with reason StoreUnavailable, the
    URI and the cause (credentials, bucket, permission) named. Nothing is uploaded then:
    the store is what failed."""
    try:
        store.probe(plan.prefix)
    except StoreError as exc:
        raise RehearsalError(
            f"rehearsal {plan.name}: preflight failed, nothing ran: {exc}",
            reason=STORE_UNAVAILABLE_REASON,
        ) from exc


@dataclass
class _Attempt:
    """One run of a plan: when it started, its deadline, code, config, progress."""

    started: datetime
    clock: float
    deadline: float | None
    commit: CommitInfo
    config_digest: str
    step: int | None = None
    failure_logged: bool = False

    def report(self, metrics: Mapping[str, Any]) -> None:
        """The trainer's report callback: remember the last step reached."""
        step = metrics.get("step")
        if isinstance(step, int | float) and step == step and step >= 0:
            self.step = int(step)

    def elapsed(self) -> float:
        return time.monotonic() - self.clock


def _is_store_folder(store: Store, prefix: str, out_dir: Path) -> bool:
    target = store.local_path(prefix)
    return target is not None and target.resolve() == out_dir.resolve()


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def timeout_message(plan: RehearsalPlan, step: int | None, elapsed: float, *, done: bool) -> str:
    """What a run stopped by its timeout says (status message, log, CLI)."""
    limit = f"{plan.timeout_field} ({_seconds(plan.timeout_seconds or 0)})"
    total = plan.config.max_steps
    if done:
        where = f"before the final evaluation (all {total} steps done)"
    elif step is None:
        where = f"at an unknown step (of {total})"
    else:
        where = f"at step {step} of {total}"
    return (
        f"{limit} reached {where} after {elapsed:.0f} s; raise {plan.timeout_field} "
        "or lower the trainer's maxSteps"
    )


def _is_timeout(exc: BaseException, attempt: _Attempt) -> bool:
    """The trainer stopped at our deadline (a TimeoutError once it has passed)."""
    return (
        isinstance(exc, TimeoutError)
        and attempt.deadline is not None
        and time.monotonic() >= attempt.deadline
    )


def _failure_error(
    plan: RehearsalPlan, exc: BaseException, step: int | None = None
) -> RehearsalError:
    """The RehearsalError a failed run reports (its reason classifies the failure)."""
    if isinstance(exc, RehearsalError):
        return exc
    if isinstance(exc, KeyboardInterrupt):
        where = f"at step {step} of {plan.config.max_steps}" if step is not None else "early"
        return RehearsalError(
            f"rehearsal {plan.name}: interrupted {where} (Ctrl-C, or SIGTERM: the RayJob "
            "was stopped or deleted); run it again to start over",
            reason=INTERRUPTED_REASON,
            step=step,
        )
    if isinstance(exc, EvidenceError | PackageError | ChecksumError):
        return RehearsalError(
            f"rehearsal {plan.name}: bad evidence: {exc}", reason=BAD_EVIDENCE_REASON
        )
    if isinstance(exc, StoreError):
        return RehearsalError(
            f"rehearsal {plan.name}: uploading the evidence failed: {exc}",
            reason=UPLOAD_FAILED_REASON,
        )
    return RehearsalError(f"rehearsal {plan.name}: {type(exc).__name__}: {exc}")


def _record_failure(
    plan: RehearsalPlan,
    store: Store,
    folder: Path,
    attempt: _Attempt,
    error: RehearsalError,
    exc: BaseException,
    echo: Callable[[str], None] | None,
) -> RehearsalError:
    """Finish the log, upload it with failure.json to failed/<stamp>/, and return the
    error to raise: the same message plus where the log went (or why it did not)."""
    ended = datetime.now(UTC)
    log_path = folder / LOG_NAME
    message = str(error)
    prefix = f"rehearsal {plan.name}: "
    core = message[len(prefix) :] if message.startswith(prefix) else message
    failed_uri = store.uri_for(plan.layout.failed_prefix)
    _finish_failed_log(log_path, echo, attempt, error, exc, core, failed_uri)
    failure = _failure_record(plan, attempt, error, exc, core, ended)
    problems = failure_schema_errors(failure.document())
    if problems:  # a bug here must not hide the run's own error
        _say(echo, f"WARNING: {FAILURE_NAME} does not match its schema: {problems}")
    with suppress(OSError):  # the local folder's copy (kept with --out)
        (folder / FAILURE_NAME).write_bytes(failure.to_json())
    try:
        uploaded = upload_failure(store, failure, log_path)
    except (StoreError, OSError) as up:
        kept = str(log_path.resolve()) if log_path.is_file() else None
        where = f"; it is kept at {kept}" if kept else ""
        located = RehearsalError(
            f"{message} (the failure log could not be uploaded to {failed_uri}/: {up}{where})",
            reason=error.reason,
            step=failure.step,
        )
        located.local_log = kept
        return located
    _say(echo, f"failure log uploaded to {uploaded.folder_uri}/")
    located = RehearsalError(
        f"{message} (log: {uploaded.log_uri or uploaded.failure_uri})",
        reason=error.reason,
        step=failure.step,
    )
    located.log_uri = uploaded.log_uri
    located.failure_uri = uploaded.failure_uri
    return located


def _finish_failed_log(
    log_path: Path,
    echo: Callable[[str], None] | None,
    attempt: _Attempt,
    error: RehearsalError,
    exc: BaseException,
    core: str,
    failed_uri: str,
) -> None:
    """The failed run's last log lines: why (unless the run said it), where the log goes."""
    with suppress(OSError):  # the folder is gone or read-only: failure.json still goes up
        tail = RunLog(log_path, echo, append=True)
        try:
            if not attempt.failure_logged:
                tail(f"FAILED: {core}")
                if error.reason == ERROR_REASON and not isinstance(exc, RehearsalError):
                    tail("".join(traceback.format_exception(exc)).rstrip())  # a bug: where
            tail(f"uploading this log and {FAILURE_NAME} to {failed_uri}/")
        finally:
            tail.close()


def _failure_record(
    plan: RehearsalPlan,
    attempt: _Attempt,
    error: RehearsalError,
    exc: BaseException,
    core: str,
    ended: datetime,
) -> RehearsalFailure:
    """failure.json of a failed attempt."""
    root = exc.__cause__ if isinstance(exc, RehearsalError) and exc.__cause__ else exc
    source = (
        {"sweep": plan.source_sweep, "trial": plan.source_trial}
        if (plan.source_sweep or plan.source_trial)
        else None
    )
    return RehearsalFailure(
        run_name=plan.name,
        namespace=plan.namespace,
        reason=error.reason,
        message=core,
        error_type=type(root).__name__,
        step=error.step if error.step is not None else attempt.step,
        max_steps=plan.config.max_steps,
        timeout_seconds=plan.timeout_seconds,
        start_time=attempt.started,
        end_time=ended,
        wall_seconds=round(attempt.elapsed(), 3),
        commit_sha=attempt.commit.sha,
        commit_dirty=attempt.commit.dirty,
        config_path=plan.config_path,
        config_sha256=attempt.config_digest,
        source=source,
    )


def _say(echo: Callable[[str], None] | None, line: str) -> None:
    if echo is not None:
        echo(line)


@dataclass
class _Evidence:
    """What one finished training produced, scored and written up."""

    rows: list[dict[str, Any]]
    score: float | None
    steps: int
    finished: datetime
    wall: float
    summary: dict[str, Any] = field(default_factory=dict)
    manifest: dict[str, Any] = field(default_factory=dict)


def _run(
    plan: RehearsalPlan,
    folder: Path,
    keep: bool,
    command: list[str],
    echo: Callable[[str], None] | None,
    trainer: Trainer | None,
    store: Store,
    attempt: _Attempt,
) -> RehearsalResult:
    """The steps of one run: log the header, train, score, write the evidence (all in the
    run log), then package, verify and publish it."""
    log = RunLog(folder / LOG_NAME, echo)
    try:
        with _capture_logging(log):
            _log_header(log, plan, store, command, attempt)
            outcome = _train(plan, trainer, log, attempt)
            evidence = _score(plan, outcome, log, attempt)
            _write_up(plan, folder, store, command, attempt, outcome, evidence)
            log(
                f"evidence: commit {attempt.commit.short}, primary_score {evidence.score}, "
                f"files {sorted(p.name for p in folder.iterdir() if p.is_file())}"
            )
            log(f"done in {evidence.wall:.1f}s; the zip and the upload follow (see the result)")
    finally:
        log.close()
    bundle = _package(plan, folder)
    say = echo or (lambda _line: None)
    published = publish_folder(
        store, folder, plan.prefix, keep=(FAILED_DIR,), archive=True, say=say
    )
    return RehearsalResult(
        name=plan.name,
        namespace=plan.namespace,
        primary_score=evidence.score,
        metrics=evidence.summary["metrics"],
        steps=evidence.steps,
        wall_seconds=round(evidence.wall, 3),
        evidence_uri=store.uri_for(plan.prefix),
        bundle_uri=published.bundle_uri,
        bundle_name=bundle.name if bundle else None,
        evidence_files=published.uris,
        log_uri=store.uri_for(plan.layout.log_key),
        local_dir=str(folder.resolve()) if keep else _local_store_dir(store, plan.prefix),
        source_sweep=plan.source_sweep,
        source_trial=plan.source_trial,
        params=plan.source_params,
        config_sha256=evidence.manifest["config_sha256"],
        commit_sha=evidence.manifest["commit_sha"],
        start_time=attempt.started,
        completion_time=evidence.finished,
    )


def _log_header(
    log: RunLog, plan: RehearsalPlan, store: Store, command: list[str], attempt: _Attempt
) -> None:
    """What runs, where, from which code and config."""
    log(f"tunix-rt rehearsal {plan.name} (namespace {plan.namespace})")
    log(f"command: {' '.join(command)}")
    log(f"storage: {redact_uri(store.uri)} prefix {plan.prefix}")
    log(f"code: commit {attempt.commit.short} ({attempt.commit.source})")
    log(f"config: {plan.config_path} sha256 {attempt.config_digest}")
    if plan.timeout_seconds is not None:
        log(f"timeout: {plan.timeout_field} {_seconds(plan.timeout_seconds)} s")
    if plan.source_sweep:
        log(f"promoted from sweep {plan.source_sweep} trial {plan.source_trial}")
    for note in plan.notes:
        log(note)
    log(f"trainer config: {json.dumps(plan.config.to_wire(), sort_keys=True)}")


def _train(plan: RehearsalPlan, trainer: Trainer | None, log: RunLog, attempt: _Attempt) -> Any:
    """The trainer's outcome; its failure (the deadline, or anything it raised) is logged
    and raised as a RehearsalError."""
    run_trial: Trainer = trainer or importlib.import_module("tunix_rt.train").run_trial
    limit = {} if attempt.deadline is None else {"deadline": attempt.deadline}
    try:
        return run_trial(plan.config, report=attempt.report, checkpoint_dir=None, log=log, **limit)
    except Exception as exc:
        raise _training_error(plan, exc, log, attempt) from exc


def _training_error(
    plan: RehearsalPlan, exc: Exception, log: RunLog, attempt: _Attempt
) -> RehearsalError:
    """Log why training stopped; the error classifies it (TrainingTimeout or TrainingFailed)."""
    reached = getattr(exc, "step", None)
    if isinstance(reached, int) and not isinstance(reached, bool):
        attempt.step = reached
    attempt.failure_logged = True
    if _is_timeout(exc, attempt):
        done = bool(getattr(exc, "before_eval", False))
        why = timeout_message(plan, attempt.step, attempt.elapsed(), done=done)
        log(f"FAILED: {why}")
        return RehearsalError(
            f"rehearsal {plan.name}: {why}", reason=TIMEOUT_REASON, step=attempt.step
        )
    log(f"FAILED: training raised {type(exc).__name__}: {exc}")
    log("".join(traceback.format_exception(exc)).rstrip())
    return RehearsalError(
        f"rehearsal {plan.name}: training failed: {type(exc).__name__}: {exc}",
        reason=TRAINING_FAILED_REASON,
        step=attempt.step,
    )


def _score(plan: RehearsalPlan, outcome: Any, log: RunLog, attempt: _Attempt) -> _Evidence:
    """primary_score from the eval rows (``tunix_rt.scoring``, whichever trainer ran)."""
    finished = datetime.now(UTC)
    wall = attempt.elapsed()
    if attempt.deadline is not None and time.monotonic() > attempt.deadline:
        log(
            f"WARNING: finished {time.monotonic() - attempt.deadline:.0f} s past "
            f"{plan.timeout_field} ({_seconds(plan.timeout_seconds or 0)}); a started "
            "final evaluation is not interrupted"
        )
    rows = [row_dict(r) for r in getattr(outcome, "eval_rows", [])]
    score = compute_primary_score(rows)
    trainer_score = getattr(outcome, PRIMARY_SCORE, None)
    log(
        f"eval: {len(rows)} rows, primary_score {score} "
        f"(trainer reported {trainer_score}), steps {getattr(outcome, 'steps', 0)}"
    )
    if trainer_score is not None and score is not None and abs(trainer_score - score) > 1e-12:
        log("WARNING: the trainer's primary_score differs from the eval rows' score")
    steps = int(getattr(outcome, "steps", 0) or 0)
    return _Evidence(rows=rows, score=score, steps=steps, finished=finished, wall=wall)


def _write_up(
    plan: RehearsalPlan,
    folder: Path,
    store: Store,
    command: list[str],
    attempt: _Attempt,
    outcome: Any,
    evidence: _Evidence,
) -> None:
    """eval_summary.json, run_manifest.json, eval_rows.jsonl, sweep_summary.json and
    report.html into the evidence folder (as the plan's evidence options say)."""
    dataset = _as_dict(getattr(outcome, "dataset", None))
    model_id = str(getattr(outcome, "model_id", "") or "unknown")
    wall = evidence.wall
    evidence.summary = build_eval_summary(
        run_name=plan.name,
        rows=evidence.rows,
        metrics=dict(getattr(outcome, "metrics", {}) or {}),
        model_id=model_id,
        dataset=dataset,
        steps=evidence.steps,
        wall_seconds=float(getattr(outcome, "wall_seconds", wall) or wall),
        trainer_primary_score=getattr(outcome, PRIMARY_SCORE, None),
        history=[dict(p) for p in getattr(outcome, "history", []) or []],
        max_trace_tokens=plan.config.eval.max_trace_tokens,
        rows_file=ROWS_NAME if plan.evidence.include_eval_rows else None,
    )
    evidence.manifest = build_run_manifest(
        run_name=plan.name,
        namespace=plan.namespace,
        commit=attempt.commit,
        model_id=model_id,
        dataset=dataset,
        config=plan.config.to_wire(),
        config_path=plan.config_path,
        config_source_sha256=plan.config_source_sha256,
        overrides=plan.overrides,
        command=command,
        seed=plan.config.seed,
        start_time=attempt.started,
        end_time=evidence.finished,
        wall_seconds=wall,
        steps=evidence.steps,
        devices=[str(d) for d in getattr(outcome, "devices", []) or []],
        source=plan.source(),
        storage_uri=store.uri,
        storage_prefix=plan.prefix,
        backend=plan.config.backend,
        model_source=model_source_of(outcome, plan.config, model_id),
    )
    _write_files(plan, folder, evidence)


def model_source_of(outcome: Any, config: TrainerConfig, model_id: str) -> dict[str, Any] | None:
    """What the manifest records as ``model_source``: the backend's own account (Tunix:
    config name, checkpoint and digest, versions; python: what the entrypoint declared
    and its code), or for the built-in trainer its model config, from random init."""
    source = getattr(outcome, "model_source", None)
    if source is not None:
        return _as_dict(source)
    if config.backend != "builtin":
        return None
    return {
        "name": model_id,
        "config": config.model.to_wire(),
        "checkpoint": None,
        "checkpoint_sha256": None,
        "random_init": True,
        "versions": {},
    }


def _write_files(plan: RehearsalPlan, folder: Path, evidence: _Evidence) -> None:
    _write_json(folder / SUMMARY_NAME, evidence.summary)
    _write_json(folder / MANIFEST_NAME, evidence.manifest)
    if plan.evidence.include_eval_rows:
        (folder / ROWS_NAME).write_text(rows_jsonl(evidence.rows), encoding="utf-8")
    if plan.sweep_summary_bytes is not None:
        (folder / SWEEP_SUMMARY_NAME).write_bytes(plan.sweep_summary_bytes)
    if plan.evidence.report:
        html = render_report(
            manifest=evidence.manifest,
            summary=evidence.summary,
            rows=evidence.rows,
            sweep=plan.sweep_summary,
        )
        (folder / REPORT_NAME).write_text(html, encoding="utf-8")


def _package(plan: RehearsalPlan, folder: Path) -> Path | None:
    """SHA256SUMS, then the zip under submission/ (when the plan packages), verified."""
    names = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    write_sums(folder, names)
    if not plan.evidence.package:
        return None
    bundle = build_zip(folder, folder / SUBMISSION_DIR)
    check = verify_zip(bundle)
    if not check.ok:
        raise RehearsalError(
            f"rehearsal {plan.name}: bad evidence: the bundle {bundle.name} does not "
            f"verify: {check.errors}",
            reason=BAD_EVIDENCE_REASON,
        )
    return bundle


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def _local_store_dir(store: Store, prefix: str) -> str | None:
    path = store.local_path(prefix)
    return str(path) if path is not None else None
