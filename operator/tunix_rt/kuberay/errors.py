"""Errors of the RayJob builder: the one :class:`~tunix_rt.api.errors.ManifestError`."""

from __future__ import annotations

from tunix_rt.api.errors import ManifestError

__all__ = ["ManifestError"]
