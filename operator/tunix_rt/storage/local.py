"""Atomic writes to a local folder: a temp file next to the target, fsynced, then renamed."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

TMP_PREFIX = ".tmp-"
"""Name prefix of in-flight local writes; never listed, never packaged."""


@contextlib.contextmanager
def atomic_local_file(path: Path) -> Iterator[BinaryIO]:
    """A handle on a temp file next to ``path`` that becomes ``path`` (mode 0644, fsynced)
    when the block ends, or disappears when it raises: readers never see a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=str(path.parent), prefix=TMP_PREFIX)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_local_write(path: Path, data: bytes) -> None:
    with atomic_local_file(path) as handle:
        handle.write(data)


def atomic_local_copy(source: Path, path: Path) -> None:
    with atomic_local_file(path) as handle, source.open("rb") as src:
        shutil.copyfileobj(src, handle, 1 << 20)
