"""A small fsspec-backed store: file:// (embedded default), s3:// (s3fs), gs:// (gcsfs).

Keys are '/'-separated paths relative to the store's root URI.

Guarantees:

* Atomic writes: a reader sees the old object or the whole new one, never a part.
  file:// writes a temp file next to the target and ``os.replace``-s it; object stores
  publish an object only when its single PUT or its multipart upload completes.
* Transient failures (connection refused/reset, timeouts, HTTP 5xx, throttling) are
  retried with exponential backoff and jitter; permanent ones (4xx, not found,
  permission denied, bad input) fail at once. This is the only retry loop: s3fs,
  botocore and gcsfs make one attempt per request.
* Credentials come only from the environment / workload identity (the default chains
  of botocore and google-auth). A URI carrying credentials is refused, and every
  message this module produces names the URI with secrets scrubbed.
* Emulators and S3-compatible servers are reached through the environment:
  ``S3_ENDPOINT_ENV`` for s3://, ``STORAGE_EMULATOR_HOST`` for gs://.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import fsspec

from tunix_rt.api.base import ApiModel
from tunix_rt.api.secrets import credentials, userinfo_span
from tunix_rt.reading import RECORD, Limits, ReadError, load_json
from tunix_rt.reading.limits import too_big
from tunix_rt.storage.errors import (
    StoreError,
    StoreNotFoundError,
    StorePreflightError,
    StoreTooLargeError,
)
from tunix_rt.storage.failures import is_transient, probe_cause
from tunix_rt.storage.filesystems import make_filesystem
from tunix_rt.storage.local import TMP_PREFIX, atomic_local_copy, atomic_local_write
from tunix_rt.storage.redact import redact_uri, scrub

log = logging.getLogger("tunix_rt.storage")

T = TypeVar("T")

SCHEMES = ("file", "s3", "gs")

RETRY_ATTEMPT = "store_retry_attempt"
"""Attribute of each retry warning's log record: the attempt that failed (1-based), so
a terminal can show one line per burst of retries (the first) rather than one per attempt."""


PROBE_PREFIX = ".tunix-rt-probe-"
"""Name prefix of :meth:`Store.probe`'s object (written, then deleted at once)."""


@dataclass(frozen=True)
class StoreEntry:
    """One name directly under a prefix (:meth:`Store.entries`)."""

    folder: bool
    size: int | None = None
    stamp: str | None = None
    """Changes whenever the object is rewritten (mtime and inode, ETag, generation, with
    the size): a cache key. None for folders."""


_STAMP_FIELDS = ("mtime", "ino", "ETag", "etag", "LastModified", "generation", "updated")


def _stamp(info: dict[str, Any]) -> str:
    return "|".join(f"{k}={info[k]}" for k in (*_STAMP_FIELDS, "size") if info.get(k) is not None)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter: delay_n = min(max_delay, base * 2**n) * U(0.5, 1)."""

    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 8.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False, repr=False)
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be >= 1")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("delays must be >= 0")

    @classmethod
    def from_env(cls) -> RetryPolicy:
        """Defaults, overridable with TUNIX_RT_STORE_ATTEMPTS / TUNIX_RT_STORE_BACKOFF_S."""
        attempts = int(os.environ.get("TUNIX_RT_STORE_ATTEMPTS", "5"))
        base = float(os.environ.get("TUNIX_RT_STORE_BACKOFF_S", "0.5"))
        return cls(attempts=attempts, base_delay=base)

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (0-based)."""
        ceiling = min(self.max_delay, self.base_delay * (2**retry))
        return float(ceiling * (0.5 + 0.5 * self.rng.random()))


def _is_not_found(exc: BaseException) -> bool:
    return isinstance(exc, FileNotFoundError) or isinstance(exc.__cause__, FileNotFoundError)


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    return scrub(text)[:500]


class Store:
    """One storage root (``file://./runs``, ``s3://bucket/prefix``, ``gs://bucket/prefix``)."""

    def __init__(
        self,
        uri: str,
        *,
        retry: RetryPolicy | None = None,
        part_size: int | None = None,
        **options: Any,
    ) -> None:
        parts = urlsplit(uri.strip())
        scheme = parts.scheme or "file"
        if scheme not in SCHEMES:
            raise StoreError(
                f"unsupported storage URI {redact_uri(uri)}: use file://, s3:// or gs://"
            )
        if (scheme != "file" and (userinfo_span(uri.strip()) or parts.query)) or credentials(uri):
            raise StoreError(
                f"refusing storage URI {redact_uri(uri)}: credentials and query strings do not "
                "belong in storage URIs; they come from the environment or workload identity"
            )
        self.scheme = scheme
        self.retry = retry or RetryPolicy.from_env()
        self.part_size = part_size
        if scheme == "file":
            raw = uri.strip()
            root = raw.removeprefix("file://") if raw.startswith("file://") else raw
            self.root = str(Path(root or ".").expanduser().resolve())
            self.uri = f"file://{self.root}"
        else:
            bucket_path = uri.strip().split("://", 1)[1].strip("/")
            if not bucket_path:
                raise StoreError(f"storage URI {redact_uri(uri)} names no bucket")
            self.root = bucket_path
            self.uri = f"{scheme}://{bucket_path}"
        self.fs: fsspec.AbstractFileSystem = make_filesystem(scheme, self.uri, options)

    def __repr__(self) -> str:
        return f"Store({self.uri!r})"

    @classmethod
    def from_uri(cls, uri: str, **options: Any) -> Store:
        return cls(uri, **options)

    # ------------------------------------------------------------------ paths

    def _path(self, key: str) -> str:
        key = key.strip("/")
        parts = key.split("/")
        if any(p in {"..", "."} for p in parts) or "\\" in key or "\x00" in key:
            raise StoreError(f"key {key!r} escapes the store root {self.uri}")
        return f"{self.root}/{key}" if key else self.root

    def uri_for(self, key: str) -> str:
        """The full URI of a key, as written to status and evidence (never credentials)."""
        key = key.lstrip("/")
        return f"{self.uri}/{key}" if key else self.uri

    def local_path(self, key: str) -> Path | None:
        """The filesystem path of a key for file:// stores, else None."""
        if self.scheme != "file":
            return None
        return Path(self._path(key))

    # ------------------------------------------------------------------ retries

    def _call(self, action: str, key: str, fn: Callable[[], T]) -> T:
        target = self.uri_for(key)
        last: BaseException | None = None
        for attempt in range(self.retry.attempts):
            try:
                return fn()
            except StoreError:
                raise
            except Exception as exc:  # classified below; nothing is swallowed
                if _is_not_found(exc):
                    raise StoreNotFoundError(f"{action} {target} failed: not found") from None
                if not is_transient(exc):
                    raise StoreError(f"{action} {target} failed: {_describe(exc)}") from None
                last = exc
                if attempt + 1 < self.retry.attempts:
                    wait = self.retry.delay(attempt)
                    log.warning(
                        "%s %s: transient error (attempt %d/%d), retrying in %.2fs: %s",
                        action,
                        target,
                        attempt + 1,
                        self.retry.attempts,
                        wait,
                        _describe(exc),
                        extra={RETRY_ATTEMPT: attempt + 1},
                    )
                    self._forget_listings()
                    self.retry.sleep(wait)
        assert last is not None
        raise StoreError(
            f"{action} {target} failed after {self.retry.attempts} attempts "
            f"(transient errors, retried with backoff): {_describe(last)}"
        ) from None

    def _forget_listings(self) -> None:
        """Drop cached listings so that a check or a retry sees the store as it is now."""
        invalidate = getattr(self.fs, "invalidate_cache", None)
        if callable(invalidate):
            invalidate()

    # ------------------------------------------------------------------ writes

    def write_bytes(self, key: str, data: bytes) -> str:
        """Write atomically: readers see the old object or the whole new one, never a part."""
        path = self._path(key)
        if not key.strip("/"):
            raise StoreError(f"cannot write to the store root {self.uri}")
        if self.scheme == "file":
            self._call("writing", key, lambda: atomic_local_write(Path(path), data))
        else:
            kwargs: dict[str, Any] = {}
            if self.part_size and self.scheme == "s3":
                kwargs["chunksize"] = self.part_size

            def put() -> None:
                # A single PUT or a multipart upload: the object appears only on completion.
                self.fs.pipe_file(path, data, **kwargs)

            self._call("writing", key, put)
        return self.uri_for(key)

    def write_text(self, key: str, text: str) -> str:
        return self.write_bytes(key, text.encode())

    def write_json(self, key: str, obj: ApiModel | dict[str, Any] | list[Any]) -> str:
        data = obj.to_wire() if isinstance(obj, ApiModel) else obj
        return self.write_text(key, json.dumps(data, indent=2, sort_keys=True) + "\n")

    def upload_file(self, local: str | Path, key: str) -> str:
        """Copy a local file to a key, atomically."""
        source = Path(local)
        if not source.is_file():
            raise StoreError(f"uploading to {self.uri_for(key)} failed: {source} is not a file")
        path = self._path(key)
        if self.scheme == "file":
            self._call("uploading", key, lambda: atomic_local_copy(source, Path(path)))
        elif self.scheme == "s3" and self.part_size:
            data = source.read_bytes()
            self._call(
                "uploading", key, lambda: self.fs.pipe_file(path, data, chunksize=self.part_size)
            )
        else:
            self._call("uploading", key, lambda: self.fs.put_file(str(source), path))
        return self.uri_for(key)

    def upload_dir(self, local: str | Path, prefix: str) -> list[str]:
        """Upload every regular file under a local folder to ``prefix/<relative path>``.

        Files go one by one (each atomic), sorted, ``SHA256SUMS`` and ``*.zip`` last so
        that a reader who sees the checksums or the bundle sees the files they cover.
        Symlinks are refused. Returns the URIs written.
        """
        root = Path(local)
        if not root.is_dir():
            raise StoreError(f"uploading to {self.uri_for(prefix)} failed: {root} is not a folder")
        names: list[str] = []
        for path in sorted(root.rglob("*")):
            if path.is_symlink():
                raise StoreError(f"refusing to upload symlink {path}")
            if path.is_file() and not path.name.startswith(TMP_PREFIX):
                names.append(path.relative_to(root).as_posix())
        names.sort(key=lambda n: (n == "SHA256SUMS" or n.endswith(".zip"), n.endswith(".zip"), n))
        base = prefix.strip("/")
        return [self.upload_file(root / name, f"{base}/{name}" if base else name) for name in names]

    def delete(self, key: str) -> None:
        """Remove one object; a missing one is not an error."""
        path = self._path(key)

        def remove() -> None:
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm_file(path)

        self._call("deleting", key, remove)

    # ------------------------------------------------------------------ preflight

    def probe(self, prefix: str = "") -> str:
        """Check that this store can be written: a small object is written under
        ``<prefix>/.tunix-rt-probe-<random>`` and deleted again. Returns the store URI.

        Runs before any work (a sweep before Ray starts trials, a rehearsal before it
        trains) so that a missing bucket or credentials fail a run in seconds, not after
        the training. Transient errors are retried as any call is; a permanent failure
        raises :class:`StorePreflightError` naming the URI and the cause (credentials
        missing or rejected, bucket absent, permission denied, read-only folder).
        """
        base = prefix.strip("/")
        name = f"{PROBE_PREFIX}{os.urandom(6).hex()}"
        key = f"{base}/{name}" if base else name
        payload = b"tunix-rt preflight probe: safe to delete\n"
        for action, step in (
            ("writing", lambda: self.write_bytes(key, payload)),
            ("deleting", lambda: self.delete(key)),
        ):
            try:
                step()
            except StoreError as exc:
                cause = probe_cause(exc, self.scheme)
                where = self.uri_for(base)
                bucket = f" (bucket {self.root.split('/')[0]!r})" if self.scheme != "file" else ""
                raise StorePreflightError(
                    f"store {where} is not usable: {cause}{bucket}; {action} a probe object "
                    f"failed: {exc}",
                    cause=cause,
                    uri=where,
                ) from exc
        return self.uri

    # ------------------------------------------------------------------ reads

    def read_bytes(self, key: str, limits: Limits | None = None) -> bytes:
        """The object's bytes (a copy reads them whole); with ``limits`` (a reader that
        parses them) an object over ``limits.max_bytes`` is a :class:`StoreTooLargeError`
        after a range read of one byte more, never the whole object."""
        path = self._path(key)
        end = None if limits is None else limits.max_bytes + 1

        def read() -> bytes:
            data: bytes = self.fs.cat_file(path, start=None if end is None else 0, end=end)
            return data

        data = self._call("reading", key, read)
        if limits is not None and len(data) > limits.max_bytes:
            raise StoreTooLargeError(f"{self.uri_for(key)} {too_big(len(data), limits)}")
        return data

    def read_text(self, key: str, limits: Limits | None = RECORD) -> str:
        """The object as text (undecodable bytes replaced), within ``limits``."""
        return self.read_bytes(key, limits).decode(errors="replace")

    def read_json(self, key: str) -> Any:
        raw = self.read_bytes(key, RECORD)
        try:
            return load_json(raw, self.uri_for(key))
        except ReadError as exc:
            raise StoreError(f"reading {exc}") from None

    def download(self, key: str, local: str | Path) -> Path:
        """Copy a key to a local file, atomically (temp file + rename)."""
        path = self._path(key)
        target = Path(local)
        target.parent.mkdir(parents=True, exist_ok=True)

        def get() -> None:
            fd, tmp = tempfile.mkstemp(dir=str(target.parent), prefix=TMP_PREFIX)
            os.close(fd)
            try:
                if self.scheme == "file":
                    shutil.copyfile(path, tmp)
                else:
                    self.fs.get_file(path, tmp)
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise

        self._call("downloading", key, get)
        return target

    def exists(self, key: str) -> bool:
        path = self._path(key)

        def check() -> bool:
            self._forget_listings()
            return bool(self.fs.exists(path))

        return self._call("checking", key, check)

    def read_range(self, key: str, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of the object (fewer at its end): a file served or read
        in pieces, each piece retried as any call is."""
        path = self._path(key)

        def read() -> bytes:
            data: bytes = self.fs.cat_file(path, start=start, end=end)
            return data

        return self._call("reading", key, read)

    def entries(self, prefix: str = "") -> dict[str, StoreEntry]:
        """What lies directly under ``prefix``, by name (one listing call, not recursive):
        folders, and objects with their size and :attr:`StoreEntry.stamp`; empty when
        nothing is there. Temp files of in-flight writes are left out."""
        base = self._path(prefix).rstrip("/")

        def ls() -> dict[str, StoreEntry]:
            self._forget_listings()
            try:
                found = self.fs.ls(base, detail=True)
            except (FileNotFoundError, NotADirectoryError):
                return {}
            finally:
                self._forget_listings()
            out: dict[str, StoreEntry] = {}
            for info in found:
                path = str(info.get("name", "")).rstrip("/")
                if self.scheme != "file":
                    path = path.split("://", 1)[-1]
                name = path.rsplit("/", 1)[-1]
                if path == base or not name or name.startswith(TMP_PREFIX):
                    continue
                if info.get("type") == "directory":
                    out[name] = StoreEntry(folder=True)
                else:
                    size = info.get("size")
                    out[name] = StoreEntry(
                        False, int(size) if size is not None else None, _stamp(info)
                    )
            return out

        return self._call("listing", prefix, ls)

    def list(self, prefix: str = "") -> list[str]:
        """Keys under a prefix (recursive), sorted; temp files of in-flight writes excluded."""
        base = self._path(prefix)

        def find() -> list[str]:
            self._forget_listings()
            try:
                found = self.fs.find(base)
            except FileNotFoundError:
                return []
            finally:
                # Keep no listing: s3fs answers "not found" from a cached listing for a
                # key another process wrote since (a trial record the driver then reads).
                self._forget_listings()
            keys = []
            root = self.root.rstrip("/")
            for path in found:
                text = str(path)
                if self.scheme != "file":
                    text = text.split("://", 1)[-1]
                if not (text == root or text.startswith(root + "/")):
                    continue
                rel = text[len(root) :].lstrip("/")
                if rel and not rel.rsplit("/", 1)[-1].startswith(TMP_PREFIX):
                    keys.append(rel)
            return sorted(keys)

        return self._call("listing", prefix, find)
