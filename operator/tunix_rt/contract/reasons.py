"""The reasons the operator writes into Conditions and Kubernetes Events, named once.

A reason is API: ``kubectl wait``, Argo CD health checks and alerts match on it, so each
string is spelled here and nowhere else in the controller. The phase rules' own verdict
reasons (``TrialsRunning``, ``NoSummary``, ...) stay with their rules in
:mod:`tunix_rt.contract.phases`; a phase's name is the reason of its ``Ready``
condition while it runs.
"""

from __future__ import annotations

# ----------------------------------------------------------------------------- conditions

INVALID_SPEC = "InvalidSpec"
"""Failed: the spec does not validate (the message names the field)."""
RAYJOB_REJECTED = "RayJobRejected"
"""Failed: the API server refused the RayJob the spec became (400 or 422)."""
RAYJOB_LOST = "RayJobLost"
"""Failed: the RayJob is gone and no spec it ran can be read."""
STORE_UNAVAILABLE = "StoreUnavailable"
"""``Degraded=True``: the store cannot be read (retried every poll)."""
STORE_AVAILABLE = "StoreAvailable"
"""``Degraded=False`` once the store can be read again."""
SPEC_CHANGE_IGNORED = "SpecChangeIgnored"
"""A spec edit after the run started is not applied (condition and Warning Event)."""
FINISHED = "Finished"
"""``Progressing`` / ``Reconciling`` = False once the object succeeded."""
AS_EXPECTED = "AsExpected"
"""``Failed`` / ``Stalled`` = False while nothing went wrong."""
WAITING_FOR_SWEEP = "WaitingForSweep"
"""Pending: a Rehearsal's ``fromSweep`` has not succeeded yet (and its Event)."""
RETRYING = "Retrying"
"""Pending again: a new RayJob resumes a sweep after an infrastructure failure (and its
Warning Event)."""

# ----------------------------------------------------------------------------- events

RAYJOB_CREATED = "RayJobCreated"
"""The RayJob was created (the Event; also the Pending reason that follows)."""
RAYJOB_ADOPTED = "RayJobAdopted"
"""An existing RayJob of ours was adopted (the Event; also the Pending reason)."""
RAYJOB_DELETED = "RayJobDeleted"
"""The object was deleted and its RayJob with it."""
RAYJOB_CONFLICT = "RayJobConflict"
"""A RayJob of that name exists and is not ours: nothing is created (retried)."""
KUBERAY_MISSING = "KubeRayMissing"
"""The API server does not serve ``ray.io/v1`` RayJobs (retried)."""
FORBIDDEN = "Forbidden"
"""The operator's RBAC does not allow creating the RayJob (retried)."""
TRIAL_FINISHED = "TrialFinished"
"""A trial finished (succeeded or stopped)."""
RESULTS_UNREADABLE = "ResultsUnreadable"
"""Warning Event: trial records in the store are there but cannot be read (damaged)."""
TRIAL_FAILED = "TrialFailed"
"""A trial failed (Warning)."""
FAILED = "Failed"
"""A transition to Failed without a reason of its own (Warning)."""
