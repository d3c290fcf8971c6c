"""backend python: a trial trained by the user's own function (``trainer.entrypoint``).

The entrypoint, ``"package.module:function"``, takes one argument, the :class:`Trial`::

    def train(trial: Trial) -> None:
        for step in range(1, trial.max_steps + 1):
            loss = ...                                   # train on trial.dataset.train
            trial.report(step=step, loss=loss)           # a learning-curve point
        trial.eval_rows(                                 # tunix-rt scores these itself
            {"prompt": ex.prompt, "expected_answer": ex.answer, "output": generate(ex.prompt)}
            for ex in trial.dataset.eval
        )

``trial.params`` holds the values of the declared ``trainer.parameters`` (``userParams``,
with a Sweep's searched values under the user's names). tunix-rt parses every ``output``
with the built-in trainer's parser and trace-length guardrail (``train/evaluate.py``) and
computes ``primary_score`` with ``tunix_rt.scoring``: an entrypoint cannot report a score
of its own, and rows must be rows of the eval split with its expected answers, so a
``python`` trial's score means what a built-in trial's means.
"""

from __future__ import annotations

import math
import numbers
import os
import platform
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from tunix_rt.api.trainer import TrainerConfig
from tunix_rt.api.trainer_backends import UserParamValue
from tunix_rt.api.trial_metrics import EVAL_METRICS
from tunix_rt.scoring import PRIMARY_SCORE
from tunix_rt.train import data
from tunix_rt.train.backends.python_code import EntrypointError, load_entrypoint, model_source
from tunix_rt.train.backends.python_rows import EvalRowChecker, TrialReportError
from tunix_rt.train.data import DatasetInfo, Example
from tunix_rt.train.eval_rows import EvalRow, summarize
from tunix_rt.train.result import Log, ModelSource, Outcome, Run, TrainingTimeout

RESERVED_METRICS = frozenset({*EVAL_METRICS, "step"})
"""What ``trial.report`` refuses: the eval metrics are computed from ``eval_rows``."""


@dataclass(frozen=True)
class TrialData:
    """The rows a built-in trial trains and evaluates on (``trainer.dataset``)."""

    train: Sequence[Example]
    eval: Sequence[Example]
    info: DatasetInfo


@dataclass(frozen=True)
class Scored:
    """One ``eval_rows`` call: its step, scored rows and summary metrics."""

    step: int
    rows: list[EvalRow]
    metrics: dict[str, float]
    point: dict[str, float]
    """The learning-curve point it added to the history."""


class Trial:
    """What the entrypoint gets: parameters, config, data, and the reporter (``run``'s
    own: its report and log, its deadline, its checkpoint folder)."""

    def __init__(self, run: Run, dataset: TrialData) -> None:
        config = run.config
        self.config = config
        self.params: Mapping[str, UserParamValue] = MappingProxyType(dict(config.user_params or {}))
        self.max_steps = config.max_steps
        self.seed = config.seed
        self.max_trace_tokens = config.eval.max_trace_tokens
        self.dataset = dataset
        self.checkpoint_dir = run.checkpoint_dir
        self._run = run
        self._started = time.perf_counter()
        self._step = 0
        self._latest: dict[str, float] = {}
        self.history: list[dict[str, float]] = []
        self.evals: list[Scored] = []
        self.eval_seconds = 0.0
        self.model: ModelSource | None = None
        self._rows = EvalRowChecker(dataset.eval, dataset.info.name, self.max_trace_tokens)

    @property
    def step(self) -> int:
        """The last step reported (0 before the first report)."""
        return self._step

    @property
    def latest(self) -> dict[str, float]:
        """The latest value of every metric the entrypoint reported."""
        return dict(self._latest)

    def log(self, line: str) -> None:
        """A line in the trial's (or rehearsal's) log."""
        self._run.say(str(line))

    def report(self, step: int, **metrics: float) -> None:
        """A learning-curve point: ``step`` (0..max_steps, never going back) and numbers.

        Raises :class:`~tunix_rt.train.TrainingTimeout` past the run's deadline and
        :class:`TrialReportError` for a malformed report."""
        self._advance(step, "trial.report")
        point: dict[str, float] = {"step": float(step)}
        for name, value in metrics.items():
            if name in RESERVED_METRICS:
                raise TrialReportError(
                    f"trial.report({name}=…): {name} is computed by tunix-rt from "
                    "trial.eval_rows(rows); report the rows instead"
                )
            point[name] = _number(f"trial.report({name}=…)", value)
        self._latest.update({k: v for k, v in point.items() if k != "step"})
        self._tell(point)

    def eval_rows(
        self, rows: Iterable[Mapping[str, Any]], *, step: int | None = None
    ) -> float | None:
        """Score generations of eval rows; returns their primary_score.

        Each row needs ``prompt``, ``expected_answer`` (the eval split's) and ``output``
        (the raw generation); ``index`` (the eval row's), ``trace_tokens`` (counted with
        your tokenizer; default: tunix-rt's) and ``hit_cap`` are optional. The output is
        read as the built-in decoder would have produced it: up to its first
        ``</answer>``, at most ``trainer.eval.maxTraceTokens`` tokens; a capped trace
        scores 0. The last call's rows are the trial's final eval (use the whole eval
        split there, as the built-in trainer does); earlier calls are intermediate evals
        at ``step`` (default: the last reported step)."""
        at = self._step if step is None else step
        self._advance(at, "trial.eval_rows", before_eval=at >= self.max_steps)
        started = time.perf_counter()
        scored = self._rows.score(list(rows))
        metrics = summarize(scored)
        self.eval_seconds += time.perf_counter() - started
        point = {"step": float(at), **metrics}
        self.evals.append(Scored(at, scored, metrics, point))
        self._tell(point)
        score = metrics.get(PRIMARY_SCORE)
        shown = "n/a" if score is None else f"{score:.4f}"
        valid, capped = metrics.get("format_valid_rate", 0.0), metrics.get("cap_hit_rate", 0.0)
        self.log(
            f"eval at step {at}: primary_score {shown} on {len(scored)} of "
            f"{len(self.dataset.eval)} eval rows, format_valid {valid:.3f}, cap_hit {capped:.3f}"
        )
        return score

    def describe_model(
        self,
        name: str,
        *,
        config: Mapping[str, Any] | None = None,
        checkpoint: str | None = None,
        checkpoint_sha256: str | None = None,
        versions: Mapping[str, str] | None = None,
    ) -> None:
        """What the run manifest records about the model: a name, its config, the weights
        it started from (None: random init) and their digest."""
        self.model = ModelSource(
            name=name,
            config=dict(config or {}),
            checkpoint=checkpoint,
            checkpoint_sha256=checkpoint_sha256,
            random_init=checkpoint is None,
            versions=dict(versions or {}),
        )

    # ------------------------------------------------------------------ internals

    def _tell(self, point: dict[str, float]) -> None:
        self.history.append(point)
        self._run.tell(dict(point))

    def _advance(self, step: Any, where: str, *, before_eval: bool = False) -> None:
        """``step`` checked (an integer in [last step, max_steps]) and made current; the
        deadline checked first."""
        if self._run.deadline is not None and time.monotonic() >= self._run.deadline:
            raise TrainingTimeout(
                self._step,
                self.max_steps,
                time.perf_counter() - self._started,
                before_eval=before_eval,
            )
        if isinstance(step, bool) or not isinstance(step, numbers.Integral):
            raise TrialReportError(f"{where}: step must be an integer, got {step!r}")
        if not self._step <= int(step) <= self.max_steps:
            raise TrialReportError(
                f"{where}: step {step} is outside [{self._step}, {self.max_steps}] (steps go "
                f"forward from the last one reported, up to trial.max_steps)"
            )
        self._step = int(step)


def _number(where: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TrialReportError(f"{where}: expected a number, got {value!r}")
    return float(value)


def load_trial_data(config: TrainerConfig, say: Log) -> TrialData:
    """``trainer.dataset``: the generated dev-reasoning rows (or the user's files)."""
    dataset = data.load_dataset(config.dataset)
    for error in dataset.rejected:
        say(f"rejected row {error}")
    return TrialData(train=dataset.train, eval=dataset.eval, info=dataset.info)


def train(run: Run) -> Outcome:
    """Call ``trainer.entrypoint`` with a :class:`Trial`; score its final eval rows."""
    config, say = run.config, run.say
    entrypoint = config.entrypoint
    if config.backend != "python" or entrypoint is None:
        raise EntrypointError("backend python needs trainer.entrypoint 'package.module:function'")
    function = load_entrypoint(entrypoint)
    dataset = load_trial_data(config, say)
    trial = Trial(run, dataset)
    say(
        f"backend python: {entrypoint} params {dict(trial.params)} on {dataset.info.name} "
        f"(train {dataset.info.train_rows}, eval {dataset.info.eval_rows} rows), "
        f"{config.max_steps} steps"
    )
    returned = function(trial)
    if not trial.evals:
        extra = " (it returned a value: pass the rows to trial.eval_rows)" if returned else ""
        raise EntrypointError(
            f"trainer.entrypoint {entrypoint!r} returned without calling "
            f"trial.eval_rows(rows){extra}; tunix-rt scores the final eval rows itself"
        )
    final = trial.evals[-1]
    wall = time.perf_counter() - run.started
    metrics = {
        **trial.latest,
        **final.metrics,
        "step": float(trial.step),
        "train_seconds": max(wall - trial.eval_seconds, 0.0),
        "eval_seconds": trial.eval_seconds,
    }
    metrics = {k: v for k, v in metrics.items() if math.isfinite(v)}
    if len(final.rows) < len(dataset.eval):
        say(
            f"note: the final eval scored {len(final.rows)} of {len(dataset.eval)} eval rows; "
            "primary_score is comparable with other trials only over the whole split"
        )
    if trial.history and trial.history[-1] is final.point:
        trial.history[-1] = metrics  # the final eval's point, with the run's totals
    else:
        trial.history.append(metrics)
    run.tell(dict(metrics))
    return Outcome(
        primary_score=final.metrics.get(PRIMARY_SCORE),
        metrics=metrics,
        eval_rows=final.rows,
        history=trial.history,
        steps=trial.step,
        dataset=dataset.info,
        devices=[f"python entrypoint on {platform.node() or 'this host'} ({os.cpu_count()} CPUs)"],
        model_id=f"python/{trial.model.name if trial.model else entrypoint}",
        model_source=model_source(trial.model, entrypoint),
    )
