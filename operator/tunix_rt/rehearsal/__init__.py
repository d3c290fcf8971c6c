"""Rehearsal runs: one fixed config trained and evaluated, leaving an evidence bundle.

``python -m tunix_rt.rehearsal`` is the RayJob entrypoint; ``tunix-rt rehearsal run`` the
local CLI. Importing this package does not import JAX (only a run does). The operator
imports none of it: what it reads back (failure.json, the evidence at the prefix) is
``tunix_rt.evidence.failure`` and ``tunix_rt.contract.rehearsal_evidence``.
"""

from tunix_rt.api.names import SOURCE_SWEEP_ANNOTATION, SOURCE_TRIAL_ANNOTATION
from tunix_rt.evidence.failure import (
    RehearsalFailure,
    failure_from_store,
)
from tunix_rt.rehearsal.errors import RehearsalError, exit_code
from tunix_rt.rehearsal.plan import RehearsalPlan, plan_from_spec
from tunix_rt.rehearsal.plan_file import plan_from_file
from tunix_rt.rehearsal.result import RehearsalResult, result_from_store
from tunix_rt.rehearsal.run import run_rehearsal, sigterm_interrupts
from tunix_rt.rehearsal.run_log import RunLog

__all__ = [
    "SOURCE_SWEEP_ANNOTATION",
    "SOURCE_TRIAL_ANNOTATION",
    "RehearsalError",
    "RehearsalFailure",
    "RehearsalPlan",
    "RehearsalResult",
    "RunLog",
    "exit_code",
    "failure_from_store",
    "plan_from_file",
    "plan_from_spec",
    "result_from_store",
    "run_rehearsal",
    "sigterm_interrupts",
]
