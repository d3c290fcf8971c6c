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

import hashlib
import importlib
import importlib.metadata
import inspect
import math
import numbers
import os
import platform
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from tunix_rt.api.trainer import TrainerConfig
from tunix_rt.api.trainer_backends import UserParamValue
from tunix_rt.api.trial_metrics import EVAL_METRICS
from tunix_rt.scoring import PRIMARY_SCORE
from tunix_rt.train import data, tokenizer
from tunix_rt.train.data import DatasetInfo, Example
from tunix_rt.train.evaluate import EvalRow, score_row, summarize
from tunix_rt.train.loop import Log, ModelSource, Report, TrainingTimeout, TrainResult

ROW_REQUIRED = ("prompt", "expected_answer", "output")
ROW_OPTIONAL = ("index", "trace_tokens", "hit_cap")
ROW_COMPUTED = ("answer_correctness", "format_valid", "reasoning", "answer", PRIMARY_SCORE)
"""Row fields tunix-rt derives from ``output``: an entrypoint that sends them is refused."""
RESERVED_METRICS = frozenset({*EVAL_METRICS, "step"})
"""What ``trial.report`` refuses: the eval metrics are computed from ``eval_rows``."""


class EntrypointError(ValueError):
    """``trainer.entrypoint`` cannot be imported or called, or broke the contract."""


class TrialReportError(ValueError):
    """The entrypoint reported something malformed (a metric, a step, an eval row)."""


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
    """What the entrypoint gets: parameters, config, data, and the reporter."""

    def __init__(
        self,
        config: TrainerConfig,
        dataset: TrialData,
        *,
        report: Report,
        log: Log,
        deadline: float | None = None,
        checkpoint_dir: str | None = None,
    ) -> None:
        self.config = config
        self.params: Mapping[str, UserParamValue] = MappingProxyType(dict(config.user_params or {}))
        self.max_steps = config.max_steps
        self.seed = config.seed
        self.max_trace_tokens = config.eval.max_trace_tokens
        self.dataset = dataset
        self.checkpoint_dir = checkpoint_dir
        self._report, self._log, self._deadline = report, log, deadline
        self._started = time.perf_counter()
        self._step = 0
        self._latest: dict[str, float] = {}
        self.history: list[dict[str, float]] = []
        self.evals: list[Scored] = []
        self.eval_seconds = 0.0
        self.model: ModelSource | None = None
        self._by_prompt: dict[str, list[int]] = {}
        for index, example in enumerate(dataset.eval):
            self._by_prompt.setdefault(example.prompt, []).append(index)

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
        self._log(str(line))

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
        scored = self._score(list(rows))
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
        self._report(dict(point))

    def _advance(self, step: Any, where: str, *, before_eval: bool = False) -> None:
        """``step`` checked (an integer in [last step, max_steps]) and made current; the
        deadline checked first."""
        if self._deadline is not None and time.monotonic() >= self._deadline:
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

    def _score(self, rows: list[Mapping[str, Any]]) -> list[EvalRow]:
        if not rows:
            raise TrialReportError("trial.eval_rows: no rows; pass one row per eval example")
        seen: dict[int, int] = {}
        out = []
        for number, row in enumerate(rows):
            index = self._match(number, row)
            if index in seen:
                raise TrialReportError(
                    f"trial.eval_rows: row {number} repeats eval row {index} (row {seen[index]})"
                )
            seen[index] = number
            out.append(self._score_one(number, index, row))
        return out

    def _match(self, number: int, row: Any) -> int:
        """The eval split's index of ``row`` (by ``index``, else by prompt), its fields
        checked."""
        where = f"trial.eval_rows: row {number}"
        if not isinstance(row, Mapping):
            raise TrialReportError(f"{where}: expected a mapping, got {type(row).__name__}")
        for key in row:
            if key in ROW_COMPUTED:
                raise TrialReportError(
                    f"{where}: {key!r} is computed by tunix-rt from 'output'; leave it out"
                )
            if key not in ROW_REQUIRED + ROW_OPTIONAL:
                raise TrialReportError(
                    f"{where}: unknown field {key!r}; rows take {list(ROW_REQUIRED)} and "
                    f"optionally {list(ROW_OPTIONAL)}"
                )
        for key in ROW_REQUIRED:
            if not isinstance(row.get(key), str):
                got = "nothing" if key not in row else type(row[key]).__name__
                raise TrialReportError(f"{where}: {key!r} must be a string, got {got}")
        prompt, expected = row["prompt"], row["expected_answer"]
        if "index" in row:
            index = row["index"]
            if isinstance(index, bool) or not isinstance(index, int):
                raise TrialReportError(f"{where}: 'index' must be an integer, got {index!r}")
            if not 0 <= index < len(self.dataset.eval):
                raise TrialReportError(
                    f"{where}: index {index} is outside the eval split "
                    f"(0..{len(self.dataset.eval) - 1})"
                )
            if self.dataset.eval[index].prompt != prompt:
                raise TrialReportError(
                    f"{where}: prompt {prompt[:80]!r} is not eval row {index}'s "
                    f"({self.dataset.eval[index].prompt[:80]!r})"
                )
        else:
            candidates = self._by_prompt.get(prompt)
            if not candidates:
                raise TrialReportError(
                    f"{where}: prompt {prompt[:80]!r} is not in the eval split "
                    f"({self.dataset.info.name}); score rows of trial.dataset.eval"
                )
            index = candidates[0]
        answer = self.dataset.eval[index].answer
        if expected.strip() != answer.strip():
            raise TrialReportError(
                f"{where}: expected_answer {expected[:40]!r} differs from eval row {index}'s "
                f"answer {answer[:40]!r}"
            )
        return int(index)

    def _score_one(self, number: int, index: int, row: Mapping[str, Any]) -> EvalRow:
        """The built-in trainer's parser and guardrail on one row's output."""
        where = f"trial.eval_rows: row {number}"
        counted = row.get("trace_tokens")
        if counted is not None and (
            isinstance(counted, bool) or not isinstance(counted, int) or counted < 0
        ):
            raise TrialReportError(f"{where}: 'trace_tokens' must be an integer >= 0")
        capped = row.get("hit_cap", False)
        if not isinstance(capped, bool):
            raise TrialReportError(f"{where}: 'hit_cap' must be true or false")
        return score_generation(
            index,
            self.dataset.eval[index],
            row["output"],
            self.max_trace_tokens,
            trace_tokens=counted,
            hit_cap=capped,
        )


def score_generation(
    index: int,
    example: Example,
    output: str,
    max_trace_tokens: int,
    *,
    trace_tokens: int | None = None,
    hit_cap: bool = False,
) -> EvalRow:
    """Score a generation made outside the built-in decoder as the built-in eval would:
    read up to its first ``</answer>`` (where the decoder stops), capped at
    ``max_trace_tokens`` tokens (tunix-rt's tokenizer, unless ``trace_tokens`` counts
    them with the generator's own), a capped trace scoring 0; then the built-in parser
    (``score_row``). For any backend that generates text itself."""
    tokens = tokenizer.encode(output)
    cut = next((i + 1 for i, t in enumerate(tokens) if t in tokenizer.STOP_TOKENS), len(tokens))
    tokens = tokens[:cut]
    counted = len(tokens) if trace_tokens is None else trace_tokens
    capped = hit_cap or counted > max_trace_tokens
    if trace_tokens is None and len(tokens) > max_trace_tokens:
        tokens = tokens[:max_trace_tokens]
    text = tokenizer.decode(tokens)
    return score_row(index, example, text, min(counted, max_trace_tokens), capped)


def _number(where: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TrialReportError(f"{where}: expected a number, got {value!r}")
    return float(value)


# ----------------------------------------------------------------------------- entrypoint


def load_entrypoint(entrypoint: str) -> Callable[[Trial], Any]:
    """The user's function, imported; an :class:`EntrypointError` naming
    ``trainer.entrypoint`` when the module or function is missing or takes other
    arguments than one trial."""
    module_name, _, attr = entrypoint.partition(":")
    field = f"trainer.entrypoint {entrypoint!r}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if module_name == missing or module_name.startswith(missing + "."):
            raise EntrypointError(
                f"{field}: no module named {missing!r} on this worker; install the package "
                "in the trial image, or (local runs) put the folder holding it on PYTHONPATH"
            ) from None
        raise EntrypointError(f"{field}: importing {module_name} failed: {exc}") from exc
    except Exception as exc:
        raise EntrypointError(
            f"{field}: importing {module_name} failed: {type(exc).__name__}: {exc}"
        ) from exc
    function = getattr(module, attr, None)
    if function is None or not callable(function):
        defined = sorted(
            n for n, v in vars(module).items() if inspect.isfunction(v) and not n.startswith("_")
        )
        what = "has no function" if function is None else "has a non-callable"
        raise EntrypointError(
            f"{field}: module {module_name} ({_module_file(module)}) {what} {attr!r}; "
            f"its functions: {defined}"
        )
    try:
        inspect.signature(function).bind(object())
    except TypeError:
        raise EntrypointError(
            f"{field}: {attr}{inspect.signature(function)} must take one argument, the trial "
            f"(def {attr}(trial): ...)"
        ) from None
    except ValueError:  # no signature to read (a builtin): the call will tell
        pass
    typed: Callable[[Trial], Any] = function
    return typed


def _module_file(module: Any) -> str:
    return str(getattr(module, "__file__", None) or "built in")


def code_identity(entrypoint: str) -> dict[str, Any]:
    """Which code ran: the entrypoint, its module file and that file's sha256, and the
    installed distribution holding it (when there is one)."""
    module = sys.modules.get(entrypoint.partition(":")[0])
    path = getattr(module, "__file__", None)
    out: dict[str, Any] = {"entrypoint": entrypoint, "file": None, "file_sha256": None}
    if path and os.path.isfile(path):
        out["file_sha256"] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        here = Path.cwd()
        resolved = Path(path).resolve()
        out["file"] = str(resolved.relative_to(here) if resolved.is_relative_to(here) else path)
    return out


def distribution_versions(entrypoint: str) -> dict[str, str]:
    """``{distribution: version}`` of the installed package the entrypoint lives in."""
    top = entrypoint.partition(":")[0].split(".")[0]
    out: dict[str, str] = {}
    for dist in importlib.metadata.packages_distributions().get(top, []):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def load_trial_data(config: TrainerConfig, say: Log) -> TrialData:
    """``trainer.dataset``: the generated dev-reasoning rows (or the user's files)."""
    dataset = data.load_dataset(config.dataset)
    for error in dataset.rejected:
        say(f"rejected row {error}")
    return TrialData(train=dataset.train, eval=dataset.eval, info=dataset.info)


def run_trial(
    config: TrainerConfig,
    *,
    report: Report | None = None,
    checkpoint_dir: str | None = None,
    log: Log | None = None,
    deadline: float | None = None,
) -> TrainResult:
    """Call ``trainer.entrypoint`` with a :class:`Trial`; score its final eval rows."""
    started = time.perf_counter()
    say: Log = log or print
    entrypoint = config.entrypoint
    if config.backend != "python" or entrypoint is None:
        raise EntrypointError("backend python needs trainer.entrypoint 'package.module:function'")
    function = load_entrypoint(entrypoint)
    dataset = load_trial_data(config, say)
    trial = Trial(
        config,
        dataset,
        report=report or (lambda metrics: None),
        log=say,
        deadline=deadline,
        checkpoint_dir=checkpoint_dir,
    )
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
    wall = time.perf_counter() - started
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
    trial._report(dict(metrics))
    return TrainResult(
        primary_score=final.metrics.get(PRIMARY_SCORE),
        metrics=metrics,
        eval_rows=final.rows,
        history=trial.history,
        steps=trial.step,
        wall_seconds=wall,
        dataset=dataset.info,
        devices=[f"python entrypoint on {platform.node() or 'this host'} ({os.cpu_count()} CPUs)"],
        config=config.to_wire(),
        model_id=f"python/{trial.model.name if trial.model else entrypoint}",
        backend="python",
        model_source=model_source(trial.model, entrypoint),
    )


def model_source(described: ModelSource | None, entrypoint: str) -> ModelSource:
    """What the run manifest records: the model the entrypoint described (or, when it
    described none, no checkpoint: tunix-rt loaded none and none was declared), with the
    entrypoint's code (file and sha256) under ``config.code``."""
    code = code_identity(entrypoint)
    versions = distribution_versions(entrypoint)
    if described is not None:
        return described.model_copy(
            update={
                "config": {**described.config, "code": code},
                "versions": {**versions, **described.versions},
            }
        )
    return ModelSource(
        name=entrypoint,
        config={"code": code, "described": False},
        checkpoint=None,
        random_init=True,
        versions=versions,
    )
