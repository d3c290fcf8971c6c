"""What one driver session's hooks in Tune's loop share: its log, budgets and ledger."""

from __future__ import annotations

from dataclasses import dataclass

from tunix_rt.tune.budget import SweepLimits
from tunix_rt.tune.durable import SessionLedger
from tunix_rt.tune.sweep_log import SweepLog


@dataclass(frozen=True)
class SessionContext:
    """The live parts of one driver session that the monitor and the budget gate use.

    Made once the session is open (its entry in ``sessions.json`` added, its limits
    seeded) and handed to the hooks (:func:`tunix_rt.tune.hooks.attach`): Tune restores
    the hooks from its pickle on resume, so they cannot keep these themselves.
    """

    log: SweepLog
    limits: SweepLimits
    """This session's budgets and goal (:mod:`tunix_rt.tune.budget`)."""
    ledger: SessionLedger
    """This session's entry in ``sessions.json``; the monitor refreshes its sign of life."""
