"""The errors every store operation raises: one family, messages free of credentials."""

from __future__ import annotations


class StoreError(RuntimeError):
    """A store operation failed; the message names the URI, never credentials."""


class StoreNotFoundError(StoreError, FileNotFoundError):
    """The key does not exist (also a FileNotFoundError, so both kinds of handler work)."""


class StorePreflightError(StoreError):
    """The store cannot be written (:meth:`Store.probe`); ``cause`` says why in a few words
    (``credentials missing``, ``bucket absent``, ``permission denied``, …) and ``uri`` is
    the store URI probed (no credentials)."""

    def __init__(self, message: str, *, cause: str, uri: str) -> None:
        super().__init__(message)
        self.cause = cause
        self.uri = uri


class StoreTooLargeError(StoreError):
    """An object over the size its reader takes (:mod:`tunix_rt.reading.limits`): read up
    to the cap and refused, never read whole."""
