"""Where a trainer reads its files from, refused at admission when no reader can open it.

``model.checkpoint`` and ``model.tokenizer`` are fetched by ``train/backends/tunix_weights.py``
(:func:`fetch`): a local path, ``file://``, or a ``s3://`` / ``gs://`` object or prefix read
with the store's client. ``dataset.trainPath`` / ``evalPath`` are opened as local files
(``train/data.py``). Anything else used to be accepted and then failed at trial start.
"""

from __future__ import annotations

from typing import Any

from tunix_rt.api.base import cel, unset

FETCH_SCHEMES = ("file", "s3", "gs")
"""The schemes :func:`tunix_rt.train.backends.tunix_weights.fetch` reads."""
MAX_LOCATION = 4096
"""Longest path or URI a trainer field takes (it also bounds the cost of the CEL rules)."""


def location(description: str) -> Any:
    """A trainer field naming a path or URI: unset by default, at most MAX_LOCATION long."""
    return unset(description, max_length=MAX_LOCATION)


_FETCHABLE_CEL = r"^(file://.+|(s3|gs)://[^/]+(/.*)?)$"


def _scheme(value: str) -> str | None:
    """The ``scheme`` of ``scheme://...`` (None: a plain path)."""
    head, sep, _ = value.partition("://")
    return head if sep else None


def fetchable_problem(field: str, value: str | None) -> str | None:
    """Why the Tunix backends cannot fetch ``value`` (None: they can). The value itself is
    never quoted: a URI may carry a credential."""
    if value is None:
        return None
    scheme = _scheme(value)
    if scheme is None:
        return None
    if scheme not in FETCH_SCHEMES:
        return (
            f"{field}: the loader reads a local path, file://PATH, s3://BUCKET/KEY or "
            f"gs://BUCKET/KEY, not {scheme[:16]}:// (it would fail when the trial starts); "
            "copy the file to a bucket or into the image and name it there"
        )
    rest = value.split("://", 1)[1]
    if not rest or (scheme != "file" and not rest.split("/", 1)[0]):
        return f"{field}: {scheme}:// names no {'path' if scheme == 'file' else 'bucket'}"
    return None


def local_file_problem(field: str, value: str | None) -> str | None:
    """Why ``value`` is no local file path (None: it may be one). User datasets are opened
    as files in the trial's pod; a URI is not fetched."""
    scheme = None if value is None else _scheme(value)
    if scheme is None:
        return None
    return (
        f"{field} is opened as a file in the trial's pod and takes no URI "
        f"({scheme[:16]}://...); give a path (bake the file into the image or mount a volume)"
    )


def fetchable_rule(field: str) -> dict[str, str]:
    """The CEL twin of :func:`fetchable_problem` for ``field`` of the model section."""
    return cel(
        f"!has(self.{field}) || !self.{field}.contains('://') || "
        f"self.{field}.matches('{_FETCHABLE_CEL}')",
        f"{field}: the loader reads a local path, file://PATH, s3://BUCKET/KEY or "
        "gs://BUCKET/KEY; copy the file there",
        f".{field}",
    )


def local_file_rule(field: str) -> dict[str, str]:
    """The CEL twin of :func:`local_file_problem` for ``field`` of the dataset section."""
    return cel(
        f"!has(self.{field}) || !self.{field}.contains('://')",
        f"{field} is opened as a file in the trial's pod and takes no URI; give a path",
        f".{field}",
    )
