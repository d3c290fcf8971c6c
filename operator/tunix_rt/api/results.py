"""From trial records to what a person reads: the best trial and the status trial table.

Shared by the local CLI, the Tune driver's summary and the operator (pure Python).
"""

from __future__ import annotations

from collections.abc import Iterable

from tunix_rt.api.sweep_goals import Objective
from tunix_rt.api.sweep_status import BestTrial, TrialSummary
from tunix_rt.api.trial import TrialResult, TrialState
from tunix_rt.scoring import PRIMARY_SCORE


def objective_value(trial: TrialResult, objective: Objective) -> float | None:
    """The trial's value of the sweep objective (primary_score unless the spec says else)."""
    if objective.metric == PRIMARY_SCORE:
        return trial.primary_score
    return trial.metrics.get(objective.metric)


def best_trial(trials: Iterable[TrialResult], objective: Objective) -> TrialResult | None:
    """The finished, non-failed trial with the best objective; ties go to the earlier id."""
    scored = [
        (value, t.trial_id, t)
        for t in trials
        if t.state in {TrialState.SUCCEEDED, TrialState.STOPPED}
        and (value := objective_value(t, objective)) is not None
    ]
    if not scored:
        return None
    sign = -1.0 if objective.mode == "max" else 1.0
    return min(scored, key=lambda item: (sign * item[0], item[1]))[2]


def ranked(trials: Iterable[TrialResult], objective: Objective) -> list[TrialResult]:
    """Trials best first; unscored trials last, in id order."""
    sign = -1.0 if objective.mode == "max" else 1.0

    def key(t: TrialResult) -> tuple[int, float, str]:
        value = objective_value(t, objective)
        return (value is None, sign * value if value is not None else 0.0, t.trial_id)

    return sorted(trials, key=key)


def trial_summary(trial: TrialResult) -> TrialSummary:
    return TrialSummary(
        id=trial.trial_id,
        params=trial.params,
        primary_score=trial.primary_score,
        state=trial.state,
        steps=trial.steps,
    )


def best_summary(trial: TrialResult | None) -> BestTrial | None:
    if trial is None:
        return None
    return BestTrial(id=trial.trial_id, params=trial.params, primary_score=trial.primary_score)
