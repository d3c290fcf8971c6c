"""primary_score = mean answer correctness over the eval rows that have one.

Pure Python on purpose: the operator (no JAX) and the trainer must agree bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

PRIMARY_SCORE = "primary_score"
"""The metric name, as reported to Ray Tune and written to status and evidence."""


def compute_primary_score(rows: Iterable[Mapping[str, Any]]) -> float | None:
    """Mean of ``answer_correctness`` over rows where it is not null; ``None`` if none are.

    The float is returned as computed (no rounding) so that a JSON round trip keeps it.
    A row with a non-finite or out-of-range correctness is a bug upstream: fail loudly.
    """
    total = 0.0
    count = 0
    for index, row in enumerate(rows):
        value = row.get("answer_correctness")
        if value is None:
            continue
        if isinstance(value, bool):
            value = float(value)
        if not isinstance(value, int | float) or not math.isfinite(value) or not 0 <= value <= 1:
            raise ValueError(
                f"row {index}: answer_correctness must be a number in [0, 1] or null, got {value!r}"
            )
        total += float(value)
        count += 1
    if count == 0:
        return None
    return total / count
