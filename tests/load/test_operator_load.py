"""Load (issue 14, item 6): 200 Sweeps created at once; every one converges to exactly
one RayJob and a status. The emulator, the operator (``tunix-rt operator``) and this
client each run in a process of their own (:mod:`support.load`), so the operator is what
is measured. ``benchmarks/operator_load.py`` records the figures."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.load import LoadSession

N = 200


@pytest.mark.load
@pytest.mark.slow
@pytest.mark.reliability(
    "load",
    f"{N} Sweeps created at once (operator against the emulator)",
    result="each Sweep: exactly one RayJob (no duplicate create) and a status",
)
async def test_200_sweeps_at_once_each_get_one_rayjob_and_a_status(
    tmp_path: Path, record_property: pytest.RecordProperty
) -> None:
    async with LoadSession(tmp_path) as session:
        result = await session.burst(N)
    assert result.rayjobs == N and result.rayjob_creates == N and result.duplicates == 0
    assert result.with_status == N
    record_property(
        "figures",
        f"p95 create→RayJob {result.p95_create_s:.2f} s, all converged in "
        f"{result.converged_s:.1f} s; operator: {result.operator_cpu_s:.1f} CPU-s, "
        f"{result.requests_per_sweep:.1f} API requests a Sweep, peak RSS "
        f"{result.operator_rss_peak_mib:.0f} MiB (benchmarks/operator_load.py records them)",
    )
