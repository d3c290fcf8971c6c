"""What every reader of a file or store object may take, and how a bad value is quoted.

A reader that trusts its input can be made to hang or to exhaust memory (a YAML alias
bomb, a 50 MB string, thousands of levels of nesting, a zip entry that inflates to a
gigabyte). Each kind of input has one :class:`Limits`; the readers in this package check
them before the expensive step (parsing, inflating, validating), and refuse with a
:class:`ReadError` that says which limit and what to do, quoting at most a short prefix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

KIB = 1024
MIB = 1024 * KIB
QUOTE_CHARS = 80
"""The most characters of a user's value any message repeats (:func:`clip`)."""


@dataclass(frozen=True)
class Limits:
    """Caps for one kind of input.

    ``max_bytes``: the file or object as stored; ``max_depth``: levels of nesting (mappings
    and lists, aliases expanded); ``max_nodes``: values in one document (aliases expanded,
    so an alias bomb counts as what it expands to); ``max_json_bytes``: the document as the
    JSON kubectl would send (aliases expanded).
    """

    what: str
    max_bytes: int
    max_depth: int = 64
    max_nodes: int = 100_000
    max_json_bytes: int = MIB


MANIFEST = Limits("manifest", max_bytes=MIB)
"""A manifest or trainer config file: the API server stores at most 1.5 MiB per object
(etcd's request limit), and a manifest of this project is a few KiB."""

RECORD = Limits("record", max_bytes=16 * MIB, max_depth=64, max_nodes=2_000_000)
"""A JSON file the project writes (trial record, summary, sessions.json, run manifest,
eval summary): the largest, a trial record with its curve, is tens of KiB."""


class ReadError(ValueError):
    """An input refused by a reader: ``where`` names the file, ``field`` the field inside it
    (wire form, ``spec.trainer.userParams``) when one is to blame."""

    def __init__(self, where: str, problem: str, field: str = "") -> None:
        self.where = where
        self.problem = problem
        self.field = field
        text = f"{field}: {problem}" if field else problem
        super().__init__(f"{where}: {text}" if where else text)


def clip(value: str | bytes, limit: int = QUOTE_CHARS) -> str:
    """``value`` as a message may quote it: whole when short, else its first ``limit``
    characters and ``… (N bytes)``: a 50 MB string is never echoed back."""
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    if len(text) <= limit:
        return repr(text)
    size = len(value) if isinstance(value, bytes) else len(text.encode("utf-8", "replace"))
    return f"{text[:limit]!r}… ({size} bytes)"


MESSAGE_CHARS = 600
"""The longest one problem's message may be once its quoted values are clipped."""

_LONG = QUOTE_CHARS + 1
# A quote opens after a non-word character and closes before one, so the apostrophes of
# "GKE's" or the text between two short quoted values are never taken for a long value.
_LONG_QUOTED = re.compile(
    f"(?<!\\w)'([^'\\n]{{{_LONG},}})'(?!\\w)|(?<!\\w)\"([^\"\\n]{{{_LONG},}})\"(?!\\w)"
)


def clip_message(text: str, limit: int = MESSAGE_CHARS) -> str:
    """``text`` with every quoted value longer than :data:`QUOTE_CHARS` clipped
    (:func:`clip`), then cut at ``limit``: a validator that repeats the user's value
    never repeats 50 MB of it."""
    if len(text) <= QUOTE_CHARS:
        return text
    text = _LONG_QUOTED.sub(lambda m: clip(m.group(1) or m.group(2)), text)
    if len(text) > limit:
        text = f"{text[:limit]}… ({len(text.encode('utf-8', 'replace'))} bytes)"
    return text


def size_text(size: int) -> str:
    """``4 GiB`` / ``1.5 MiB`` / ``12 KiB`` / ``300 bytes``."""
    if size >= 1024 * MIB:
        return f"{size / (1024 * MIB):.1f} GiB".replace(".0 ", " ")
    if size >= MIB:
        return f"{size / MIB:.1f} MiB".replace(".0 ", " ")
    if size >= KIB:
        return f"{size / KIB:.1f} KiB".replace(".0 ", " ")
    return f"{size} bytes"


def too_big(size: int, limits: Limits) -> str:
    """The message for an input over ``limits.max_bytes``."""
    return (
        f"is {size_text(size)}, over the {size_text(limits.max_bytes)} a {limits.what} may be; "
        f"this is not a {limits.what} (check the path)"
    )


def read_file(path: str | Path, limits: Limits) -> bytes:
    """A local file's bytes, refused before reading when over ``limits.max_bytes`` (a
    FIFO or a device is read up to the cap, never to its end)."""
    source = str(path)
    try:
        with open(path, "rb") as handle:
            raw = handle.read(limits.max_bytes + 1)
    except IsADirectoryError:
        raise ReadError(source, "is a folder, not a file") from None
    except OSError as exc:
        raise ReadError(source, f"cannot read: {exc.strerror or exc}") from None
    if len(raw) > limits.max_bytes:
        try:
            size = Path(path).stat().st_size
        except OSError:
            size = len(raw)
        raise ReadError(source, too_big(max(size, len(raw)), limits))
    return raw
