"""The evidence files of a run, served from the store: only files inside that run's own
folder (a sweep's evidence, logs, records; a rehearsal's folder), never another run's,
never anything outside the store.

A path is checked segment by segment before it is joined (no empty, ``.`` or ``..``
segment, no backslash or NUL; the store refuses them again), and a sweep serves only
the parts of its folder that are evidence (not Ray's experiment or checkpoints). Files
go out with their content type and, HTML included, a Content-Security-Policy that runs
no script and loads nothing: a report.html is shown, never trusted.
"""

from __future__ import annotations

import mimetypes
import re

from tunix_rt.api.common import NAME_MAX, NAME_PATTERN
from tunix_rt.contract.file_names import REHEARSALS_DIR
from tunix_rt.contract.layout import RehearsalLayout, SweepLayout
from tunix_rt.ui.catalog import SWEEP_FILES, SWEEP_FOLDERS

CHUNK = 1 << 20
"""Bytes read from the store at a time while a file is sent."""
FILE_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox"
TEXT_SUFFIXES = (".txt", ".log", ".jsonl", ".csv", ".yaml", ".yml", ".md")
TEXT_NAMES = ("SHA256SUMS",)
_NAME = re.compile(NAME_PATTERN)
_SEGMENT = re.compile(r"^[A-Za-z0-9._+=@,-]+$")


class Refused(ValueError):
    """A path that does not name a file of that run (the app answers 404)."""


def check_name(name: str) -> str:
    """A namespace or run name as the API allows (DNS-1123): nothing else is a run."""
    if not name or len(name) > NAME_MAX or not _NAME.match(name):
        raise Refused(f"not a name: {name!r}")
    return name


def check_path(path: str) -> list[str]:
    """The path's segments, each a plain file or folder name."""
    parts = path.split("/")
    for part in parts:
        if part in ("", ".", "..") or not _SEGMENT.match(part):
            raise Refused(f"not a file path: {path!r}")
    return parts


def sweep_file_key(namespace: str, sweep: str, path: str) -> str:
    """The store key of a sweep's evidence file, or :class:`Refused`."""
    check_name(namespace)
    if check_name(sweep) == REHEARSALS_DIR:
        raise Refused("not a sweep")
    parts = check_path(path)
    top_file = len(parts) == 1 and parts[0] in SWEEP_FILES
    if not top_file and not (len(parts) > 1 and parts[0] in SWEEP_FOLDERS):
        raise Refused(f"not one of the sweep's evidence files: {path!r}")
    return SweepLayout.of(namespace, sweep).key(*parts)


def rehearsal_file_key(namespace: str, name: str, path: str) -> str:
    """The store key of a file in a rehearsal's folder, or :class:`Refused`."""
    check_name(namespace)
    check_name(name)
    return RehearsalLayout.of(namespace, name).key(*check_path(path))


def content_type(name: str) -> tuple[str, bool]:
    """(Content-Type, whether to download rather than show) of a file by its name."""
    if name.endswith(TEXT_SUFFIXES) or name in TEXT_NAMES:
        return "text/plain; charset=utf-8", False
    guessed, _ = mimetypes.guess_type(name)
    if guessed == "application/json":
        return "application/json; charset=utf-8", False
    if guessed == "text/html":
        return "text/html; charset=utf-8", False
    if guessed in ("application/zip", None) or not guessed.startswith(("text/", "image/")):
        return guessed or "application/octet-stream", True
    return guessed, False
