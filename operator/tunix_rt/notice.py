"""SIGTERM as a preemption notice: checkpoint at the next step boundary, then exit.

GKE sends SIGTERM to a node's pods before it preempts the node (spot VMs: ~30 s). A
trainer that checkpoints is asked, at its next step boundary, to save and raise
:class:`Preempted`; the trial is then retried from that checkpoint and loses no step
(``tune.preemption``). Without a trainer armed (nothing to save) the signal does what it
did before (Ray's worker exits, a plain process ends).

Python lets only the main thread install a signal handler, and a Ray Tune trial runs on
another thread of its worker; Ray's worker installs its own SIGTERM handler when its
task loop starts. :func:`install_in_ray_worker`, run by Ray before that loop
(``__RAY_WORKER_PROCESS_SETUP_HOOK_ENV_VAR``, set by the driver: :data:`RAY_HOOK_ENV`),
wraps the handler Ray installs so an armed trainer hears the notice first.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

RAY_HOOK_ENV = "__RAY_WORKER_PROCESS_SETUP_HOOK_ENV_VAR"
"""Ray's worker runs the ``module.function`` this names before its task loop."""

RAY_HOOK = "tunix_rt.notice.install_in_ray_worker"


class Preempted(Exception):
    """The trainer saved a checkpoint at ``step`` after SIGTERM and stopped."""

    def __init__(self, step: int) -> None:
        super().__init__(f"SIGTERM: checkpoint saved at step {step}; stopped to be resumed")
        self.step = step


class Notice:
    """This process's SIGTERM notice: ``received`` once signalled while a trainer that
    checkpoints is armed; otherwise the handler it replaced runs."""

    def __init__(self) -> None:
        self.received = False
        self.armed = 0
        self.previous: Any = signal.SIG_DFL
        self._lock = threading.Lock()

    def handle(self, signum: int, frame: Any) -> None:
        if self.armed and not self.received:  # a second SIGTERM: as if none were armed
            self.received = True
            print("SIGTERM: checkpointing at the next step boundary", file=sys.stderr, flush=True)
            return
        previous = self.previous
        if callable(previous):
            previous(signum, frame)
        elif previous != signal.SIG_IGN:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    def install(self) -> bool:
        """Handle SIGTERM from here on (main thread only; False elsewhere)."""
        try:
            previous = signal.signal(signal.SIGTERM, self.handle)
        except ValueError:  # not the main thread
            return False
        if previous != self.handle:
            self.previous = previous
        return True

    @contextlib.contextmanager
    def arm(self) -> Iterator[Callable[[], bool]]:
        """While a trainer that can checkpoint runs: yields its question, 'stop now?'."""
        with self._lock:
            self.armed += 1
        try:
            yield lambda: self.received
        finally:
            with self._lock:
                self.armed -= 1


NOTICE = Notice()
"""The one notice of this process (a signal handler is per process)."""


def install_in_ray_worker() -> None:
    """Ray's worker setup hook: the SIGTERM handler Ray's task loop installs is wrapped
    by :data:`NOTICE`. Never raises (a failing hook would end every worker)."""
    with contextlib.suppress(Exception):
        from ray._private import utils

        original = utils.set_sigterm_handler

        def wrapped(handler: Callable[[int, Any], None]) -> None:
            original(NOTICE.handle)  # type: ignore[no-untyped-call]
            NOTICE.previous = handler

        utils.set_sigterm_handler = wrapped
