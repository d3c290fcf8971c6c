"""The sweep's caps while it runs: accelerator-hours, wall clock, and the objective goal.

One :class:`SweepLimits` per driver session, seeded from what earlier sessions left in
the store (trial records' hours, ``sessions.json``'s wall seconds), fed by the driver's
Tune callback (trial started, reported, ended) and asked by its stopper (stop a running
trial, stop everything) and by the search algorithm's gate (may another trial start?).

Counting: a trial holds ``spec.accelerators_per_trial()`` devices (GPUs, TPU chips, 1 on
CPU) from its start to its end; its hours are what its own record says
(``accelerator_hours``, reported with every result as ``HOURS_KEY``), carried on from
there at wall-clock speed until its next report. "The next trial would exceed the cap":
the hours used, plus what the running trials still need and one more trial need, by
the mean of the trials that ran to the end (nothing is refused before one has).

Nothing here imports Ray; time comes in as arguments (monotonic seconds).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from statistics import mean
from typing import Any

from tunix_rt.api.sweep import SweepSpec
from tunix_rt.api.trial import TrialResult, TrialState, accelerator_hours
from tunix_rt.contract.best_trial import objective_value
from tunix_rt.tune.records import HOURS_KEY


@dataclass
class _Running:
    since: float
    """When the driver saw it start (monotonic)."""
    hours: float
    """Its hours at its latest report (its record's, earlier sessions included)."""
    at: float
    """When that report came (monotonic)."""


@dataclass
class SweepLimits:
    """Budgets and the goal of one sweep, as one driver session sees them."""

    spec: SweepSpec
    started: float
    """This session's start (monotonic)."""
    earlier_hours: dict[str, float] = field(default_factory=dict)
    """Per trial: hours its record held when this session started."""
    earlier_seconds: float = 0.0
    """Wall seconds of earlier driver sessions."""
    full_trials: list[float] = field(default_factory=list)
    """Hours of each trial that ran to its end (the estimate of the next one)."""
    full_seconds: list[float] = field(default_factory=list)
    running: dict[str, _Running] = field(default_factory=dict)
    ended_hours: dict[str, float] = field(default_factory=dict)
    """Per trial ended in this session: its final hours."""
    goal_trial: str | None = None
    closed: str | None = None
    """Why no new trial starts (a budget), once that is so."""

    @classmethod
    def seeded(
        cls, spec: SweepSpec, started: float, records: Iterable[TrialResult], seconds: float
    ) -> SweepLimits:
        """Limits for a session that finds ``records`` and ``seconds`` of earlier sessions."""
        limits = cls(spec, started, earlier_seconds=seconds)
        for record in records:
            limits.earlier_hours[record.trial_id] = record.accelerator_hours
            if record.state is TrialState.SUCCEEDED:
                limits.full_trials.append(record.accelerator_hours)
                limits.full_seconds.append(record.wall_seconds)
            if limits.goal_trial is None and _reaches_goal(spec, record):
                limits.goal_trial = record.trial_id
        return limits

    @property
    def devices(self) -> float:
        return self.spec.accelerators_per_trial()

    # ------------------------------------------------------------------ events
    def trial_started(self, trial_id: str, now: float) -> None:
        # A trial retried after a preemption ended in this session: its hours go on.
        hours = self.ended_hours.pop(trial_id, self.earlier_hours.get(trial_id, 0.0))
        self.running[trial_id] = _Running(since=now, hours=hours, at=now)

    def trial_reported(self, trial_id: str, result: Mapping[str, Any], now: float) -> None:
        """A result: the trial's own count of its hours, and the goal."""
        run = self.running.get(trial_id)
        if run is None:
            run = self.running[trial_id] = _Running(now, self.earlier_hours.get(trial_id, 0.0), now)
        reported = result.get(HOURS_KEY)
        if isinstance(reported, int | float) and not isinstance(reported, bool):
            run.hours, run.at = float(reported), now
        value = result.get(self.spec.objective.metric)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return
        if self.goal_trial is None and self.spec.objective.reached(float(value)):
            self.goal_trial = trial_id

    def trial_ended(self, trial_id: str, now: float, *, full: bool) -> None:
        """It ended; ``full``: it ran to its end (its hours estimate the next trial's)."""
        hours = self.trial_hours(trial_id, now)
        run = self.running.pop(trial_id, None)
        self.ended_hours[trial_id] = hours
        if full and run is not None:
            self.full_trials.append(hours - self.earlier_hours.get(trial_id, 0.0))
            self.full_seconds.append(now - run.since)

    # ------------------------------------------------------------------ counts
    def trial_hours(self, trial_id: str, now: float) -> float:
        """One trial's hours so far (its latest report, carried on to ``now``)."""
        run = self.running.get(trial_id)
        if run is None:
            return self.ended_hours.get(trial_id, self.earlier_hours.get(trial_id, 0.0))
        return run.hours + accelerator_hours(self.devices, now - run.at)

    def used_hours(self, now: float) -> float:
        """Accelerator-hours of every trial of the sweep, every session included."""
        ids = set(self.earlier_hours) | set(self.ended_hours) | set(self.running)
        return sum(self.trial_hours(i, now) for i in ids)

    def used_seconds(self, now: float) -> float:
        return self.earlier_seconds + max(0.0, now - self.started)

    def next_hours(self) -> float:
        """What the next trial will likely use (0 until a trial ran to its end)."""
        return mean(self.full_trials) if self.full_trials else 0.0

    def next_seconds(self) -> float:
        return mean(self.full_seconds) if self.full_seconds else 0.0

    def _still_needed(self, now: float) -> float:
        """Hours the running trials will likely still use."""
        estimate = self.next_hours()
        return sum(
            max(0.0, estimate - (self.trial_hours(i, now) - self.earlier_hours.get(i, 0.0)))
            for i in self.running
        )

    # ------------------------------------------------------------------ rules
    def exhausted(self, now: float) -> str | None:
        """Why the sweep must stop now (a cap reached), None while within both."""
        cap, used = self.spec.budget.accelerator_hours, self.used_hours(now)
        if cap is not None and used >= cap:
            return f"budget.acceleratorHours {cap:g} reached ({used:.4f} used)"
        wall, seconds = self.spec.budget.wall_clock_seconds, self.used_seconds(now)
        if wall is not None and seconds >= wall:
            return f"budget.wallClockSeconds {wall} reached ({seconds:.0f} s used)"
        return None

    def refuse_next(self, now: float) -> str | None:
        """Why no further trial may start (it would pass a cap), None when one may."""
        ended = self.exhausted(now)
        if ended:
            return ended
        cap = self.spec.budget.accelerator_hours
        if cap is not None:
            projected = self.used_hours(now) + self._still_needed(now) + self.next_hours()
            if self.full_trials and projected > cap:
                return (
                    f"budget.acceleratorHours {cap:g} reached: {self.used_hours(now):.4f} used, "
                    f"the next trial would need about {self.next_hours():.4f} more"
                )
        wall = self.spec.budget.wall_clock_seconds
        if (
            wall is not None
            and self.full_seconds
            and self.used_seconds(now) + self.next_seconds() > wall
        ):
            return (
                f"budget.wallClockSeconds {wall} reached: {self.used_seconds(now):.0f} s "
                f"used, the next trial would need about {self.next_seconds():.0f} s more"
            )
        return None

    def close_if_needed(self, now: float) -> str | None:
        """:meth:`refuse_next`, remembered: once closed, no trial starts this session."""
        if self.closed is None:
            self.closed = self.refuse_next(now)
        return self.closed

    def stop_everything(self, now: float) -> str | None:
        """Why every running trial stops now: a cap reached, or the goal."""
        if self.goal_trial is not None:
            return f"trial {self.goal_trial} reached objective.goal"
        ended = self.exhausted(now)
        if ended and self.closed is None:
            self.closed = ended
        return ended


def _reaches_goal(spec: SweepSpec, record: TrialResult) -> bool:
    if record.state not in (TrialState.SUCCEEDED, TrialState.STOPPED):
        return False
    return spec.objective.reached(objective_value(record, spec.objective))
