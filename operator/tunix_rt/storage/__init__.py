"""Object storage behind one small interface: file:// (embedded default), s3://, gs://."""

from tunix_rt.storage.store import Store, StoreError

__all__ = ["Store", "StoreError"]
