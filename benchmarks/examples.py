"""Run the examples that run on CPU and record the score and wall time each one gives.

    make bench-examples                       # or: uv run python benchmarks/examples.py
    uv run python benchmarks/examples.py --only sweep-smoke --only trainer-smoke

Each example runs as its header says a user runs it (``tunix-rt sweep run``, ``tunix-rt
rehearsal run``, ``python -m tunix_rt.train --config``) into a fresh store, one at a
time. The record, ``benchmarks/results/examples.json``, keeps per example the
primary_score (a sweep's best trial; scores do not depend on the machine, see
contract/numerics.py), the wall seconds, the load average before it started and the
command. Every example's ``# Expect`` line is checked against this record by
tests/examples/test_expectations.py: rerun this after changing an example, on an idle
machine, and update the line it names.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
RECORD = ROOT / "benchmarks" / "results" / "examples.json"
BIN = Path(sys.executable).parent
PYTHON_TRAINER = ROOT / "examples" / "python-trainer"


@dataclass(frozen=True)
class Example:
    """One example and how its header runs it."""

    file: str
    how: str  # "sweep", "rehearsal" or "trainer"
    env: tuple[tuple[str, str], ...] = ()

    @property
    def key(self) -> str:
        return Path(self.file).stem

    def command(self, store: Path, out: Path) -> list[str]:
        path = str(ROOT / self.file)
        if self.how == "sweep":
            return [str(BIN / "tunix-rt"), "sweep", "run", path, "--fresh", "--no-live",
                    "--storage", f"file://{store}"]  # fmt: skip
        if self.how == "rehearsal":
            return [str(BIN / "tunix-rt"), "rehearsal", "run", path, "--storage", f"file://{store}"]
        return [sys.executable, "-m", "tunix_rt.train", "--config", path, "--output", str(out)]

    def score(self, store: Path, out: Path, name: str) -> float | None:
        if self.how == "sweep":
            summary = json.loads((store / "local" / name / "summary.json").read_text())
            return summary.get("primaryScore")  # summary.json is in the wire (camelCase) form
        if self.how == "rehearsal":
            found = next((store / "local" / "rehearsals" / name).rglob("eval_summary.json"))
            return json.loads(found.read_text()).get("primary_score")
        return json.loads(out.read_text()).get("primary_score")


EXAMPLES = [
    Example("examples/sweep-smoke.yaml", "sweep"),
    Example("examples/rehearsal-smoke.yaml", "rehearsal"),  # fromSweep: sweep-smoke, above
    Example("examples/sweep-pbt-smoke.yaml", "sweep"),
    Example("examples/sweep-python.yaml", "sweep", (("PYTHONPATH", str(PYTHON_TRAINER)),)),
    Example("examples/trainer-smoke.yaml", "trainer"),
    Example("examples/trainer-rehearsal.yaml", "trainer"),
    Example("examples/sweep-tunix-grpo-tiny.yaml", "sweep"),
    Example("examples/sweep-tunix-dpo-tiny.yaml", "sweep"),
    Example("examples/rehearsal-tunix-sft-tiny.yaml", "rehearsal"),
    Example("examples/trainer-tunix-sft-tiny.yaml", "trainer"),
]


def name_of(example: Example) -> str:
    doc = yaml.safe_load((ROOT / example.file).read_text())
    return str(doc.get("metadata", {}).get("name", "")) if isinstance(doc, dict) else ""


def readable(arg: str, store: Path) -> str:
    """A command argument as a user types it: executables by name, paths from the repo."""
    if arg.startswith(str(BIN)) or arg == sys.executable:
        return Path(arg).name
    return arg.replace(str(store), "<store>").replace(f"{ROOT}/", "")


def shown_command(example: Example, command: list[str], store: Path) -> str:
    env = [f"{key}={readable(value, store)}" for key, value in example.env]
    return " ".join([*env, *(readable(c, store) for c in command)])


def run(example: Example, store: Path) -> dict[str, Any]:
    out = store / f"{example.key}.result.json"
    command = example.command(store, out)
    load = os.getloadavg()[0]
    start = time.monotonic()
    proc = subprocess.run(command, cwd=ROOT, env=os.environ | dict(example.env),
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    wall = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit(f"{example.file}: exit {proc.returncode}\n{proc.stderr[-3000:]}")
    score = example.score(store, out, name_of(example))
    shown = shown_command(example, command, store)
    print(f"{example.file}: primary_score {score}, {wall:.0f} s (load {load:.1f})", flush=True)
    return {
        "primary_score": score,
        "wall_seconds": round(wall, 1),
        "load_before": round(load, 2),
        "command": shown,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", default=[], help="example stem (repeat)")
    args = parser.parse_args()
    chosen = [e for e in EXAMPLES if not args.only or e.key in args.only]
    record = json.loads(RECORD.read_text()) if RECORD.exists() else {}
    record["cpus"] = os.cpu_count()
    record.setdefault("examples", {})
    store = Path(tempfile.mkdtemp(prefix="tunix-rt-examples-"))
    for example in chosen:
        record["examples"][example.file] = run(example, store)
        RECORD.parent.mkdir(parents=True, exist_ok=True)
        RECORD.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    print(f"recorded {len(chosen)} example(s) in {RECORD.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
