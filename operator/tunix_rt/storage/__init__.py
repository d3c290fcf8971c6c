"""Object storage behind one small interface: file:// (embedded default), s3://, gs://."""

from tunix_rt.storage.errors import StoreError, StoreNotFoundError
from tunix_rt.storage.failures import is_transient
from tunix_rt.storage.redact import redact_uri, scrub, secret_values
from tunix_rt.storage.store import RetryPolicy, Store, StoreEntry

__all__ = [
    "RetryPolicy",
    "Store",
    "StoreEntry",
    "StoreError",
    "StoreNotFoundError",
    "is_transient",
    "redact_uri",
    "scrub",
    "secret_values",
]
