"""The fsspec filesystem behind each scheme, making one attempt per request (the Store retries)."""

from __future__ import annotations

import functools
import os
from typing import Any

import fsspec

from tunix_rt.storage.errors import StoreError
from tunix_rt.storage.redact import redact_uri

S3_ENDPOINT_ENV = ("TUNIX_RT_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
"""Where an S3-compatible endpoint (MinIO, moto, …) is read from, first set wins."""

GCS_EMULATOR_ENV = "STORAGE_EMULATOR_HOST"
"""A GCS JSON-API emulator for gs:// (``host:port`` or a URL), the variable Google's own
clients read; anonymous credentials are used with it, as they do."""


def _timeouts() -> tuple[float, float]:
    """Seconds to connect and to wait for the next bytes of a response."""
    return (
        float(os.environ.get("TUNIX_RT_STORE_CONNECT_TIMEOUT_S", "10")),
        float(os.environ.get("TUNIX_RT_STORE_READ_TIMEOUT_S", "120")),
    )


def _s3_options() -> dict[str, Any]:
    """s3fs options: endpoint from the environment, one attempt per call (the Store retries)."""
    connect_timeout, read_timeout = _timeouts()
    options: dict[str, Any] = {
        "config_kwargs": {
            "retries": {"mode": "standard", "total_max_attempts": 1},
            "connect_timeout": connect_timeout,
            "read_timeout": read_timeout,
        },
    }
    for name in S3_ENDPOINT_ENV:
        endpoint = os.environ.get(name)
        if endpoint:
            options["endpoint_url"] = endpoint
            break
    return options


def _gcs_options() -> dict[str, Any]:
    """gcsfs options: project, timeouts, and the emulator (with anonymous access) if set."""
    import aiohttp  # gcsfs's HTTP client

    connect_timeout, read_timeout = _timeouts()
    options: dict[str, Any] = {
        "project": os.environ.get("GOOGLE_CLOUD_PROJECT"),
        "requests_timeout": aiohttp.ClientTimeout(
            total=None, sock_connect=connect_timeout, sock_read=read_timeout
        ),
    }
    emulator = os.environ.get(GCS_EMULATOR_ENV, "").strip()
    if emulator and emulator != "default":  # gcsfs reads "default" as unset, too
        options["endpoint_url"] = emulator if "://" in emulator else f"http://{emulator}"
        options["token"] = "anon"
    return options


@functools.cache
def _gcs_filesystem_class() -> type[fsspec.AbstractFileSystem]:
    """gcsfs's JSON-API filesystem, making one attempt per HTTP request.

    gcsfs wraps each request in its own retry loop (6 tries, sleeping 1, 2, 4, 8, 16 s):
    about 31 s per Store attempt against a dead endpoint, uncounted and unlogged. The
    loop is a decorator; its ``__wrapped__`` function is the single attempt. The plain
    ``gcsfs.core.GCSFileSystem`` is used rather than the default class of recent gcsfs
    (``ExtendedGcsFileSystem``, zonal/HNS buckets over gRPC): that one first asks each
    bucket's storage layout over gRPC, which HTTP emulators do not serve (a 60 s stall
    per call), and it overrides downloads on top of the retrying parent methods.
    """
    from gcsfs.core import GCSFileSystem

    single: dict[str, Any] = {}
    for name in ("_request", "_get_file_request", "_get_file_concurrent"):
        inner = getattr(getattr(GCSFileSystem, name, None), "__wrapped__", None)
        if inner is not None:
            single[name] = inner
    cls: type[fsspec.AbstractFileSystem] = type("StoreGCSFileSystem", (GCSFileSystem,), single)
    return cls


def make_filesystem(scheme: str, uri: str, options: dict[str, Any]) -> fsspec.AbstractFileSystem:
    if scheme == "file":
        return fsspec.filesystem("file", **options)
    if scheme == "s3":
        merged = _s3_options()
        merged.update(options)
        try:
            fs = fsspec.filesystem("s3", **merged)
        except ImportError as exc:  # pragma: no cover - s3fs is a core dependency
            raise StoreError(f"s3:// storage needs s3fs ({redact_uri(uri)}): {exc}") from None
        # One retry layer (the Store's, logged and bounded) instead of three nested ones.
        fs.retries = 1
        return fs
    if scheme == "gs":
        try:
            import gcsfs  # noqa: F401
        except ImportError:
            raise StoreError(
                f"{redact_uri(uri)}: gs:// storage needs the optional 'gcs' extra "
                "(pip install 'tunix-rt[gcs]', which installs gcsfs)"
            ) from None
        merged = _gcs_options() | options
        merged = {k: v for k, v in merged.items() if v is not None}
        return _gcs_filesystem_class()(**merged)
    raise StoreError(f"unsupported storage scheme {scheme!r} in {redact_uri(uri)}")
