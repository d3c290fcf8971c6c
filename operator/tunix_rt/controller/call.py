"""One handler invocation (:class:`Call`): what kopf passed, and the reads a step makes.

Whichever way a reconcile step runs (a kopf handler, :mod:`~tunix_rt.controller.handlers`;
a RayJob event, :mod:`~tunix_rt.controller.wake`), it gets a :class:`Call`: the object's
metadata, its spec and status as plain dicts (a ``spec`` or ``status`` that is not an
object taken as empty: :func:`shape_problem`, :func:`status_dict`), kopf's patch, the
object's cache between steps, and the two reads a follow step makes (:meth:`Call.read_rayjob`,
:meth:`Call.read_store`: an unreachable store is a warning, condition ``Degraded=True``
and a retry at the next poll).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any, TypeVar

import kopf

from tunix_rt.contract.layout import Reader
from tunix_rt.controller.runtime import Runtime, get_rayjob, plain, read_in_thread, runtime_of
from tunix_rt.controller.status import generation_of
from tunix_rt.controller.status_writer import write_store_health
from tunix_rt.storage import StoreError

T = TypeVar("T")


@dataclass
class Call:
    """One handler invocation: what kopf passed, with the status as a plain dict; and the
    reads a follow step makes (the RayJob, the store)."""

    runtime: Runtime
    body: kopf.Body
    meta: Mapping[str, Any]
    spec: Mapping[str, Any]
    status: dict[str, Any]
    patch: kopf.Patch
    memo: MutableMapping[str, Any]
    """The object's cache between steps (:meth:`Runtime.memo_for`)."""
    logger: kopf.Logger | logging.Logger
    spec_problem: str | None = None
    """Why ``spec`` cannot be read at all (a string, a list, null): then ``spec`` is
    empty and a start fails the object with reason ``InvalidSpec`` (:func:`shape_problem`)."""
    rayjob: Mapping[str, Any] | None = None
    """The RayJob as its watch event just delivered it (:mod:`~tunix_rt.controller.wake`):
    :meth:`read_rayjob` returns it instead of reading it again."""

    @property
    def namespace(self) -> str:
        return str(self.meta["namespace"])

    @property
    def name(self) -> str:
        return str(self.meta["name"])

    @property
    def generation(self) -> int | None:
        return generation_of(self.meta)

    async def read_rayjob(self, rayjob_name: str) -> dict[str, Any] | None:
        """The RayJob (None when it is gone); API trouble makes kopf retry."""
        if self.rayjob is not None and self.rayjob.get("metadata", {}).get("name") == rayjob_name:
            return dict(self.rayjob)
        return await get_rayjob(self.runtime, self.namespace, rayjob_name)

    async def read_store(
        self, files: Reader, read: Callable[[], T], what: str, problem: str
    ) -> T | None:
        """``read()`` off the event loop; None (and a warning) while the store is
        unreachable. Each unreadable file it skipped is logged with ``problem``."""
        try:
            out: T = await read_in_thread(read)
        except StoreError as exc:
            self.logger.warning("cannot read %s from %s: %s (retrying)", what, files.store.uri, exc)
            self.store_health(files.store.uri, str(exc) or type(exc).__name__)
            return None
        self.store_health(files.store.uri, None)
        for line in files.problems:
            self.logger.warning(problem, line)
        return out

    def store_health(self, uri: str, error: str | None) -> None:
        """Condition ``Degraded`` and an Event when it flips
        (:func:`~tunix_rt.controller.status_writer.write_store_health`)."""
        write_store_health(self, uri, error)

    def output_wait(self, key: str, waiting: bool) -> float:
        """Seconds spent waiting for a succeeded job's output (first seen: ``memo[key]``)."""
        if not waiting:
            return 0.0
        first: float = self.memo.setdefault(key, time.monotonic())
        return time.monotonic() - first


# ----------------------------------------------------------------------------- shapes


_TYPE_NAMES: dict[type, str] = {
    str: "a string",
    list: "a list",
    bool: "a boolean",
    int: "a number",
    float: "a number",
}


def shape_problem(spec: object, fields: str) -> str | None:
    """Why ``spec`` is not an object, in the words of an InvalidSpec message; None when it
    is one (or absent: then the model names the missing fields)."""
    if spec is _ABSENT or isinstance(spec, Mapping):
        return None
    if spec is None:
        got = "null"
    else:
        shown = repr(spec)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        got = f"{_TYPE_NAMES.get(type(spec), type(spec).__name__)}: {shown}"
    return f"spec: expected an object (a mapping of fields such as {fields}), got {got}"


class _Absent:
    pass


_ABSENT: Any = _Absent()


def status_dict(
    body: Mapping[str, Any], logger: kopf.Logger | logging.Logger | None = None
) -> dict[str, Any]:
    """The status as a plain dict; one that is not an object (only a client that bypasses
    the status subresource's schema can write that) counts as empty, and the next status
    patch replaces it."""
    status = body.get("status", _ABSENT)
    if status is _ABSENT or status is None:
        return {}
    if not isinstance(status, Mapping):
        if logger is not None:
            logger.warning("status is not an object (%.60r); taking it as empty", status)
        return {}
    return plain(status)


def make_call(
    kind: str,
    spec_fields: str,
    body: kopf.Body,
    patch: kopf.Patch,
    memo: kopf.Memo,
    logger: kopf.Logger | logging.Logger,
) -> Call:
    """The :class:`Call` of a handler on an object of ``kind`` (lower-case; a ``spec`` that
    is not an object taken as empty, with the problem said in ``spec_problem``, naming
    ``spec_fields`` as examples)."""
    runtime = runtime_of(memo)
    problem = shape_problem(body.get("spec", _ABSENT), spec_fields)
    meta = body.meta
    namespace, name = str(meta.get("namespace")), str(meta.get("name"))
    return Call(
        runtime,
        body,
        meta,
        {} if problem else body.spec,
        status_dict(body, logger),
        patch,
        runtime.memo_for(kind, namespace, name),
        logger,
        spec_problem=problem,
    )
