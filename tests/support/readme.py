"""The README's command blocks, read the way a person copies them."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def _block(heading: str) -> list[str]:
    """The lines of the first bash block under ``heading``, as a person copies them:
    continuation lines joined, comments dropped."""
    text = README.read_text()
    section = text[text.index(heading) :]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, f"the README's {heading!r} section has no bash block"
    lines = []
    for line in block.group(1).replace("\\\n", " ").splitlines():
        line = line.split(" #", 1)[0].strip()
        if line and not line.startswith("#"):
            lines.append(line)
    return lines


def local_path() -> list[str]:
    """The README's "Local mode" block, a line as a shell runs it (lines may set variables,
    so they stay strings)."""
    return _block("## Local mode")


def kubernetes_quick_path() -> list[list[str]]:
    """The commands of the README's "Run on Kubernetes" block (comments dropped, lines joined)."""
    return [shlex.split(line) for line in _block("## Run on Kubernetes")]
