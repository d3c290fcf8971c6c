"""Pieces shared by the Sweep and Rehearsal resources: API group, metadata, phases, status."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from tunix_rt.api.base import ApiModel, field_error, field_errors
from tunix_rt.api.secrets import credential_problem

GROUP = "tunixrt.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
CATEGORY = "tunixrt"

DEFAULT_STORAGE = "file://./runs"
"""The embedded default: a local folder as the object store."""
RUNTIME_DEFAULT = "x-tunix-rt-runtime-default"
"""Schema marker: the default is chosen at run time (the operator's configured storage, or
the local folder), so the CRD must not let the API server fill it in."""

STORAGE_SCHEMES = ("file://", "s3://", "gs://")
STORAGE_PATTERN = r"^(file://.+|(s3|gs)://[^/@:?#]+(/[^?#]*)?)$"
"""Pattern of a storage URI in the CRDs (pydantic checks it with ``check_storage``): a
bucket stores need their bucket (``s3:///prefix`` has none), and a bucket name holds no
``@`` or ``:``, so the API server refuses userinfo (``s3://KEY:SECRET@bucket``, also with
a ``/`` in the secret) and query strings before the object is stored."""

NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
NAME_MAX = 253
NAME_RULE = (
    "a lowercase DNS-1123 name (a-z, 0-9, '-' and '.', starting and ending with a letter or "
    f"digit, at most {NAME_MAX} characters), e.g. sweep-smoke"
)


def check_storage(field: str, value: str) -> None:
    """Raise a field error unless ``value`` is a file://, s3:// or gs:// URI (with a bucket)
    that carries no credential (checked first: no message below may echo one)."""
    scheme, _, rest = value.partition("://")
    problem = credential_problem(value)
    if problem is not None:
        # Never echo the value: it holds a credential, which would land in the spec,
        # the status, the RayJob and the evidence.
        raise field_error(field, f"{problem}; use s3://BUCKET/PREFIX or gs://BUCKET/PREFIX")
    if not value.startswith(STORAGE_SCHEMES) or value in STORAGE_SCHEMES:
        raise field_error(
            field,
            f"{value!r} is not a store URI; use file://PATH, s3://BUCKET/PREFIX or "
            "gs://BUCKET/PREFIX",
            value,
        )
    if scheme in ("s3", "gs") and ("?" in rest or "#" in rest):
        raise field_error(
            field,
            f"a {scheme}:// URI takes no query string or fragment (region, endpoint and "
            "credentials come from the environment or the Secret); use "
            f"{scheme}://BUCKET/PREFIX",
            None,
        )
    if scheme in ("s3", "gs") and not rest.split("/", 1)[0]:
        raise field_error(
            field,
            f"{value!r} names no bucket; use {scheme}://BUCKET/PREFIX",
            value,
        )
    if scheme in ("s3", "gs") and ":" in rest.split("/", 1)[0]:  # as the CRD's pattern
        raise field_error(
            field,
            f"{value!r}: a bucket name holds no ':' (a port or a user:secret pair does); "
            f"use {scheme}://BUCKET/PREFIX",
            value,
        )


def check_name(value: str) -> str:
    """A DNS-1123 object name, or a ValueError that says what one is."""
    if len(value) > NAME_MAX or not re.match(NAME_PATTERN, value):
        raise ValueError(f"{value!r} is not {NAME_RULE}")
    return value


SEED_MAX = 2**32 - 1
"""Largest seed numpy's and JAX's generators take (the CRD says so too)."""


def _check_namespace(value: str) -> str:
    if len(value) > 63 or not re.match(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", value):
        raise ValueError(
            f"{value!r} is not a namespace name (a lowercase DNS-1123 label: a-z, 0-9 and "
            "'-', starting and ending with a letter or digit, at most 63 characters)"
        )
    return value


KUBE_METADATA_FIELDS = frozenset(
    {
        "name",
        "generateName",
        "namespace",
        "selfLink",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "labels",
        "annotations",
        "ownerReferences",
        "finalizers",
        "managedFields",
    }
)
"""Kubernetes' ObjectMeta fields (k8s.io/apimachinery, v1.36): any other key under
``metadata`` is refused by the API server's strict field validation (kubectl's default)."""


class ObjectMeta(BaseModel):
    """The slice of Kubernetes metadata tunix-rt reads; the other ObjectMeta fields are
    kept as given, and a key Kubernetes does not know (``lables``) is refused as kubectl
    refuses it: ``unknown field "metadata.lables"``."""

    model_config = ConfigDict(extra="allow")

    @model_validator(mode="before")
    @classmethod
    def _known_fields(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            unknown = [str(k) for k in data if k not in KUBE_METADATA_FIELDS]
            if unknown:
                raise field_errors([(key, _unknown_metadata(key)) for key in unknown], data)
        return data

    name: Annotated[str, AfterValidator(check_name)] = Field(
        description="DNS-1123 name: lowercase letters, digits, '-' and '.'.",
    )
    namespace: Annotated[str, AfterValidator(_check_namespace)] | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


def _unknown_metadata(key: str) -> str:
    near = difflib.get_close_matches(key, sorted(KUBE_METADATA_FIELDS), n=1)
    hint = f"; did you mean {near[0]!r}?" if near else ""
    shown = key if len(key) <= 80 else f"{key[:80]}…"
    return f'unknown field "metadata.{shown}"{hint}'


class Phase(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


TERMINAL_PHASES = frozenset({Phase.SUCCEEDED, Phase.FAILED})


class Condition(ApiModel):
    """A standard Kubernetes condition (Ready, Progressing, Failed)."""

    type: str = Field(description="Condition type, e.g. Ready, Progressing, Failed.")
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str = Field(
        pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
        description="CamelCase reason for the last transition.",
    )
    message: str = Field("", description="Human-readable details.")
    last_transition_time: datetime | None = Field(None, description="When the status last changed.")
    observed_generation: int | None = Field(
        None, description="metadata.generation the condition was set for."
    )


# Fields both specs (Sweep, Rehearsal) declare: helpers rather than a base class, because
# each spec places them at its own position and the CRD lists properties in field order.

QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
"""The label by which Kueue queues a job (here: the RayJob) in a LocalQueue."""


def queue_field() -> Any:
    """``spec.queueName``: the Kueue LocalQueue the RayJob waits in (None: no queue)."""
    return Field(
        None,
        max_length=63,
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        description="Kueue LocalQueue (same namespace) that admits the RayJob: it is "
        "created suspended with the kueue.x-k8s.io/queue-name label and starts when Kueue "
        "admits it. Unset: the operator's default queue, else none.",
    )


def storage_field(contents: str) -> Any:
    """``spec.storage``: the store URI for ``contents``; its default is chosen at run time."""
    return Field(
        DEFAULT_STORAGE,
        description=f"Store URI for {contents}: file://, s3:// or gs://.",
        json_schema_extra={"pattern": STORAGE_PATTERN, RUNTIME_DEFAULT: True},
    )


class RunStatus(ApiModel):
    """The first status fields of both resources (each adds its own after them)."""

    phase: Phase = Field(Phase.PENDING, description="Pending, Running, Succeeded or Failed.")
    message: str | None = Field(None, description="Human-readable state or failure reason.")
    conditions: list[Condition] = Field(
        default_factory=list, description="Ready, Progressing and Failed conditions."
    )
    observed_generation: int | None = Field(
        None, description="metadata.generation of the spec this status describes."
    )


SpecT = TypeVar("SpecT", bound=BaseModel)
StatusT = TypeVar("StatusT", bound=BaseModel)


class Resource(ApiModel, Generic[SpecT, StatusT]):
    """A full manifest as applied with kubectl; each kind pins ``kind`` to its name."""

    api_version: Literal["tunixrt.io/v1alpha1"] = "tunixrt.io/v1alpha1"
    kind: str
    metadata: ObjectMeta
    spec: SpecT
    status: StatusT | None = None
