"""What a running sweep is doing, in words, from its first second: starting the driver,
starting Ray, a trial importing JAX and compiling its step, training at N steps/s with an
ETA. Read from the store (the driver's session in ``sessions.json``, the trial records),
never from log text, so that the display is never silent while nothing has a score yet.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tunix_rt.api.trial import TrialResult, TrialState


@dataclass
class _First:
    steps: int
    at: float


def eta(seconds: float) -> str:
    """``45s``, ``3m``, ``1h20m``."""
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"


@dataclass
class Activity:
    """Trial speeds from successive polls, and the sweep's stage in words."""

    max_steps: int
    builtin: bool = True
    """The built-in trainer (a trial imports JAX and compiles its step before step 1)."""
    first: dict[str, _First] = field(default_factory=dict)
    rates: dict[str, float] = field(default_factory=dict)

    def update(self, trials: list[TrialResult], now: float) -> None:
        """Note each running trial's steps at ``now`` (monotonic); its rate once it moved."""
        for trial in trials:
            if trial.state is not TrialState.RUNNING or trial.steps <= 0:
                continue
            seen = self.first.setdefault(trial.trial_id, _First(trial.steps, now))
            if trial.steps > seen.steps and now > seen.at:
                self.rates[trial.trial_id] = (trial.steps - seen.steps) / (now - seen.at)

    def speed(self, trial: TrialResult) -> str:
        """``, 2.1 steps/s, ETA 3m`` once its rate is known; else ''."""
        rate = self.rates.get(trial.trial_id)
        if not rate:
            return ""
        left = max(self.max_steps - trial.steps, 0)
        return f", {rate:.3g} steps/s, ETA {eta(left / rate)}"

    def trial_stage(self, trial: TrialResult) -> str:
        """What a running trial is doing before its first step."""
        if self.builtin:
            return f"trial {trial.trial_id}: importing JAX and compiling the step"
        return f"trial {trial.trial_id}: starting the entrypoint"

    def stage(self, trials: list[TrialResult], driver_started: bool) -> str | None:
        """The sweep's stage while no trial trains yet; None once one does."""
        running = [t for t in trials if t.state is TrialState.RUNNING]
        if any(t.steps > 0 for t in running):
            return None
        if running:
            return self.trial_stage(running[0])
        if any(t.finished for t in trials):
            return None  # between trials: the counts say it
        if driver_started:
            return "starting Ray and the first trial"
        return "starting the driver (loading Ray Tune)"
