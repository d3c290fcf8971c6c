"""Which earlier trials a warm-started sweep reuses, decided once (pure: no I/O, no Ray).

:func:`judge_trials` gives every earlier trial a verdict: reused (a copy of its record
with ``reusedFrom``, its params as the new search space spells them) or skipped with a
reason (:class:`~tunix_rt.api.warm_start.SkipReason`). The rules, in order:

1. it finished and succeeded (a failed trial measured nothing; one stopped early by a
   scheduler measured a shorter run than the new sweep's trials);
2. it has a value of the new sweep's objective metric;
3. the dataset is the same: the digests both runs recorded, when both did (else a note);
4. every parameter of the new search space has a value inside it (type, bounds,
   choices, grid values); a parameter the earlier sweep did not search takes the value
   its trainer config had;
5. its whole trainer config (base config with its params, ``maxSteps`` = the earlier
   ``budget.smokeSteps``) equals the config the new sweep would give that point:
   otherwise the fields that differ are named.

:func:`measured_key` is the identity of a configuration (what "already measured" means)
and :func:`new_trials_planned` how many new trials a sweep still plans once measured
points are not run again.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from tunix_rt.api.search_space import MODEL_BASED, Algorithm, Distribution, SearchParam
from tunix_rt.api.sweep import SweepSpec
from tunix_rt.api.trainer import TrainerConfig, searchable_name, wire_param_name
from tunix_rt.api.trial import TrialResult, TrialState
from tunix_rt.api.warm_start import ReusedFrom, SkippedTrial, SkipReason
from tunix_rt.contract.best_trial import objective_value

MeasuredKey = tuple[tuple[str, tuple[str, object]], ...]


@dataclass(frozen=True)
class Source:
    """The earlier sweep as the verdicts need it: its name, results, base trainer config
    (wire form, ``maxSteps`` its smokeSteps) and dataset digest (None: not recorded)."""

    sweep: str
    uri: str
    base_config: Mapping[str, Any]
    dataset_sha256: str | None = None


@dataclass
class Judged:
    """The verdicts: reused trials (copies, ``reusedFrom`` set), skipped ones, notes."""

    reused: list[TrialResult] = field(default_factory=list)
    skipped: list[SkippedTrial] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def judge_trials(
    spec: SweepSpec,
    source: Source,
    trials: Iterable[TrialResult],
    dataset_sha256: str | None = None,
) -> Judged:
    """Every earlier trial reused or skipped (see the module's rules); ``dataset_sha256``:
    the digest of the new sweep's dataset (None: unknown)."""
    out = Judged(notes=_dataset_notes(source.dataset_sha256, dataset_sha256))
    try:
        earlier_base = TrainerConfig.model_validate(dict(source.base_config))
    except ValidationError as exc:
        earlier_base = None
        out.notes.append(f"the earlier trainer config does not validate: {_first(exc)}")
    for trial in sorted(trials, key=lambda t: t.trial_id):
        why = _skip(spec, source, earlier_base, trial, dataset_sha256)
        if isinstance(why, SkippedTrial):
            out.skipped.append(why)
        else:
            # A trial the earlier sweep reused itself keeps where it was measured.
            origin = trial.reused_from or ReusedFrom(
                sweep=source.sweep, trial_id=trial.trial_id, uri=source.uri
            )
            out.reused.append(trial.model_copy(update={"params": why, "reused_from": origin}))
    return out


def _skip(
    spec: SweepSpec,
    source: Source,
    earlier_base: TrainerConfig | None,
    trial: TrialResult,
    dataset_sha256: str | None,
) -> SkippedTrial | dict[str, Any]:
    """Why ``trial`` is skipped, or its point in the new space (it is reused)."""

    def skipped(reason: SkipReason, message: str) -> SkippedTrial:
        return SkippedTrial(trial=trial.trial_id, reason=reason, message=message)

    state = _state_problem(trial)
    if state is not None:
        return skipped(*state)
    metric = spec.objective.metric
    if objective_value(trial, spec.objective) is None:
        return skipped(SkipReason.NO_METRIC, f"it reported no {metric} (the objective)")
    known = source.dataset_sha256, dataset_sha256
    if None not in known and known[0] != known[1]:
        message = f"dataset sha256 {str(known[0])[:12]}… here {str(known[1])[:12]}…"
        return skipped(SkipReason.DATASET, f"trained on another dataset: {message}")
    if earlier_base is None:
        return skipped(SkipReason.TRAINER_CONFIG, "the earlier trainer config does not validate")
    point = point_in_space(spec, trial.params, earlier_base)
    if isinstance(point, str):
        return skipped(SkipReason.OUTSIDE_SPACE, point)
    try:
        earlier = earlier_base.with_params(trial.params)
    except (ValidationError, ValueError) as exc:
        return skipped(SkipReason.TRAINER_CONFIG, f"its params do not apply here: {_first(exc)}")
    differs = config_differences(earlier, spec.trial_config(point))
    if differs:
        return skipped(SkipReason.TRAINER_CONFIG, "trainer config differs: " + "; ".join(differs))
    return point


def _state_problem(trial: TrialResult) -> tuple[SkipReason, str] | None:
    if trial.state is TrialState.FAILED:
        error = (trial.error or "no error recorded").strip().splitlines() or ["failed"]
        return SkipReason.FAILED, f"it failed ({error[-1][:160]}): nothing was measured"
    if trial.state is TrialState.STOPPED:
        return SkipReason.STOPPED_EARLY, (
            f"stopped early at step {trial.steps}: a shorter run than this sweep's trials"
        )
    if trial.state is not TrialState.SUCCEEDED:
        return SkipReason.NOT_FINISHED, f"it had not finished ({trial.state.value})"
    return None


def _dataset_notes(earlier: str | None, here: str | None) -> list[str]:
    if earlier is None:
        return [
            "the earlier sweep recorded no dataset digest (no evidence run_manifest.json): "
            "datasets compared by their trainer config only"
        ]
    if here is None:
        return ["this sweep's dataset digest is unknown: datasets compared by config only"]
    return []


def _first(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        errors = exc.errors()
        if errors:
            return str(errors[0]["msg"])[:200]
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__


def param_value(config: TrainerConfig, key: str) -> Any:
    """The value ``config`` gives searched parameter ``key`` (a trainer field in either
    spelling, or one of the user's declared ``parameters``)."""
    if key in (config.parameters or {}):
        return (config.user_params or {}).get(key)
    try:
        return getattr(config, searchable_name(key))
    except ValueError:
        return None


def point_in_space(
    spec: SweepSpec, params: Mapping[str, Any], earlier: TrainerConfig
) -> dict[str, Any] | str:
    """``params`` as a point of ``spec``'s search space (a parameter the earlier trial did
    not search takes the value of ``earlier``, its base config), or why it is outside
    (naming the parameter)."""
    point: dict[str, Any] = {}
    spelled = {_wire(k): v for k, v in params.items()}
    for key, param in spec.search_space.items():
        value = spelled[key] if key in spelled else param_value(earlier, key)
        if value is None:
            return f"{key} has no value in the earlier trial"
        inside = value_in(param, value)
        if inside is None:
            return f"{key}={value!r} is outside searchSpace.{key} ({describe_param(param)})"
        point[key] = inside
    return point


def _wire(key: str) -> str:
    """A trainer parameter in its wire spelling (a user's own name as it is)."""
    try:
        return wire_param_name(key)
    except ValueError:
        return key


def value_in(param: SearchParam, value: Any) -> Any | None:
    """``value`` as ``param``'s distribution holds it (the choice itself, an int for
    randint), or None when it is outside."""
    if param.values is not None:
        return next((c for c in param.values if _same(c, value)), None)
    assert param.low is not None and param.high is not None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    if param.type is Distribution.RANDINT:
        if not float(value).is_integer() or not param.low <= value < param.high:
            return None
        return int(value)
    return float(value) if param.low <= value <= param.high else None


def _same(choice: Any, value: Any) -> bool:
    """Equal as the spec means it: a bool only equals a bool, 1 equals 1.0."""
    if isinstance(choice, bool) or isinstance(value, bool):
        return isinstance(choice, bool) and isinstance(value, bool) and choice == value
    return bool(choice == value)


def describe_param(param: SearchParam) -> str:
    if param.values is not None:
        shown = ", ".join(repr(v) for v in param.values[:8])
        more = ", …" if len(param.values) > 8 else ""
        return f"{param.type.value} of [{shown}{more}]"
    high = "exclusive" if param.type is Distribution.RANDINT else "inclusive"
    return f"{param.type.value} {param.low:g} to {param.high:g} ({high})"


def config_differences(earlier: TrainerConfig, here: TrainerConfig) -> list[str]:
    """The fields (dotted, wire spelling) whose values differ, ``earlier`` first."""
    a, b = _flat(earlier.to_wire()), _flat(here.to_wire())
    out = []
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            hint = " (budget.smokeSteps)" if key == "maxSteps" else ""
            out.append(f"{key}{hint} {_shown(a.get(key))} there, {_shown(b.get(key))} here")
    return out


def _shown(value: Any) -> str:
    return "unset" if value is None else repr(value)[:60]


def _flat(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping) and key != "userParams" and key != "parameters":
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


# ----------------------------------------------------------------------------- measured


def measured_key(params: Mapping[str, Any]) -> MeasuredKey:
    """A configuration's identity: its params, numbers compared as numbers (1 == 1.0),
    a bool never equal to a number."""

    def norm(value: Any) -> tuple[str, object]:
        if isinstance(value, bool):
            return "bool", value
        if isinstance(value, int | float):
            return "number", float(value)
        return "text", str(value)

    return tuple(sorted((str(k), norm(v)) for k, v in params.items()))


def space_size(spec: SweepSpec) -> int | None:
    """How many distinct configurations the space holds (None: infinitely many)."""
    total = 1
    for param in spec.search_space.values():
        if param.values is not None:
            total *= len({measured_key({"v": v}) for v in param.values})
        elif param.type is Distribution.RANDINT:
            assert param.low is not None and param.high is not None
            total *= int(param.high) - int(param.low)
        else:
            return None
    return total


def new_trials_planned(spec: SweepSpec, reused: Sequence[TrialResult], rerun: bool) -> int:
    """New trials the sweep runs: ``planned_trials`` less what measured points take away
    (a grid's points measured already, or the last unmeasured points of a finite space)."""
    planned = spec.planned_trials()
    if rerun or not reused:
        return planned
    keys = Counter(measured_key(t.params) for t in reused)
    if spec.algorithm is Algorithm.GRID:
        repeats = spec.samples()
        return max(0, planned - sum(min(count, repeats) for count in keys.values()))
    size = space_size(spec)
    if size is None:
        return planned
    return max(0, min(planned, size - len(keys)))


def algorithm_use(spec: SweepSpec, reused: int, rerun: bool) -> str:
    """What the sweep's search algorithm does with ``reused`` earlier trials (documented in
    the README's Sweep section; recorded in the summary)."""
    if reused == 0:
        return "no earlier trial fits this sweep: it runs as a cold one"
    never = (
        "measured configurations may run again (rerunMeasured)"
        if rerun
        else "a proposal equal to a measured configuration is not run"
    )
    alg = spec.algorithm
    if alg in MODEL_BASED:
        how = {
            Algorithm.TPE: "TPE models them from the first proposal (they count toward its "
            "random startup trials)",
            Algorithm.GP: "the GP is fitted to them from the first proposal (they count "
            "toward its random startup trials)",
            Algorithm.CMAES: "they count toward its random startup trials; with 10 or more "
            "they also set CMA-ES's initial distribution (Optuna's WS-CMA-ES source_trials)",
            Algorithm.QMC: "the Sobol sequence does not model them (qmc ignores results)",
        }[alg]
        return f"{reused} trial(s) added to the Optuna study as completed trials; {how}; {never}"
    if alg is Algorithm.GRID:
        skip = (
            "grid points measured already are run again"
            if rerun
            else ("grid points measured already are skipped (once per earlier measurement)")
        )
        return f"{reused} trial(s) count in the result; {skip}"
    return f"{reused} trial(s) count in the result (random search has no model); {never}"
