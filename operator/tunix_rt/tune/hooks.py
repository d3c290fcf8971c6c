"""The driver's hooks in Tune's loop: the gate before the search algorithm and the monitor.

Tune pickles both with the experiment (``tuner.pkl``) and a resumed session gets Tune's
copies back, so neither holds this session's live parts: :func:`attach` hands them the
:class:`~tunix_rt.tune.context.SessionContext` (log, budgets, ledger) of the session
that runs them, whichever way the ``Tuner`` was made.
"""

from __future__ import annotations

import json
import time
from typing import Any

import ray
from ray import tune
from ray.tune.search import SearchAlgorithm, Searcher, SearchGenerator

from tunix_rt.api.trial import TrialResult, TrialState
from tunix_rt.contract.layout import SweepFiles, SweepTarget
from tunix_rt.scoring import PRIMARY_SCORE
from tunix_rt.storage import StoreError, scrub
from tunix_rt.tune.budget import SweepLimits
from tunix_rt.tune.context import SessionContext
from tunix_rt.tune.preemption import MAX_PREEMPTIONS, preempted_record, trainer_failed
from tunix_rt.tune.records import failed_record, finished, plain, stopped_record, utcnow


class Delegating(SearchAlgorithm):
    """A search algorithm that hands everything to the one it wraps (a Searcher is
    wrapped in Tune's ``SearchGenerator`` first); subclasses change what they need."""

    def __init__(self, inner: SearchAlgorithm | Searcher) -> None:
        self.searcher = inner if isinstance(inner, SearchAlgorithm) else SearchGenerator(inner)

    def next_trial(self) -> Any:
        return self.searcher.next_trial()

    def is_finished(self) -> bool:
        return bool(self.searcher.is_finished())

    @property
    def metric(self) -> Any:
        return self.searcher.metric

    @property
    def total_samples(self) -> int:
        return int(self.searcher.total_samples)

    def set_search_properties(self, metric: Any, mode: Any, config: Any, **spec: Any) -> bool:
        return bool(self.searcher.set_search_properties(metric, mode, config, **spec))

    def add_configurations(self, experiments: Any) -> None:
        self.searcher.add_configurations(experiments)

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        self.searcher.on_trial_result(trial_id, result)

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        self.searcher.on_trial_complete(trial_id, result=result, error=error)

    def set_finished(self) -> None:
        self.searcher.set_finished()  # type: ignore[no-untyped-call]

    def has_checkpoint(self, dirpath: str) -> bool:
        return bool(self.searcher.has_checkpoint(dirpath))

    def save_to_dir(self, dirpath: str, **kwargs: Any) -> None:
        self.searcher.save_to_dir(dirpath, **kwargs)

    def restore_from_dir(self, dirpath: str) -> None:
        self.searcher.restore_from_dir(dirpath)


class BudgetGate(Delegating):
    """The sweep's search algorithm, behind the budget: no new trial once the next would
    pass ``budget.acceleratorHours`` / ``budget.wallClockSeconds`` or a trial reached
    ``objective.goal`` (:class:`~tunix_rt.tune.budget.SweepLimits` of this session);
    everything else is the wrapped algorithm's. It holds no limits itself: Tune restores
    it from the experiment's first session, the limits are this session's (its context,
    left out of the pickle)."""

    def __init__(self, inner: SearchAlgorithm | Searcher) -> None:
        super().__init__(inner)
        self.context: SessionContext | None = None

    def __getstate__(self) -> dict[str, Any]:
        return _without_context(self.__dict__)

    def _closed(self) -> bool:
        if self.context is None:
            return False
        limits = self.context.limits
        now = time.monotonic()
        return limits.goal_trial is not None or limits.close_if_needed(now) is not None

    def next_trial(self) -> Any:
        if not self.searcher.is_finished() and self._closed():
            return None
        return self.searcher.next_trial()

    def is_finished(self) -> bool:
        return bool(self.searcher.is_finished()) or self._closed()


class SweepMonitor(tune.Callback, tune.Stopper):
    """Driver-side bookkeeping: final records Tune's trials could not write themselves
    (stopped by the scheduler, crashed), the failure budget and the trial timeout.

    It holds only plain data: Tune pickles it with the experiment and restores it; the
    session's log, budgets and ledger come with its context (:func:`attach`).
    """

    def __init__(
        self,
        target: SweepTarget,
        max_failed_trials: int,
        trial_timeout_s: float | None = None,
        echo: bool = True,
    ) -> None:
        self.target = target
        self.max_failed_trials = max_failed_trials
        self.trial_timeout_s = trial_timeout_s
        self.echo = echo
        self.failed: set[str] = set()
        self._files: SweepFiles | None = None
        self.context: SessionContext | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**_without_context(self.__dict__), "_files": None}

    @property
    def limits(self) -> SweepLimits | None:
        """This session's budgets and goal; None before a session attached itself."""
        return self.context.limits if self.context is not None else None

    @property
    def files(self) -> SweepFiles:
        if self._files is None:
            self._files = self.target.files()
        return self._files

    def _recorded(self, trial_id: str) -> TrialResult | None:
        """The trial's own record; None when absent or unreadable (then the monitor writes
        one itself). A store that cannot be reached raises StoreError: the callers report
        it and leave the record as the trial wrote it, never a blank one over it."""
        return self.files.trial(trial_id)

    def _blank(self, trial: Any) -> TrialResult:
        """A record for a trial that wrote none itself."""
        return TrialResult(
            trial_id=trial.trial_id,
            sweep=self.target.sweep,
            namespace=self.target.namespace,
            params=dict(trial.config),
        )

    def _say(self, line: str) -> None:
        if self.context is not None:
            self.context.log(line)
            self.context.log.save()
        elif self.echo:
            print(f"[tunix-rt] {scrub(line)}", flush=True)

    # Stopper ------------------------------------------------------------------
    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        limits = self.limits
        if limits is not None:
            limits.trial_reported(trial_id, result, time.monotonic())
            if self._limits_stop(limits):
                return True
        if self.trial_timeout_s is None:
            return False
        return float(result.get("time_total_s", 0.0)) >= self.trial_timeout_s

    def stop_all(self) -> bool:
        limits = self.limits
        if limits is not None and self._limits_stop(limits):
            return True
        return len(self.failed) > self.max_failed_trials

    def _limits_stop(self, limits: SweepLimits) -> bool:
        """A cap reached or the goal met: said once, then every trial stops."""
        why = limits.stop_everything(time.monotonic())
        if why is not None and not getattr(self, "_stopping", False):
            self._stopping = True
            self._say(f"{why}: stopping the sweep")
        return why is not None

    # Callback -----------------------------------------------------------------
    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        if self.limits is not None:
            self.limits.trial_started(trial.trial_id, time.monotonic())
        params = json.dumps({k: plain(v) for k, v in dict(trial.config).items()}, sort_keys=True)
        self._say(f"trial {trial.trial_id} started: {params}")

    def on_step_begin(self, iteration: int, trials: list[Any], **info: Any) -> None:
        # Trials restored in the ERROR state count against the budget too.
        for trial in trials:
            if trial.status == "ERROR":
                self.failed.add(trial.trial_id)
        if self.context is not None:
            self.context.ledger.alive(time.monotonic())

    def _ended(self, trial: Any, full: bool) -> None:
        if self.limits is not None:
            self.limits.trial_ended(trial.trial_id, time.monotonic(), full=full)

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        try:
            record = self._recorded(trial.trial_id)
            if finished(record):
                assert record is not None
                self._ended(trial, full=record.state is TrialState.SUCCEEDED)
                self._say(f"trial {trial.trial_id} {record.state.value.lower()}{_score(record)}")
                return
            last = dict(trial.last_result or {})
            if record is None:
                if not last:
                    self._ended(trial, full=False)
                    return  # never started (a pending trial of a stopped sweep)
                record = self._blank(trial)
            record = stopped_record(record, last)
            full = self._ran_to_the_end(record)
            if full:
                # Stopped after its last report (the goal, a budget): it ran every step
                # and was scored, which is what Succeeded means.
                record = record.model_copy(update={"state": TrialState.SUCCEEDED})
            self._ended(trial, full=full)
            if self.limits is not None:
                hours = self.limits.trial_hours(trial.trial_id, time.monotonic())
                record = record.model_copy(update={"accelerator_hours": hours})
            self.files.write_trial(record)
            ended = "succeeded" if full else "stopped early"
            self._say(f"trial {trial.trial_id} {ended}{_score(record)}")
        except StoreError as exc:
            self._say(f"could not record trial {trial.trial_id}: {exc}")

    def _ran_to_the_end(self, record: TrialResult) -> bool:
        """Whether a trial Tune stopped had run all its steps and been scored already."""
        limits = self.limits
        if limits is None or record.primary_score is None:
            return False
        return record.steps >= limits.spec.budget.smoke_steps

    def on_trial_recover(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        """Tune retries the trial: a preemption when its worker was lost (its record still
        Running), else its trainer failed and the retry fails at once, never again."""
        try:
            record = self._recorded(trial.trial_id)
        except StoreError as exc:
            self._say(f"could not record trial {trial.trial_id}: {exc}")
            return
        if trainer_failed(record):
            trial.max_failures = 0  # the retry raises TrainerFailed: then it is an error
            return
        now = time.monotonic()
        limits = self.limits
        devices = limits.spec.accelerators_per_trial() if limits else 1.0
        hours = limits.trial_hours(trial.trial_id, now) if limits else None
        if limits is not None:
            limits.trial_ended(trial.trial_id, now, full=False)
        record = preempted_record(
            record or self._blank(trial), utcnow(), devices, trial.last_result, hours
        )
        try:
            self.files.write_trial(record)
        except StoreError as exc:
            self._say(f"could not record trial {trial.trial_id}: {exc}")
        lost = record.steps - (record.checkpoint_step or 0)
        self._say(
            f"trial {trial.trial_id} preempted (its worker was lost): resuming from step "
            f"{record.checkpoint_step or 0}, {lost} step(s) to do again "
            f"(preemption {record.preemptions} of at most {MAX_PREEMPTIONS})"
        )

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self.failed.add(trial.trial_id)
        self._ended(trial, full=False)
        try:
            record = self._recorded(trial.trial_id)
            if record is not None and record.state is TrialState.FAILED:
                error = record.error or "failed"
            else:
                error = _trial_error(trial)
                self.files.write_trial(failed_record(record or self._blank(trial), error))
            self._say(f"trial {trial.trial_id} failed: {error.splitlines()[-1][:300]}")
        except StoreError as exc:
            self._say(f"could not record trial {trial.trial_id}: {exc}")
        if self.stop_all():
            self._say(
                f"{len(self.failed)} trial(s) failed, more than maxFailedTrials "
                f"({self.max_failed_trials}): stopping the sweep"
            )


def _score(record: TrialResult) -> str:
    if record.primary_score is None:
        return ""
    return f", {PRIMARY_SCORE}={record.primary_score:.4f}"


def _trial_error(trial: Any) -> str:
    try:
        error = trial.get_error()
    except Exception:  # pragma: no cover - depends on what Ray kept
        error = None
    if error is not None:
        return str(error).strip() or type(error).__name__
    return "the trial failed (no error message was kept)"


def _without_context(state: dict[str, Any]) -> dict[str, Any]:
    """What Tune pickles of a hook: everything but this session's context."""
    return {**state, "context": None}


def attach(tuner: tune.Tuner, context: SessionContext) -> None:
    """Hand this session's context to the gate and the monitor the ``Tuner`` runs: the
    ones it was made with, or (restored) Tune's copies from ``tuner.pkl``. Ray keeps them
    on the Tuner's internal configs; not finding them is an error, never a sweep that
    runs past its budgets unseen."""
    internal = getattr(tuner, "_local_tuner", None)
    run_config = internal.get_run_config() if internal is not None else None
    tune_config = getattr(internal, "_tune_config", None)
    hooks = [
        *(getattr(run_config, "callbacks", None) or []),
        getattr(run_config, "stop", None),
        getattr(tune_config, "search_alg", None),
    ]
    found = {type(hook) for hook in hooks if isinstance(hook, SweepMonitor | BudgetGate)}
    if found != {SweepMonitor, BudgetGate}:
        raise RuntimeError(
            "Ray Tune's Tuner does not hold the sweep's monitor and budget gate where "
            f"tunix-rt looks for them (Ray {ray.__version__})"
        )
    for hook in hooks:
        if isinstance(hook, SweepMonitor | BudgetGate):
            hook.context = context
