"""Rehearsal runs: one fixed config trained and evaluated, leaving an evidence bundle.

``python -m tunix_rt.rehearsal`` is the RayJob entrypoint; ``tunix-rt rehearsal run`` the
local CLI. Importing this package does not import JAX (only a run does).
"""

from tunix_rt.api.names import SOURCE_SWEEP_ANNOTATION, SOURCE_TRIAL_ANNOTATION
from tunix_rt.contract.layout import FAILED_DIR
from tunix_rt.contract.layout import FAILURE_FILE as FAILURE_NAME
from tunix_rt.rehearsal.failure import (
    RehearsalFailure,
    failure_from_store,
)
from tunix_rt.rehearsal.run import (
    RehearsalError,
    RehearsalPlan,
    RehearsalResult,
    RunLog,
    exit_code,
    plan_from_file,
    plan_from_spec,
    result_from_store,
    run_rehearsal,
    sigterm_interrupts,
)

__all__ = [
    "FAILED_DIR",
    "FAILURE_NAME",
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
