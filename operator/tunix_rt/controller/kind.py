"""What a controller kind is: the steps of a start and a follow, and when each runs.

A kind (:data:`~tunix_rt.controller.sweep.SWEEP`,
:data:`~tunix_rt.controller.rehearsal.REHEARSAL`) supplies two reconcile steps and
predicates on its status:

* ``start`` (create / resume): validate, create or adopt the RayJob;
* ``follow`` (the timer, every ``poll_seconds`` while ``following(status)``: by default
  while it runs, i.e. has a RayJob, has not finished and is past Pending; while
  ``pending(status)`` -- it has a RayJob that has not started, so nothing in the store
  can change -- the step runs when the RayJob changes (:mod:`~tunix_rt.controller.wake`:
  kopf watches RayJobs) and, as a safety net, every ``resync_seconds``);
* ``restarts(status)``: a spec change is applied by starting again (by default: the
  object never got a RayJob) instead of being ignored visibly (``SpecChangeIgnored``).

:class:`Kind` also holds the steps a start and a follow have in common, the same for
both kinds: refuse an invalid spec, create or adopt the RayJob and go Pending
(:meth:`Kind.reject_invalid`, :meth:`Kind.launch`), publish a verdict
(:meth:`Kind.publish`: status, transition Event, phase metric). The status itself is
written by :mod:`~tunix_rt.controller.status_writer`; the kopf handlers that run the
steps are in :mod:`~tunix_rt.controller.handlers`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tunix_rt.api.common import Phase
from tunix_rt.contract import reasons
from tunix_rt.contract.phases import Verdict
from tunix_rt.controller.call import Call
from tunix_rt.controller.eager import take_eager
from tunix_rt.controller.runtime import ensure_rayjob, nothing_to_start
from tunix_rt.controller.status import (
    PROGRESSING,
    condition,
    failed_for_invalid_spec,
    is_terminal,
    phase_of,
)
from tunix_rt.controller.status_writer import write_failed, write_started, write_verdict

Step = Callable[[Call], Awaitable[None]]
StatusTest = Callable[[Mapping[str, Any]], bool]


def started_and_running(status: Mapping[str, Any]) -> bool:
    """Polled every ``poll_seconds``: its trials or evidence may change in the store."""
    return started(status) and phase_of(status) not in (None, Phase.PENDING)


def started_and_pending(status: Mapping[str, Any]) -> bool:
    """Woken by its RayJob's events (and resynced slowly): the run has not started."""
    return started(status) and phase_of(status) in (None, Phase.PENDING)


def started(status: Mapping[str, Any]) -> bool:
    return bool(status.get("rayJobName")) and not is_terminal(status)


def never_started(status: Mapping[str, Any]) -> bool:
    return not status.get("rayJobName")


def waiting_for_sweep(status: Mapping[str, Any]) -> bool:
    """Pending without a RayJob until the Sweep it names has finished (a Rehearsal's
    ``fromSweep``, a Sweep's ``warmStartFrom.sweep``): polled, started once it has."""
    cond = condition(status.get("conditions") or [], PROGRESSING)
    waiting = bool(cond and cond.get("reason") == reasons.WAITING_FOR_SWEEP)
    return waiting and not status.get("rayJobName") and not is_terminal(status)


def started_or_waiting(status: Mapping[str, Any]) -> bool:
    """Polled: waiting for the Sweep it names, or running (a pending RayJob wakes it)."""
    return waiting_for_sweep(status) or started_and_running(status)


@dataclass(frozen=True)
class Kind:
    """What differs between a Sweep and a Rehearsal controller, and the steps of a start
    and a follow that are the same for both."""

    name: str
    """The kind (``Sweep``); lower-cased it labels metrics and names the RayJob."""
    rayjob_label: str
    """Label on the RayJob naming its parent (checked before deleting it)."""
    kept: str
    """What stays in the store when the object is deleted (said in the Event)."""
    spec_fields: str
    """A few of the spec's fields, for the message about a spec that is not an object."""
    start: Step
    follow: Step
    following: StatusTest = started_or_waiting
    """The poll timer runs (default: it waits for the Sweep it names, or has a RayJob that
    runs and has not finished)."""
    pending: StatusTest = started_and_pending
    """RayJob events wake it, the resync timer runs (default: it has a RayJob that has
    not started)."""
    restarts: StatusTest = never_started
    """A spec change starts it again (default: it never got a RayJob)."""
    eager: Callable[[Call], Mapping[str, Any] | None] | None = None
    """The RayJob a new object gets when its spec can run (None: ``start`` will say why),
    created on the object's first watch event
    (:func:`~tunix_rt.controller.handlers.eager_start`); None: no eager
    start, the RayJob waits for ``start``."""

    @property
    def key(self) -> str:
        return self.name.lower()

    @property
    def plural(self) -> str:
        return f"{self.key}s"

    def observe(self, call: Call, phase: Phase | str) -> None:
        """The object's phase in the ``tunixrt_<kind>s{phase}`` gauge."""
        value = phase.value if isinstance(phase, Phase) else phase
        call.runtime.metrics.observe_phase(self.key, call.namespace, call.name, value)

    # start steps -------------------------------------------------------------------
    async def already_started(self, call: Call) -> bool:
        """Nothing to start: finished, or started before an operator restart (adopted); or
        nothing that can start: a ``spec`` that is not an object fails with reason
        ``InvalidSpec`` (once; a fixed spec starts it, as for any invalid spec)."""
        if await nothing_to_start(call.runtime, call.body, call.status, self.key):
            return True
        if call.spec_problem is not None:
            self.reject_invalid(call, call.spec_problem)
            return True
        return False

    def give_up(self, call: Call, reason: str, message: str) -> None:
        """Failed for good, with ``reason``; a Warning Event."""
        write_failed(call, reason, message, call.generation)
        self.observe(call, Phase.FAILED)

    def reject_invalid(self, call: Call, message: str, reason: str = reasons.INVALID_SPEC) -> None:
        """Failed with reason ``InvalidSpec`` (or ``Unschedulable``), said once per
        distinct message."""
        call.logger.warning("invalid %s spec: %s", self.name, message)
        if failed_for_invalid_spec(call.status) and call.status.get("message") == message:
            self.observe(call, Phase.FAILED)
        else:
            self.give_up(call, reason, message)

    async def launch(
        self, call: Call, manifest: Mapping[str, Any], fields: Mapping[str, Any]
    ) -> None:
        """Create or adopt the RayJob, then Pending with ``fields`` added to the status."""
        ensured = await ensure_rayjob(
            call.runtime,
            call,
            manifest,
            self.key,
            call.generation,
            created=take_eager(call, str(manifest["metadata"]["name"])),
        )
        if ensured is None:
            self.observe(call, Phase.FAILED)
            return
        rayjob_name = str(manifest["metadata"]["name"])
        write_started(call, rayjob_name, ensured.action, call.generation, fields)
        self.observe(call, Phase.PENDING)

    # follow steps ------------------------------------------------------------------
    def publish(self, call: Call, verdict: Verdict, desired: Mapping[str, Any]) -> None:
        """Patch the status, post the transition Event, record the phase."""
        write_verdict(call, verdict, desired)
        self.observe(call, verdict.phase)
        if verdict.finished:
            call.runtime.forget(self.key, call.namespace, call.name)
