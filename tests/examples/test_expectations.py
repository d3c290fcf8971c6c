"""Every example says what to expect, and the figures it gives are the recorded ones.

Each example's header has a ``# Expect`` line: on 2 CPU cores, the primary_score it
reaches and about how long it takes; or the example it is a variant of; or why there is
no figure yet (a GPU or TPU example, a cluster-only one).
The figures are checked against ``benchmarks/results/examples.json``, which
``benchmarks/examples.py`` writes by running the examples: the score exactly (scores do not
depend on the machine: contract/numerics.py), the time within a factor of two (wall time
does). An example the script does not run cites where its figures come from.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RECORD = ROOT / "benchmarks" / "results" / "examples.json"
EXPECT = re.compile(r"^# Expect(?P<rest>.*)$", re.MULTILINE)
CPU = re.compile(
    r"^ on 2 CPU cores: primary_score (?P<score>\d+(?:\.\d+)?)\b.*?"
    r"about (?P<time>\d+(?:\.\d+)?) (?P<unit>min|s)\b"
)
NO_CPU_FIGURE = re.compile(r"^: no (CPU )?figure (yet )?\((?P<why>[^)]{10,})\)")
SAME_AS = re.compile(r"^: as (?P<other>examples/\S+\.yaml)\b")


def examples() -> list[Path]:
    """Every YAML under examples/ that is a Sweep, a Rehearsal or a trainer config (the
    kustomize, Kueue and GitOps files are other kinds)."""
    found = []
    for path in sorted(ROOT.glob("examples/**/*.yaml")):
        docs = [d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict)]
        ours = any(d.get("apiVersion") == "tunixrt.io/v1alpha1" for d in docs)
        if ours or path.name.startswith("trainer-"):
            found.append(path)
    return found


def expect_lines(path: Path) -> list[str]:
    """What follows ``# Expect`` on each such line of ``path``."""
    return [m.group("rest") for m in EXPECT.finditer(path.read_text())]


def recorded() -> dict[str, Any]:
    data = json.loads(RECORD.read_text()) if RECORD.exists() else {}
    return dict(data.get("examples", {}))


def test_the_examples_are_found() -> None:
    names = {p.name for p in examples()}
    assert {"sweep-smoke.yaml", "trainer-smoke.yaml", "sweep-gpu.yaml"} <= names, names


@pytest.mark.parametrize("path", examples(), ids=lambda p: str(p.relative_to(ROOT)))
def test_each_example_says_what_to_expect(path: Path) -> None:
    lines = expect_lines(path)
    assert len(lines) == 1, f"{path.name}: one '# Expect' line in its header, found {lines}"
    rest, record = lines[0], recorded().get(str(path.relative_to(ROOT)))
    cpu = CPU.match(rest)
    if record is None:
        assert cpu is None or "benchmarks/README.md" in rest, (
            f"{path.name}: CPU figures not in {RECORD.name}: cite where they come from, or "
            "run benchmarks/examples.py"
        )
        same = SAME_AS.match(rest)
        if same is not None:  # a variant of another example: its figures, said as such
            other = ROOT / same.group("other")
            assert other.is_file() and any(CPU.match(r) for r in expect_lines(other)), (
                f"{path.name}: {same.group('other')} has no CPU figures to refer to"
            )
            return
        assert cpu or NO_CPU_FIGURE.match(rest), f"{path.name}: {rest!r}"
        return
    assert cpu is not None, f"{path.name}: recorded, so its line gives score and time: {rest!r}"
    assert float(cpu.group("score")) == pytest.approx(record["primary_score"], abs=5e-5), (
        f"{path.name}: says {cpu.group('score')}, the record has {record['primary_score']}"
    )
    seconds = float(cpu.group("time")) * (60 if cpu.group("unit") == "min" else 1)
    assert record["wall_seconds"] / 2 <= seconds <= record["wall_seconds"] * 2, (
        f"{path.name}: says about {seconds:.0f} s, the record took {record['wall_seconds']} s"
    )
