"""One attempt at a plan: its clock and deadline, the steps it reached, and what its
timeout says when it stops it."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tunix_rt.evidence.manifest import CommitInfo
from tunix_rt.rehearsal.plan import RehearsalPlan


@dataclass
class Attempt:
    """One run of a plan: when it started, its deadline, code, config, progress."""

    started: datetime
    clock: float
    deadline: float | None
    commit: CommitInfo
    config_digest: str
    step: int | None = None
    failure_logged: bool = False

    def report(self, metrics: Mapping[str, Any]) -> None:
        """The trainer's report callback: remember the last step reached."""
        step = metrics.get("step")
        if isinstance(step, int | float) and step == step and step >= 0:
            self.step = int(step)

    def elapsed(self) -> float:
        return time.monotonic() - self.clock


def seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def timeout_message(plan: RehearsalPlan, step: int | None, elapsed: float, *, done: bool) -> str:
    """What a run stopped by its timeout says (status message, log, CLI)."""
    limit = f"{plan.timeout_field} ({seconds(plan.timeout_seconds or 0)})"
    total = plan.config.max_steps
    if done:
        where = f"before the final evaluation (all {total} steps done)"
    elif step is None:
        where = f"at an unknown step (of {total})"
    else:
        where = f"at step {step} of {total}"
    return (
        f"{limit} reached {where} after {elapsed:.0f} s; raise {plan.timeout_field} "
        "or lower the trainer's maxSteps"
    )


def is_timeout(exc: BaseException, attempt: Attempt) -> bool:
    """The trainer stopped at our deadline (a TimeoutError once it has passed)."""
    return (
        isinstance(exc, TimeoutError)
        and attempt.deadline is not None
        and time.monotonic() >= attempt.deadline
    )
