"""A small fsspec-backed store with atomic writes.

Keys are '/'-separated paths relative to the store's root URI. Credentials come only
from the environment (fsspec/s3fs/gcsfs defaults); nothing here logs or stores them.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import fsspec

from tunix_rt.api.base import ApiModel


class StoreError(RuntimeError):
    """A store operation failed; the message names the URI, never credentials."""


class Store:
    """One storage root (``file://./runs``, ``s3://bucket/prefix``, ``gs://…``)."""

    def __init__(self, uri: str, **options: Any) -> None:
        self.uri = uri.rstrip("/")
        parsed = urlparse(self.uri)
        self.scheme = parsed.scheme or "file"
        if self.scheme == "file":
            root = self.uri.removeprefix("file://")
            self.root = str(Path(root).expanduser().resolve())
            self.uri = f"file://{self.root}"
        else:
            self.root = self.uri.split("://", 1)[1]
        self.fs: fsspec.AbstractFileSystem = fsspec.filesystem(self.scheme, **options)

    @classmethod
    def from_uri(cls, uri: str, **options: Any) -> Store:
        return cls(uri, **options)

    def _path(self, key: str) -> str:
        key = key.lstrip("/")
        if ".." in key.split("/"):
            raise StoreError(f"key {key!r} escapes the store root")
        return f"{self.root}/{key}" if key else self.root

    def uri_for(self, key: str) -> str:
        """The full URI of a key, as written to status and evidence."""
        return f"{self.uri}/{key.lstrip('/')}"

    def write_bytes(self, key: str, data: bytes) -> str:
        """Write atomically: readers see the old object or the whole new one, never a part."""
        path = self._path(key)
        try:
            if self.scheme == "file":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=str(Path(path).parent), prefix=".tmp-")
                try:
                    with os.fdopen(fd, "wb") as handle:
                        handle.write(data)
                        handle.flush()
                        os.fsync(handle.fileno())
                    os.replace(tmp, path)
                except BaseException:
                    Path(tmp).unlink(missing_ok=True)
                    raise
            else:
                # Object stores publish an object only when its upload completes.
                self.fs.pipe_file(path, data)
        except OSError as exc:
            raise StoreError(f"writing {self.uri_for(key)} failed: {exc}") from exc
        return self.uri_for(key)

    def write_text(self, key: str, text: str) -> str:
        return self.write_bytes(key, text.encode())

    def write_json(self, key: str, obj: ApiModel | dict[str, Any] | list[Any]) -> str:
        data = obj.to_wire() if isinstance(obj, ApiModel) else obj
        return self.write_text(key, json.dumps(data, indent=2, sort_keys=True) + "\n")

    def read_bytes(self, key: str) -> bytes:
        try:
            data: bytes = self.fs.cat_file(self._path(key))
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise StoreError(f"reading {self.uri_for(key)} failed: {exc}") from exc
        return data

    def read_json(self, key: str) -> Any:
        return json.loads(self.read_bytes(key))

    def exists(self, key: str) -> bool:
        return bool(self.fs.exists(self._path(key)))

    def list(self, prefix: str) -> list[str]:
        """Keys under a prefix (recursive), sorted; temp files of in-flight writes excluded."""
        base = self._path(prefix)
        try:
            found = self.fs.find(base)
        except FileNotFoundError:
            return []
        keys = []
        for path in found:
            rel = str(path)[len(self.root) :].lstrip("/")
            if not rel.rsplit("/", 1)[-1].startswith(".tmp-"):
                keys.append(rel)
        return sorted(keys)

    def upload_file(self, local: str | Path, key: str) -> str:
        return self.write_bytes(key, Path(local).read_bytes())
