"""Exit codes of the RayJob entrypoints (``python -m tunix_rt.tune``, ``python -m
tunix_rt.rehearsal``) and of the CLI commands that run them locally.

KubeRay reads only zero / non-zero; people and scripts read the rest.
"""

from __future__ import annotations

import re
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


NOT_RETRIED = frozenset({ExitCode.FAILED, ExitCode.INVALID})
"""Exits that are the sweep's own verdict: a new attempt would end the same way."""

_EXIT_IN_MESSAGE = re.compile(r"exit(?:ed with)? code:? (-?\d+)", re.IGNORECASE)


def exit_code_in(message: str | None) -> int | None:
    """The driver's exit code as Ray's job message states it ("Job entrypoint command
    failed with exit code 1, …"); None when the message names none."""
    found = _EXIT_IN_MESSAGE.search(message or "")
    return int(found.group(1)) if found else None


def retriable(code: int | None) -> bool:
    """Whether a driver that ended with ``code`` should be resumed by a new attempt.

    None (it never said: killed, its node lost), INTERRUPTED (SIGTERM on preemption or
    drain) and deaths by signal (negative codes, 128+N) are infrastructure; FAILED and
    INVALID are the sweep's own verdict; OK needs nothing."""
    if code is None:
        return True
    return code != ExitCode.OK and code not in NOT_RETRIED
