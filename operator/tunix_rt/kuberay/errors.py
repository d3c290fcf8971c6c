"""Errors of the RayJob builder: each names the spec field (wire form) it is about."""

from __future__ import annotations


class ManifestError(ValueError):
    """A spec that cannot become a valid RayJob; ``field`` is e.g. ``spec.cluster.pools[0].cpu``."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.reason = message
