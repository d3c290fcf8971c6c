"""What a Rehearsal runs: its own ``trainer``, or the best trial of a Sweep (``fromSweep``).

:func:`resolve` answers one of three:

* :class:`Resolved`: the spec with ``trainer`` inline and ``overrides`` applied
  (:meth:`~tunix_rt.api.trainer.TrainerConfig.with_overrides`, the one way overrides
  apply), plus where it came from (source sweep, trial, params);
* :class:`Waiting`: the Sweep is not there yet or has not succeeded (checked again at the
  next poll);
* :class:`Unresolvable`: the Sweep failed, has no best trial, has an invalid spec or
  params that do not apply (``SourceSweep…``), or the overrides do not apply
  (``InvalidSpec``, naming ``spec.overrides.<field>``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import kopf
from pydantic import ValidationError

from tunix_rt.api.common import Phase
from tunix_rt.api.errors import ManifestError, describe
from tunix_rt.api.rehearsal import RehearsalSpec, SourceTrial
from tunix_rt.api.sweep import SweepSpec
from tunix_rt.contract.best_config import best_trial_config
from tunix_rt.contract.reasons import INVALID_SPEC
from tunix_rt.controller.runtime import Runtime
from tunix_rt.kuberay.client import KubeApiError


@dataclass
class Resolved:
    spec: RehearsalSpec
    source: SourceTrial = field(default_factory=SourceTrial)
    params: dict[str, Any] | None = None


@dataclass
class Waiting:
    message: str


@dataclass
class Unresolvable:
    reason: str
    message: str


Outcome = Resolved | Waiting | Unresolvable


async def resolve(
    runtime: Runtime,
    namespace: str,
    spec: RehearsalSpec,
    annotations: Mapping[str, str] | None = None,
) -> Outcome:
    """The spec to run, with ``trainer`` inline (from the source Sweep's best trial). An
    inline trainer's source is what a promoted manifest's annotations say, if anything."""
    if spec.trainer is not None:
        try:
            trainer = spec.trainer.with_overrides(spec.overrides)
        except ManifestError as exc:
            return Unresolvable(INVALID_SPEC, str(exc))
        return Resolved(
            spec.model_copy(update={"trainer": trainer, "overrides": None}),
            SourceTrial.annotated(annotations),
        )
    sweep_name = str(spec.from_sweep)
    try:
        sweep = await runtime.rayjobs.get_sweep(namespace, sweep_name)
    except KubeApiError as exc:
        raise kopf.TemporaryError(f"reading Sweep {sweep_name}: {exc}", delay=10) from exc
    if sweep is None:
        return Waiting(f"Sweep {sweep_name} not found in namespace {namespace}; waiting for it")
    return _not_ready(sweep_name, sweep.get("status") or {}) or _from_best_trial(
        spec, sweep_name, sweep
    )


def _not_ready(sweep_name: str, sweep_status: dict[str, Any]) -> Outcome | None:
    """Waiting while the Sweep runs; Unresolvable when it failed or has no best trial."""
    phase = sweep_status.get("phase") or Phase.PENDING.value
    if phase == Phase.FAILED.value:
        why = sweep_status.get("message") or "no message"
        return Unresolvable(
            "SourceSweepFailed",
            f"Sweep {sweep_name} failed ({why}); there is no best trial to rehearse",
        )
    if phase != Phase.SUCCEEDED.value:
        progress = sweep_status.get("trialsProgress")
        extra = f", {progress} trials" if progress else ""
        return Waiting(
            f"Sweep {sweep_name} is {phase}{extra}; the Rehearsal starts when it succeeds"
        )
    if not (sweep_status.get("bestTrial") or {}).get("id"):
        return Unresolvable(
            "NoBestTrial",
            f"Sweep {sweep_name} succeeded without a best trial (no trial "
            "reported a score); nothing to rehearse",
        )
    return None


def _from_best_trial(spec: RehearsalSpec, sweep_name: str, sweep: dict[str, Any]) -> Outcome:
    """The Sweep's best trial's config (:func:`best_trial_config`), overrides on top."""
    best = (sweep.get("status") or {}).get("bestTrial") or {}
    try:
        sweep_spec = SweepSpec.model_validate(sweep.get("spec") or {})
    except ValidationError as exc:
        return Unresolvable(
            "SourceSweepInvalid", f"Sweep {sweep_name} has an invalid spec: {describe(exc)}"
        )
    params = dict(best.get("params") or {})
    try:
        trainer = best_trial_config(
            sweep_spec.trial_config({}), params, best.get("schedule")
        ).with_overrides(spec.overrides)
    except ManifestError as exc:
        return Unresolvable(INVALID_SPEC, str(exc))
    except (ValidationError, ValueError) as exc:
        return Unresolvable(
            "SourceSweepInvalid",
            f"best trial {best['id']} of Sweep {sweep_name} has params that do "
            f"not apply: {str(exc).splitlines()[0]}",
        )
    resolved = spec.model_copy(update={"trainer": trainer, "from_sweep": None, "overrides": None})
    return Resolved(resolved, SourceTrial(sweep_name, str(best["id"])), params)
