"""The operator under load: N Sweeps (default 200) created at once against the kmock
emulator made to keep up (tests/support/kmock_fast.py); the operator (kopf) runs for real.

Records in ``benchmarks/results.json`` (merged: other benchmarks keep their keys):

* ``operator_p95_create_s_200``: p95 seconds from a Sweep's create to its RayJob's create;
* ``operator_rss_mib_200``: peak RSS (VmHWM) of the process running the operator, MiB
  (the emulator and the client share that process: an upper bound);
* ``operator_load``: every figure, the machine and its load average while measured.

    uv run --frozen --no-sync python benchmarks/operator_load.py [--sweeps 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "operator")]

from recording import cpu_name, merge_results  # noqa: E402
from support.load import sweeps_at_once  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sweeps", type=int, default=200)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="tunix-rt-load-") as tmp:
        result = asyncio.run(sweeps_at_once(args.sweeps, f"file://{tmp}/store"))
    load_after = os.getloadavg()
    report = result.as_dict() | {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": cpu_name(),
        "loadavg_1m_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
        "emulator": "kmock 0.8 + tests/support/kmock_fast.py (history dropped, key lookups)",
        "rss_note": "VmHWM of the one process holding operator, emulator and client",
    }
    print(json.dumps(report, indent=2))
    if result.rayjobs != args.sweeps or result.duplicates or result.with_status != args.sweeps:
        print("did not converge to one RayJob and a status per Sweep", file=sys.stderr)
        return 1
    if not args.no_write:
        n = args.sweeps
        merge_results(
            {
                f"operator_p95_create_s_{n}": result.p95_create_s,
                f"operator_rss_mib_{n}": result.rss_peak_mib,
                "operator_load": report,
            }
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
