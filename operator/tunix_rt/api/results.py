"""From trial records to the status' trial rows: what the Sweep's status shows of a trial.

The operator's status rows (pure Python); which trial is best is
:mod:`tunix_rt.contract.best_trial`.
"""

from __future__ import annotations

from typing import Any

from tunix_rt.api.sweep_status import BestTrial, TrialSummary
from tunix_rt.api.trial import TrialResult


def _shown(trial: TrialResult) -> dict[str, Any]:
    """What every status row of a trial shows of it: its id, params and score."""
    return {"id": trial.trial_id, "params": trial.params, "primary_score": trial.primary_score}


def trial_summary(trial: TrialResult) -> TrialSummary:
    return TrialSummary(
        **_shown(trial),
        state=trial.state,
        steps=trial.steps,
        preemptions=trial.preemptions or None,
    )


def best_summary(trial: TrialResult | None) -> BestTrial | None:
    if trial is None:
        return None
    return BestTrial(**_shown(trial), reused_from=trial.origin_sweep, schedule=trial.schedule)
