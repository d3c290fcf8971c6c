"""What the SFT, GRPO and DPO backends share around Tunix's training loop: how a run
starts (its start scored) and finishes, the optimizer and schedule, the batch order, the
deadline, a stderr Tunix can use, and the step hooks."""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np
import optax

from tunix_rt.api.trainer import TrainerConfig
from tunix_rt.scoring import PRIMARY_SCORE
from tunix_rt.train.backends import tunix_eval, tunix_model, tunix_model_id
from tunix_rt.train.backends.tunix_model import Built
from tunix_rt.train.data import Dataset, DatasetInfo, load_dataset
from tunix_rt.train.eval_rows import EvalRow
from tunix_rt.train.result import Log, Outcome, Report, Run, TrainingTimeout, progress_line
from tunix_rt.train.train_step import Hyperparams, learning_rate_at


def schedule(config: TrainerConfig) -> Callable[[Any], Any]:
    """The built-in trainer's learning-rate schedule (warmup, then cosine decay)."""
    hp = Hyperparams.from_config(config)
    return lambda step: learning_rate_at(jnp.asarray(step), hp)


def make_optimizer(config: TrainerConfig) -> optax.GradientTransformation:
    """Global-norm clip, then AdamW with the trainer's schedule and weight decay."""
    return optax.chain(
        optax.clip_by_global_norm(config.grad_clip),
        optax.adamw(schedule(config), weight_decay=config.weight_decay),
    )


def checkpointing(config: TrainerConfig, checkpoint_dir: str | None) -> dict[str, Any]:
    """Tunix's ``checkpoint_root_directory`` and ``checkpointing_options`` for a run: none
    without a ``checkpoint_dir``, else one kept checkpoint every ``checkpointEvery`` steps
    (or at the end), which Tunix resumes from."""
    if checkpoint_dir is None:
        return {"checkpoint_root_directory": None, "checkpointing_options": None}
    import orbax.checkpoint as ocp  # type: ignore[import-untyped]

    every = config.checkpoint_every or config.max_steps
    return {
        "checkpoint_root_directory": str(Path(checkpoint_dir).resolve()),
        # Synchronous, as the built-in trainer's: a trial stopped right after a report
        # (a PBT exploit, a preemption) finds that step's checkpoint complete, never an
        # older one with the newer still being written in the background.
        "checkpointing_options": ocp.CheckpointManagerOptions(
            save_interval_steps=every, max_to_keep=1, enable_async_checkpointing=False
        ),
    }


def batch_rows(rows: int, batch_size: int, seed: int) -> Iterator[np.ndarray]:
    """Row indices per step: consecutive slices of per-epoch seeded permutations."""
    epoch = 0
    while True:
        order = np.random.default_rng([seed, epoch]).permutation(rows)
        for start in range(0, rows - batch_size + 1, batch_size):
            yield order[start : start + batch_size]
        epoch += 1


class Deadline:
    """The trial's deadline, checked before each batch is handed to Tunix's loop: past it
    the data ends (Tunix stops cleanly) and :meth:`raise_if_passed` raises afterwards."""

    def __init__(self, deadline: float | None, max_steps: int) -> None:
        self.deadline = deadline
        self.max_steps = max_steps
        self.started = time.perf_counter()
        self.passed_at: int | None = None

    def allows(self, step: int) -> bool:
        if self.deadline is not None and time.monotonic() >= self.deadline:
            if self.passed_at is None:
                self.passed_at = step
            return False
        return True

    def raise_if_passed(self, steps_done: int, *, before_eval: bool = False) -> None:
        late = self.deadline is not None and time.monotonic() >= self.deadline
        if self.passed_at is not None or (before_eval and late):
            raise TrainingTimeout(
                steps_done,
                self.max_steps,
                time.perf_counter() - self.started,
                before_eval=self.passed_at is None,
            )


class _StderrWithIsatty:
    """``sys.stderr`` as it is, plus the ``isatty`` Tunix's progress bar calls (Ray's
    log tee in a trial process has none)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def isatty(self) -> bool:
        return False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextlib.contextmanager
def tunix_stderr() -> Iterator[None]:
    """Run Tunix's loops with a ``sys.stderr`` that has ``isatty`` (its progress bar
    asks; it then stays off, as it should in a log)."""
    if callable(getattr(sys.stderr, "isatty", None)):
        yield
        return
    original = sys.stderr
    sys.stderr = _StderrWithIsatty(original)
    try:
        yield
    finally:
        sys.stderr = original


class DoneLine(NamedTuple):
    """How a backend's ``done:`` line names its steps and its own figure."""

    steps: str
    """What its steps are called (``DPO steps``)."""
    label: str
    metric: str
    absent: float
    """Shown when the run did not report ``metric``."""


class Backend(NamedTuple):
    """A Tunix backend as its start (:func:`started`) and finish (:func:`finish_outcome`)
    name it."""

    name: str
    """``tunix-dpo``: in the model id; its temporary folder is ``tunix-rt-dpo-…``."""
    done: DoneLine
    random_init: str = ""
    """The WARNING said when it starts without ``model.checkpoint`` (none: said nothing)."""

    @property
    def workdir_prefix(self) -> str:
        return f"tunix-rt-{self.name.removeprefix('tunix-')}-"


@contextlib.contextmanager
def started(run: Run, backend: Backend) -> Iterator[tuple[Dataset, Built]]:
    """How every Tunix backend starts: its dataset, and the model built in a temporary
    folder (the random-init warning said when no checkpoint was given)."""
    dataset = load_dataset(run.config.dataset)
    with tunix_model.built_in_workdir(run.config, run.say, backend.workdir_prefix) as built:
        if backend.random_init and built.source.random_init:
            run.say(f"WARNING: {backend.random_init}")
        yield dataset, built


class Loop(NamedTuple):
    """What every Tunix backend's loop runs with: its evaluator (of the run's eval rows),
    its deadline and its step hooks."""

    evaluator: tunix_eval.TunixEvaluator
    clock: Deadline
    hooks: StepReporter

    @classmethod
    def of(
        cls,
        run: Run,
        dataset: Dataset,
        built: Built,
        extra: Callable[[], dict[str, float]] | None = None,
    ) -> Loop:
        """The run's loop; ``extra``: the backend's own step metrics (GRPO: the rewards)."""
        config = run.config
        evaluator = tunix_eval.TunixEvaluator(dataset.eval, built.tokenizer, config)
        hooks = StepReporter(config, run.tell, run.say, evaluator, extra=extra)
        return cls(evaluator, Deadline(run.deadline, config.max_steps), hooks)


class Trained(NamedTuple):
    """What :func:`evaluate_trained` gives a backend: the steps done, the final eval and
    when it started (:meth:`StepReporter.finish` times the eval from it)."""

    steps: int
    rows: list[EvalRow]
    scores: dict[str, float]
    eval_started: float


def evaluate_trained(
    trainer: Any, clock: Deadline, evaluate: Callable[[Any], Any], model: Any
) -> Trained:
    """After a Tunix trainer's loop: the deadline checked (it may have cut the loop short,
    or passed before the eval), then the final eval of ``model``."""
    steps = int(trainer.train_steps)
    clock.raise_if_passed(steps)
    clock.raise_if_passed(steps, before_eval=True)
    eval_started = time.perf_counter()
    rows, scores = evaluate(model)
    return Trained(steps, rows, scores, eval_started)


START_SCORE = f"start_{PRIMARY_SCORE}"
"""The starting checkpoint's primary_score on the run's own eval rows, in the final
metrics (so in eval_summary.json) beside what training made of it."""


def start_scores(evaluate: Callable[[Any], Any], built: Built, say: Log) -> dict[str, float]:
    """Score ``model.checkpoint`` before training, on the rows the final eval uses: a
    post-training run's gain is then read from one summary, not from two runs' files.
    Nothing for a random init (there is no start worth scoring)."""
    if built.source.random_init:
        return {}
    _, scores = evaluate(built.model)
    score = float(scores[PRIMARY_SCORE])
    say(f"start (model.checkpoint): primary_score {score:.4f} on the same eval rows")
    return {START_SCORE: score}


def finite(metrics: dict[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if math.isfinite(float(v))}


class StepReporter:
    """Tunix's training hooks (called on the main thread after each optimizer step):
    step metrics to ``report`` every ``logEvery`` steps, with ``extra()``'s metrics (GRPO:
    the rewards) and an intermediate eval every ``eval.evalEvery``; the curve is kept."""

    def __init__(
        self,
        config: TrainerConfig,
        tell: Report,
        say: Log,
        evaluate: Any,
        extra: Callable[[], dict[str, float]] | None = None,
    ) -> None:
        self.config, self.tell, self.say, self.evaluate = config, tell, say, evaluate
        self.extra = extra
        self.learning_rate = schedule(config)
        self.history: list[dict[str, float]] = []
        self.losses: list[float] = []
        self.last_loss = float("nan")
        self.started: float | None = None
        self.first_done: float | None = None
        self.compile_seconds = 0.0
        self.eval_seconds = 0.0
        self.timed_steps = 0

    def on_train_start(self, trainer: Any) -> None:
        if self.started is None:  # GRPO calls the actor's train() once per step
            self.started = time.perf_counter()

    def on_train_end(self, trainer: Any) -> None:
        if self.losses:
            self.last_loss = float(np.mean(self.losses))

    def on_train_step_start(self, trainer: Any) -> None:
        return None

    def on_eval_step_start(self, trainer: Any) -> None:
        return None

    def on_eval_step_end(self, trainer: Any, eval_loss: float) -> None:
        return None

    def on_train_step_end(self, trainer: Any, train_step: int, train_loss: float) -> None:
        now = time.perf_counter()
        self.losses.append(float(train_loss))
        if self.first_done is None:
            self.first_done, self.compile_seconds = now, now - (self.started or now)
            self.first_step = train_step
        done = int(train_step)
        self.timed_steps = done - self.first_step
        at_log = done % self.config.log_every == 0
        every = self.config.eval.eval_every
        at_eval = every > 0 and done % every == 0
        if done >= self.config.max_steps or not (at_log or at_eval):
            return
        self.last_loss, self.losses = float(np.mean(self.losses)), []
        elapsed = now - self.first_done - self.eval_seconds
        metrics = {
            "step": float(done),
            "loss": self.last_loss,
            "learning_rate": float(self.learning_rate(done - 1)),
            "steps_per_second": self.timed_steps / elapsed if elapsed > 0 else 0.0,
        }
        if self.extra is not None:
            metrics.update(self.extra())
        if at_eval:
            started = time.perf_counter()
            _, scores = self.evaluate(trainer.model, limit=self.config.eval.intermediate_rows)
            self.eval_seconds += time.perf_counter() - started
            metrics.update(scores)
        self.say(progress_line(metrics, self.config.max_steps))
        self.history.append(metrics)
        self.tell(metrics)

    def finish(self, final: dict[str, float], steps: int, eval_started: float) -> dict[str, float]:
        """The final metrics: the eval's scores and the run's timings, made finite, kept as
        the curve's last point and reported once."""
        train_seconds = self.train_seconds()
        final = finite(
            final
            | {
                "step": float(steps),
                "loss": self.last_loss,
                "steps_per_second": self.timed_steps / train_seconds if train_seconds > 0 else 0.0,
                "compile_seconds": self.compile_seconds,
                "train_seconds": train_seconds,
                "eval_seconds": time.perf_counter() - eval_started + self.eval_seconds,
            }
        )
        self.history.append(final)
        self.tell(final)
        return final

    def train_seconds(self) -> float:
        if self.first_done is None:
            return 0.0
        return time.perf_counter() - self.first_done - self.eval_seconds


def tunix_outcome(
    backend: str,
    config: TrainerConfig,
    built: Built,
    dataset: DatasetInfo,
    rows: list[EvalRow],
    final: dict[str, float],
    hooks: StepReporter,
) -> Outcome:
    """A Tunix run's :class:`Outcome`."""
    return Outcome(
        primary_score=final.get(PRIMARY_SCORE),
        metrics=final,
        eval_rows=rows,
        history=hooks.history,
        steps=int(final["step"]),
        dataset=dataset,
        devices=[str(d) for d in built.mesh.devices.flat],
        model_id=tunix_model_id(built.source.name, built.lora_rank, backend),
        model_source=built.source,
    )


def finish_outcome(
    backend: Backend,
    run: Run,
    built: Built,
    dataset: DatasetInfo,
    trained: Trained,
    hooks: StepReporter,
    extra: dict[str, float] | None = None,
) -> Outcome:
    """The run's final metrics (``extra``: the backend's own, e.g. GRPO's rewards), the one
    ``done:`` line every Tunix backend says, and its :class:`Outcome`."""
    final = hooks.finish(trained.scores | (extra or {}), trained.steps, trained.eval_started)
    done = backend.done
    run.say(
        f"done: {trained.steps} {done.steps}, primary_score {final.get(PRIMARY_SCORE, 'n/a')} "
        f"on {len(trained.rows)} eval rows, format_valid {final.get('format_valid_rate', 0):.3f}, "
        f"{done.label} {final.get(done.metric, done.absent):.3f}"
    )
    return tunix_outcome(backend.name, run.config, built, dataset, trained.rows, final, hooks)
