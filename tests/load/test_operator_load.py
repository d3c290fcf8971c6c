"""Load (issue 14, item 6): 200 Sweeps created at once; every one converges to exactly
one RayJob and a status. The emulator is :class:`support.kmock_fast.FastApiServer`, so
the operator is what is measured. ``benchmarks/operator_load.py`` records the figures."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.load import sweeps_at_once

N = 200


@pytest.mark.load
@pytest.mark.reliability(
    "load",
    f"{N} Sweeps created at once (operator against the emulator)",
    result="each Sweep: exactly one RayJob (no duplicate create) and a status",
)
async def test_200_sweeps_at_once_each_get_one_rayjob_and_a_status(
    tmp_path: Path, record_property: pytest.RecordProperty
) -> None:
    result = await sweeps_at_once(N, f"file://{tmp_path / 'store'}")
    assert result.rayjobs == N and result.rayjob_creates == N and result.duplicates == 0
    assert result.with_status == N
    record_property(
        "figures",
        f"p95 create→RayJob {result.p95_create_s:.2f} s, all converged in "
        f"{result.converged_s:.1f} s, {result.cpu_s:.1f} CPU-s, {result.requests_served} "
        "requests (peak RSS: benchmarks/operator_load.py)",
    )
