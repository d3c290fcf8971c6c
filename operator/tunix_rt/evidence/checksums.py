"""SHA256SUMS: the checksum list of an evidence folder, in GNU coreutils format.

``sha256sum -c SHA256SUMS`` checks a folder by hand; ``parse_sums`` is strict so that a
tampered or hand-edited list is an error, not a silently shorter check.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from tunix_rt.contract.file_names import SHA256SUMS

_LINE = re.compile(r"^(?P<digest>[0-9a-f]{64}) [ *](?P<name>.+)$")


class ChecksumError(ValueError):
    """SHA256SUMS is malformed, or a file does not match it."""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_name(name: str) -> str:
    """A relative, '/'-separated name that stays inside its folder; else ChecksumError."""
    parts = name.split("/")
    if (
        not name
        or name.startswith("/")
        or "\\" in name
        or "\x00" in name
        or "\n" in name
        or re.match(r"^[A-Za-z]:", name)
        or any(part in {"", ".", ".."} for part in parts)
    ):
        raise ChecksumError(f"unsafe path {name!r}: must be relative and stay inside the folder")
    return name


def format_sums(digests: Mapping[str, str]) -> str:
    """``<sha256>  <name>`` lines sorted by name (byte order), newline-terminated."""
    lines = []
    for name in sorted(digests, key=lambda n: n.encode()):
        check_name(name)
        if not re.fullmatch(r"[0-9a-f]{64}", digests[name]):
            raise ChecksumError(f"not a sha256 digest for {name!r}: {digests[name]!r}")
        lines.append(f"{digests[name]}  {name}\n")
    return "".join(lines)


def parse_sums(text: str) -> dict[str, str]:
    """Name -> digest. Malformed lines, unsafe names and duplicates are errors."""
    out: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        match = _LINE.match(line)
        if match is None:
            raise ChecksumError(f"{SHA256SUMS} line {number} is not '<sha256>  <name>': {line!r}")
        name = check_name(match.group("name"))
        if name in out:
            raise ChecksumError(f"{SHA256SUMS} lists {name!r} twice")
        out[name] = match.group("digest")
    return out


def digests_of(folder: Path, names: Iterable[str]) -> dict[str, str]:
    return {name: sha256_file(folder / name) for name in names}


def write_sums(folder: Path, names: Iterable[str]) -> Path:
    """Write ``folder/SHA256SUMS`` over the given relative names (never over itself)."""
    listed = sorted({check_name(n) for n in names if n != SHA256SUMS})
    path = folder / SHA256SUMS
    path.write_text(format_sums(digests_of(folder, listed)))
    return path
