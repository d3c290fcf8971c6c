"""The README's command blocks, read the way a person copies them."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def local_path() -> list[str]:
    """The lines of the README's "Local mode" block as a shell runs them (comments
    dropped; they may set variables, so they stay strings)."""
    text = README.read_text()
    section = text[text.index("## Local mode") :]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "the README's Local mode section has no bash block"
    lines = []
    for line in block.group(1).replace("\\\n", " ").splitlines():
        line = line.split("  #", 1)[0].strip()
        if line and not line.startswith("#"):
            lines.append(line)
    return lines


def kubernetes_quick_path() -> list[list[str]]:
    """The commands of the README's "Run on Kubernetes" block (comments dropped, lines joined)."""
    text = README.read_text()
    section = text[text.index("## Run on Kubernetes") :]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "the README's Kubernetes section has no bash block"
    joined = block.group(1).replace("\\\n", " ")
    commands = []
    for line in joined.splitlines():
        line = line.split(" #", 1)[0].strip()
        if line and not line.startswith("#"):
            commands.append(shlex.split(line))
    return commands
