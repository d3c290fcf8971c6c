"""Zip archives checked before they are inflated: an entry's declared size, the archive's
total, each entry's compression ratio, and the entry count, from the central directory
alone; then each entry is read no further than its declared size.

A 1 MiB zip can hold a 1 GiB entry (DEFLATE reaches about 1000:1): reading it to check a
checksum is 1 GiB of memory and seconds of CPU. An evidence bundle is JSON, JSONL and text
that deflate 5-20:1; its largest file, eval_rows.jsonl, is a few MiB.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass

from tunix_rt.reading.limits import MIB, size_text


@dataclass(frozen=True)
class ZipLimits:
    """Caps for one kind of archive (:data:`BUNDLE`: an evidence bundle)."""

    max_archive_bytes: int = 256 * MIB
    max_entries: int = 10_000
    max_entry_bytes: int = 256 * MIB
    max_total_bytes: int = 1024 * MIB
    max_ratio: int = 200
    """Uncompressed / compressed, for entries over ``ratio_floor``: text deflates to a
    tenth or so, a bomb to a thousandth."""
    ratio_floor: int = MIB


BUNDLE = ZipLimits()


class ZipLimitError(ValueError):
    """An archive or entry over :class:`ZipLimits`."""


def entry_problems(infos: list[zipfile.ZipInfo], limits: ZipLimits = BUNDLE) -> list[str]:
    """What is over the limits, from the sizes the central directory declares (nothing
    is inflated); empty when every entry may be read."""
    problems: list[str] = []
    if len(infos) > limits.max_entries:
        problems.append(f"{len(infos)} entries, over the {limits.max_entries} a bundle may hold")
    total = 0
    for info in infos:
        size, packed = info.file_size, info.compress_size
        total += size
        name = info.filename[:80]
        if size > limits.max_entry_bytes:
            problems.append(
                f"entry {name!r} inflates to {size_text(size)}, over the "
                f"{size_text(limits.max_entry_bytes)} an entry may be; refused unread"
            )
        elif size > limits.ratio_floor and size > limits.max_ratio * max(packed, 1):
            problems.append(
                f"entry {name!r} inflates {size // max(packed, 1)}:1 ({size_text(packed)} to "
                f"{size_text(size)}), over {limits.max_ratio}:1: a zip bomb, refused unread"
            )
    if total > limits.max_total_bytes:
        problems.append(
            f"entries inflate to {size_text(total)} in all, over the "
            f"{size_text(limits.max_total_bytes)} a bundle may be; refused unread"
        )
    return problems


def read_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """An entry's bytes, read no further than its declared size (a lying header is a
    :class:`ZipLimitError` after one byte more, never a gigabyte later)."""
    chunks: list[bytes] = []
    left = info.file_size + 1
    with archive.open(info) as member:
        while left > 0:
            chunk = member.read(min(left, MIB))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    data = b"".join(chunks)
    if len(data) > info.file_size:
        raise ZipLimitError(
            f"entry {info.filename[:80]!r} inflates past the {info.file_size} bytes it declares"
        )
    return data
