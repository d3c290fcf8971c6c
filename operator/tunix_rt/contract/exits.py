"""Exit codes of the RayJob entrypoints (``python -m tunix_rt.tune``, ``python -m
tunix_rt.rehearsal``) and of the CLI commands that run them locally.

KubeRay reads only zero / non-zero; people and scripts read the rest.
"""

from __future__ import annotations

from enum import IntEnum

from tunix_rt.api.common import Phase


class ExitCode(IntEnum):
    OK = 0
    """The run finished: a sweep Succeeded (failed trials within maxFailedTrials
    included), a rehearsal left its evidence."""
    FAILED = 1
    """The run ended and Failed (too many failed trials, training failed, the store
    refused the results)."""
    INVALID = 2
    """Nothing ran: a bad spec, arguments, or a spec changed under an existing run."""
    INTERRUPTED = 130
    """Ctrl-C or SIGTERM; rerun the same command to resume (a sweep) or start over."""


def exit_code_for(phase: Phase) -> ExitCode:
    """A run's exit code from its final phase (anything unfinished was interrupted)."""
    if phase is Phase.SUCCEEDED:
        return ExitCode.OK
    if phase is Phase.FAILED:
        return ExitCode.FAILED
    return ExitCode.INTERRUPTED
