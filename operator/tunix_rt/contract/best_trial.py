"""Which trial of a sweep is best, decided once for the driver, the operator and the CLI.

The rule: among the trials that finished without failing (succeeded or stopped early)
and have a value of the sweep's objective, the best value by its mode; ties go to the
earlier trial id. Once the driver wrote its summary, the summary's pick stands
(:func:`sweep_best`). Pure Python.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from tunix_rt.api.sweep_goals import Objective
from tunix_rt.api.trial import SweepResult, TrialResult, TrialState
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


def sweep_best(
    trials: Sequence[TrialResult], objective: Objective, summary: SweepResult | None
) -> TrialResult | None:
    """The summary's best trial (when it is among ``trials``), else the best by
    ``objective`` (:func:`best_trial`)."""
    best = None
    if summary is not None and summary.best_trial_id:
        best = next((t for t in trials if t.trial_id == summary.best_trial_id), None)
    return best if best is not None else best_trial(trials, objective)


def ranked(trials: Iterable[TrialResult], objective: Objective) -> list[TrialResult]:
    """Trials best first; unscored trials last, in id order."""
    sign = -1.0 if objective.mode == "max" else 1.0

    def key(t: TrialResult) -> tuple[int, float, str]:
        value = objective_value(t, objective)
        return (value is None, sign * value if value is not None else 0.0, t.trial_id)

    return sorted(trials, key=key)
