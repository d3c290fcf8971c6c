"""What a failed rehearsal leaves in the store, written by the run and read back by the
operator and the CLI (pure Python: the operator imports it).

A run that fails (the trainer raised, ``timeoutSeconds`` passed, the evidence did not
check out, the upload failed) uploads its log and a small ``failure.json`` to

    <storage>/<namespace>/rehearsals/<name>/failed/<YYYYmmddTHHMMSSZ>/
        kaggle_output_log.txt
        failure.json

and never touches an earlier successful evidence bundle at the prefix (the next
successful run's stale-key pruning keeps ``failed/`` too). ``failure.json`` follows
``tunix_rt/evidence/schemas/failure.schema.json``; :class:`RehearsalFailure` is its model.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer
from pydantic.config import JsonDict

from tunix_rt.contract.file_names import FAILED_DIR, FAILURE_JSON, KAGGLE_OUTPUT_LOG_TXT
from tunix_rt.contract.layout import Reader, RehearsalLayout
from tunix_rt.evidence.manifest import iso
from tunix_rt.evidence.validation import schema_errors
from tunix_rt.storage import Store

SCHEMA_VERSION = "tunix-rt/failure/v1"
STAMP_FORMAT = "%Y%m%dT%H%M%SZ"

TIMEOUT_REASON = "TrainingTimeout"
TRAINING_FAILED_REASON = "TrainingFailed"
BAD_DATASET_REASON = "BadDataset"
BAD_EVIDENCE_REASON = "BadEvidence"
UPLOAD_FAILED_REASON = "UploadFailed"
INTERRUPTED_REASON = "Interrupted"
ERROR_REASON = "RehearsalError"


_TIMESTAMP: JsonDict = {
    "format": "date-time",
    "pattern": (
        r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
        r"(Z|[+-][0-9]{2}:[0-9]{2})$"
    ),
}
_SHA256: JsonDict = {"pattern": "^[0-9a-f]{64}$"}
_NAME: JsonDict = {"minLength": 1}
_PUBLISHED: JsonDict = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://tunixrt.io/schemas/failure.v1.json",
    "title": "tunix-rt failed rehearsal",
    "description": (
        "Why a rehearsal run failed, how far it got, and which code and config it ran. "
        f"Written as {FAILURE_JSON} next to the run's {KAGGLE_OUTPUT_LOG_TXT} under "
        f"<rehearsal prefix>/{FAILED_DIR}/<UTC stamp>/; an earlier successful evidence "
        "bundle at the prefix is left as it was."
    ),
    "required": [
        "schema_version",
        "kind",
        "run_name",
        "namespace",
        "phase",
        "reason",
        "message",
        "step",
        "max_steps",
        "start_time",
        "end_time",
        "wall_seconds",
        "commit_sha",
        "config_sha256",
    ],
    "additionalProperties": False,
}
"""What failure.schema.json says besides the fields' types (built by
:mod:`tunix_rt.evidence.schema_build`); schema-only: reading stays as lenient as it was."""


class RehearsalFailure(BaseModel):
    """failure.json (snake_case, as the other evidence files); ``folder_uri`` and
    ``log_uri`` / ``failure_uri`` are filled in when read back from the store. Its
    ``json_schema_extra`` is for failure.schema.json only (never checked on read)."""

    model_config = ConfigDict(extra="ignore", json_schema_extra=_PUBLISHED)

    schema_version: Literal["tunix-rt/failure/v1"] = "tunix-rt/failure/v1"
    kind: Literal["rehearsal"] = "rehearsal"
    run_name: str = Field(json_schema_extra=_NAME)
    namespace: str = Field(json_schema_extra=_NAME)
    phase: Literal["Failed"] = "Failed"
    reason: str = Field(
        description=(
            "CamelCase, as in a status condition: TrainingTimeout, TrainingFailed, "
            "BadEvidence, UploadFailed, Interrupted or RehearsalError."
        ),
        json_schema_extra={"pattern": "^[A-Z][A-Za-z0-9]*$"},
    )
    message: str = Field(
        description=(
            "What went wrong and what to do about it (the same text the run's error "
            "carries, without the log location)."
        ),
        json_schema_extra=_NAME,
    )
    error_type: str | None = Field(
        None, description="Class name of the exception that ended the run, when there was one."
    )
    step: int | None = Field(
        None,
        description="Train steps reached (dispatched) when the run stopped, when known.",
        json_schema_extra={"minimum": 0},
    )
    max_steps: int = Field(json_schema_extra={"minimum": 1})
    timeout_seconds: float | None = Field(
        None,
        description=(
            "The run's wall-clock limit (spec.timeoutSeconds or --timeout-seconds); null when none."
        ),
        json_schema_extra={"exclusiveMinimum": 0},
    )
    start_time: datetime = Field(json_schema_extra=_TIMESTAMP)
    end_time: datetime = Field(json_schema_extra=_TIMESTAMP)
    wall_seconds: float = Field(json_schema_extra={"minimum": 0})
    commit_sha: str = Field(
        description="git HEAD of the working tree, else $TUNIX_RT_COMMIT_SHA, else 'unknown'.",
        json_schema_extra={"pattern": "^([0-9a-f]{7,64}|unknown)$"},
    )
    commit_dirty: bool | None = None
    config_path: str = Field("<inline>", json_schema_extra=_NAME)
    config_sha256: str = Field(
        description=(
            "sha256 of the canonical JSON of the trainer config (as in run_manifest.json)."
        ),
        json_schema_extra=_SHA256,
    )
    source: dict[str, str | None] | None = Field(
        None,
        description="The sweep and trial the config was promoted from; null for an inline config.",
        json_schema_extra={
            "additionalProperties": False,
            "properties": {
                "sweep": {"type": ["string", "null"]},
                "trial": {"type": ["string", "null"]},
            },
        },
    )
    log: str | None = Field(
        KAGGLE_OUTPUT_LOG_TXT,
        description=(
            "Name of the run's log in the same folder; null when it could not be uploaded."
        ),
    )

    folder_uri: str | None = Field(None, exclude=True)
    log_uri: str | None = Field(None, exclude=True)
    failure_uri: str | None = Field(None, exclude=True)

    @field_serializer("start_time", "end_time")
    def _iso(self, moment: datetime) -> str:
        return iso(moment)

    def document(self) -> dict[str, Any]:
        """The failure.json content (checked against its schema)."""
        data: dict[str, Any] = self.model_dump(mode="json")
        return data

    def to_json(self) -> bytes:
        return (json.dumps(self.document(), indent=2, sort_keys=True) + "\n").encode()


def failure_schema_errors(document: Any) -> list[str]:
    """Every violation of failure.schema.json; empty if valid."""
    return schema_errors("failure", document)


def failed_prefix(namespace: str, name: str) -> str:
    return RehearsalLayout.of(namespace, name).failed_prefix


def stamp(moment: datetime) -> str:
    """The folder name of one failed attempt: its end time, UTC, YYYYmmddTHHMMSSZ."""
    return moment.astimezone(UTC).strftime(STAMP_FORMAT)


def upload_failure(store: Store, failure: RehearsalFailure, log: Path | None) -> RehearsalFailure:
    """Upload ``log`` then failure.json to a new ``failed/<stamp>/`` folder of the run
    (``<stamp>-1``, ``-2``, … if that one is taken); the failure is returned with its
    URIs. StoreError propagates (a reader never sees a failure.json without its log)."""
    base = failed_prefix(failure.namespace, failure.run_name)
    first = stamp(failure.end_time)
    folder, n = first, 0
    while store.list(f"{base}/{folder}"):
        n += 1
        folder = f"{first}-{n}"
    has_log = log is not None and log.is_file()
    failure = failure.model_copy(update={"log": KAGGLE_OUTPUT_LOG_TXT if has_log else None})
    log_uri = None
    if has_log:
        assert log is not None
        log_uri = store.upload_file(log, f"{base}/{folder}/{KAGGLE_OUTPUT_LOG_TXT}")
    failure_uri = store.write_bytes(f"{base}/{folder}/{FAILURE_JSON}", failure.to_json())
    failure.folder_uri = store.uri_for(f"{base}/{folder}")
    failure.log_uri = log_uri
    failure.failure_uri = failure_uri
    return failure


def failure_from_store(
    storage: str | Store,
    namespace: str,
    name: str,
    *,
    since: datetime | None = None,
) -> RehearsalFailure | None:
    """The latest failed attempt of a rehearsal recorded in the store, or None.

    ``since``: ignore failures that ended before this moment (an earlier Rehearsal of the
    same name). A failure.json that is not one (or vanished) is skipped, the next older
    one is tried; other store errors propagate (StoreError).
    """
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    store = storage if isinstance(storage, Store) else Store(storage)
    base = failed_prefix(namespace, name)
    keys = store.list(base)
    folders = sorted(
        {
            key[len(base) + 1 :].split("/", 1)[0]
            for key in keys
            if key.startswith(base + "/") and key.endswith("/" + FAILURE_JSON)
        },
        reverse=True,
    )
    reader = Reader(store)  # absent or not a failure.json: None (the next one is tried)
    for folder in folders:
        key = f"{base}/{folder}/{FAILURE_JSON}"
        failure = reader.model(key, RehearsalFailure)
        if failure is None:
            continue
        if since is not None and failure.end_time < since:
            return None  # the newest readable one is older: nothing from this attempt
        failure.folder_uri = store.uri_for(f"{base}/{folder}")
        failure.failure_uri = store.uri_for(key)
        log_key = f"{base}/{folder}/{failure.log or KAGGLE_OUTPUT_LOG_TXT}"
        failure.log_uri = store.uri_for(log_key) if log_key in keys else None
        return failure
    return None
