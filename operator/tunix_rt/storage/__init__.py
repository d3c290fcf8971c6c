"""Object storage behind one small interface: file:// (embedded default), s3://, gs://."""

from tunix_rt.storage.store import (
    RetryPolicy,
    Store,
    StoreError,
    StoreNotFoundError,
    is_transient,
    redact_uri,
    scrub,
    secret_values,
)

__all__ = [
    "RetryPolicy",
    "Store",
    "StoreError",
    "StoreNotFoundError",
    "is_transient",
    "redact_uri",
    "scrub",
    "secret_values",
]
