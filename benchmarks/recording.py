"""What every benchmark script shares: the machine it ran on, and merging its figures
into ``benchmarks/results.json`` without touching the other scripts' keys.

``make bench`` (benchmarks/bench.py) runs the other scripts with two variables set:
``BENCH_QUICK=1`` in its quick mode (smallest sizes: proves the script works, the figures
mean nothing) and ``BENCH_RESULTS``, the file to merge into (quick runs must not
overwrite recorded figures). :func:`merge_results` and :func:`quick` read them.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results.json"
RESULTS_ENV = "BENCH_RESULTS"
QUICK_ENV = "BENCH_QUICK"


def quick() -> bool:
    """True in ``make bench``'s quick mode (``BENCH_QUICK=1``)."""
    return os.environ.get(QUICK_ENV, "") not in ("", "0")


def results_path() -> Path:
    """Where figures go: ``BENCH_RESULTS`` when set, else ``benchmarks/results.json``."""
    return Path(os.environ.get(RESULTS_ENV) or RESULTS)


def cpu_name() -> str:
    """The CPU model and core count (``/proc/cpuinfo`` where there is one)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores"


def read_results(path: Path | None = None) -> dict[str, Any]:
    path = path or results_path()
    if not path.exists():
        return {}
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def merge_results(values: dict[str, Any], path: Path | None = None) -> None:
    """Update the results file with ``values`` (top-level keys replaced, others kept)."""
    path = path or results_path()
    current = read_results(path)
    current.update(values)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def replace_section(readme: Path, begin: str, end: str, body: str) -> None:
    """Rewrite one marked section of a README; other sections are left alone."""
    section = f"{begin}\n{body}\n{end}"
    text = readme.read_text(encoding="utf-8") if readme.exists() else "# Benchmarks\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + section + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    readme.parent.mkdir(parents=True, exist_ok=True)
    readme.write_text(text, encoding="utf-8")
