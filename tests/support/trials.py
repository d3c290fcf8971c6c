"""Trial records of a learning-rate sweep in the local namespace, as the CLI and the
evidence tests show them; each test adds the fields it looks at."""

from __future__ import annotations

from typing import Any

from tunix_rt.api.trial import TrialResult, TrialState


def lr_trial(
    sweep: str, trial_id: str, lr: float, score: float | None, state: TrialState, **fields: Any
) -> TrialResult:
    return TrialResult(
        trial_id=trial_id,
        sweep=sweep,
        namespace="local",
        params={"learningRate": lr},
        state=state,
        primary_score=score,
        **fields,
    )
