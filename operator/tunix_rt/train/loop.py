"""Backend ``builtin``: train one config, report as it goes, evaluate, return the outcome.

This is the default workload of every Sweep trial and every Rehearsal. The loop keeps the
device busy: steps are dispatched asynchronously, the next batch is prepared while the
current step runs, and losses are only fetched to the host at report points.

An optional ``deadline`` (a ``time.monotonic()`` instant) is checked before every step
and before the final evaluation, with a clock read only (no device sync); past it,
:func:`train` raises :class:`TrainingTimeout`.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import NamedSharding

from tunix_rt.api.trainer import TrainerConfig
from tunix_rt.notice import NOTICE, Preempted
from tunix_rt.scoring import PRIMARY_SCORE
from tunix_rt.train import data, schedule, sharding
from tunix_rt.train.backends import builtin_model_id
from tunix_rt.train.eval_rows import EvalRow
from tunix_rt.train.evaluate import Evaluator
from tunix_rt.train.model import Transformer, param_count
from tunix_rt.train.result import Log, Outcome, Report, Run, TrainingTimeout, progress_line
from tunix_rt.train.sharding import data_mesh
from tunix_rt.train.train_step import (
    Hyperparams,
    TrainState,
    init_state,
    jitted_train_step,
    learning_rate_at,
)

if TYPE_CHECKING:
    from tunix_rt.train.checkpoint import Checkpointer


class BatchOrder:
    """Row indices of step s: consecutive slices of per-epoch seeded permutations.

    A pure function of (seed, step), so a resumed run sees exactly the batches an
    uninterrupted run would have seen.
    """

    def __init__(self, rows: int, batch_size: int, seed: int) -> None:
        self.rows, self.batch_size, self.seed = rows, batch_size, seed

    @functools.lru_cache(maxsize=2)  # noqa: B019 (a handful of orders live per process)
    def _permutation(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, epoch]).permutation(self.rows)

    def __call__(self, step: int) -> np.ndarray:
        start = step * self.batch_size
        parts: list[np.ndarray] = []
        need = self.batch_size
        while need:
            epoch, offset = divmod(start, self.rows)
            take = self._permutation(epoch)[offset : offset + need]
            parts.append(take)
            need -= len(take)
            start += len(take)
        return np.concatenate(parts)


class Batches:
    """Host arrays -> sharded device batches, one step ahead of the device."""

    def __init__(self, encoded: data.EncodedTrain, order: BatchOrder, sharding: NamedSharding):
        self.encoded, self.order, self.sharding = encoded, order, sharding

    def get(self, step: int) -> tuple[jax.Array, jax.Array]:
        rows = self.order(step)
        return (
            jax.device_put(self.encoded.tokens[rows], self.sharding),
            jax.device_put(self.encoded.loss_mask[rows], self.sharding),
        )


def build_model(config: TrainerConfig) -> tuple[nnx.GraphDef[Any], dict[str, Any]]:
    """The model's static structure and its freshly initialised params (seeded)."""
    model = Transformer(config.model, rngs=nnx.Rngs(config.seed))
    graphdef, state = nnx.split(model)
    return graphdef, nnx.to_pure_dict(state)


def _mean(values: list[jax.Array]) -> float:
    return float(np.mean(jax.device_get(values))) if values else float("nan")


class Timing:
    """Where the wall time went: compile (first step), training, evaluation."""

    def __init__(self) -> None:
        self.compile = 0.0
        self.train = 0.0
        self.eval = 0.0
        self.timed_steps = 0


class Trainer:
    """One run's pieces, built once: data, model, compiled step, evaluator."""

    def __init__(self, config: TrainerConfig, say: Log) -> None:
        self.started = time.perf_counter()
        self.config = config
        self.mesh = data_mesh(config.batch_size)
        self.replicated = sharding.replicated(self.mesh)
        dataset = data.load_dataset(config.dataset)
        for error in dataset.rejected:
            say(f"rejected row {error}")
        encoded = data.encode_train(dataset.train, config.model.context)
        self.info = dataset.info
        say(f"{self.info.describe()}, {encoded.tokens.shape[1]} tokens/row")
        self.graphdef, params = build_model(config)
        self.initial = jax.device_put(init_state(params), self.replicated)
        say(
            f"model {builtin_model_id(config)} {param_count(params):,} params, batch "
            f"{config.batch_size} over {self.mesh.devices.size} x "
            f"{self.mesh.devices.flat[0].platform}"
        )
        self.hp = jax.device_put(Hyperparams.from_config(config), self.replicated)
        self.hp_changes = schedule.changes(config, lambda h: jax.device_put(h, self.replicated))
        self.step_fn = jitted_train_step(self.mesh)
        self.evaluator = Evaluator(
            self.graphdef, self.mesh, dataset.eval, config.eval, config.model.context
        )
        order = BatchOrder(len(encoded.tokens), config.batch_size, config.seed)
        self.batches = Batches(encoded, order, sharding.rows(self.mesh))

    def train(
        self,
        state: TrainState,
        history: list[dict[str, float]],
        tell: Report,
        say: Log,
        save: Callable[[TrainState, float], None] | None,
        last_loss: float = float("nan"),
        deadline: float | None = None,
        stop_now: Callable[[], bool] | None = None,
    ) -> tuple[TrainState, float, Timing]:
        """Steps from ``state.step`` to max_steps; reports and saves on the way.

        Returns the final state, the mean loss since the last report, and the timings.
        Raises TrainingTimeout before a step that would start at or after ``deadline``
        (a ``time.monotonic()`` instant). ``stop_now`` (SIGTERM, :mod:`tunix_rt.notice`)
        is asked after every step: True saves a checkpoint there and raises Preempted.
        """
        config, total = self.config, self.config.max_steps
        first = int(state.step)
        timing = Timing()
        losses: list[jax.Array] = []
        started = time.perf_counter()
        upcoming = self.batches.get(first) if first < total else None
        hp = schedule.at(first, self.hp, self.hp_changes)
        for step in range(first, total):
            if deadline is not None and time.monotonic() >= deadline:
                raise TrainingTimeout(step, total, time.perf_counter() - self.started)
            assert upcoming is not None
            hp = self.hp_changes.get(step, hp)
            state, loss = self.step_fn(self.graphdef, state, *upcoming, hp)
            losses.append(loss)
            done = step + 1
            upcoming = self.batches.get(done) if done < total else None  # overlaps the step
            if step == first:
                sharding.wait(loss)
                timing.compile = time.perf_counter() - started
                started, timed_from = time.perf_counter(), done
            if done == total:
                break
            at_log = done % config.log_every == 0
            at_eval = config.eval.eval_every > 0 and done % config.eval.eval_every == 0
            metrics: dict[str, float] | None = None
            if at_log or at_eval:
                last_loss, losses = _mean(losses), []
                elapsed = time.perf_counter() - started - timing.eval
                metrics = {
                    "step": done,
                    "loss": last_loss,
                    "learning_rate": float(learning_rate_at(jnp.asarray(step), hp)),
                    "steps_per_second": (done - timed_from) / elapsed if elapsed > 0 else 0.0,
                }
                if at_eval:
                    eval_started = time.perf_counter()
                    _, scores = self.evaluator(state.params, limit=config.eval.intermediate_rows)
                    timing.eval += time.perf_counter() - eval_started
                    metrics.update(scores)
                say(progress_line(metrics, total))
                history.append(metrics)
            if save is not None and config.checkpoint_every and done % config.checkpoint_every == 0:
                save(state, last_loss)  # before the report: the trial may be stopped in it
            if save is not None and stop_now is not None and stop_now():
                save(state, last_loss)
                raise Preempted(done)
            if metrics is not None:
                tell(metrics)
        sharding.wait(state)
        if first < total:
            timing.train = time.perf_counter() - started - timing.eval
            timing.timed_steps = total - timed_from
        if losses:
            last_loss = _mean(losses)
        return state, last_loss, timing


def train(run: Run) -> Outcome:
    """Train ``run.config``, reporting every ``log_every`` steps and at eval points,
    evaluate on the full eval split, and return the outcome. Resumes from
    ``run.checkpoint_dir``.

    ``run.deadline``: checked before every train step and before the final evaluation
    (which, once started, runs to the end). Past it, :class:`TrainingTimeout` is raised
    (no checkpoint is written for the partial run beyond the regular ``checkpointEvery``
    saves). None: no limit."""
    config, tell, say, deadline = run.config, run.tell, run.say, run.deadline
    trainer = Trainer(config, say)
    state, last_loss, timing, history = _train(trainer, run.checkpoint_dir, tell, say, deadline)
    if deadline is not None and time.monotonic() >= deadline:
        raise TrainingTimeout(
            config.max_steps,
            config.max_steps,
            time.perf_counter() - trainer.started,
            before_eval=True,
        )
    rows, final = _final_eval(trainer, state, last_loss, timing)
    history.append(final)
    tell(final)
    say(_final_line(final, len(rows)))
    return Outcome(
        primary_score=final.get(PRIMARY_SCORE),
        metrics=final,
        eval_rows=rows,
        history=history,
        steps=config.max_steps,
        dataset=trainer.info,
        devices=[str(d) for d in trainer.mesh.devices.flat],
        model_id=builtin_model_id(config),
    )


def _train(
    trainer: Trainer,
    checkpoint_dir: str | None,
    tell: Report,
    say: Log,
    deadline: float | None,
) -> tuple[TrainState, float, Timing, list[dict[str, float]]]:
    """All train steps, resumed from and saved to ``checkpoint_dir`` when there is one:
    the final state, last loss, timings and the learning curve so far."""
    config = trainer.config
    if checkpoint_dir is None:
        history: list[dict[str, float]] = []
        state, last_loss, timing = trainer.train(
            trainer.initial, history, tell, say, None, float("nan"), deadline
        )
        return state, last_loss, timing, history
    from tunix_rt.train.checkpoint import Checkpointer

    checkpointer = Checkpointer(checkpoint_dir)
    try:
        state, history, last_loss = _resume(
            checkpointer, trainer.initial, config, checkpoint_dir, say
        )

        def save(s: TrainState, loss: float) -> None:
            checkpointer.save(s, _meta(config, history, loss))

        # One process only: a save is collective, and SIGTERM may reach one host alone.
        with NOTICE.arm() as asked:
            stop_now = asked if jax.process_count() == 1 else None
            state, last_loss, timing = trainer.train(
                state, history, tell, say, save, last_loss, deadline, stop_now
            )
        save(state, last_loss)  # no-op when this step is already saved
    finally:
        checkpointer.close()
    return state, last_loss, timing, history


def _resume(
    checkpointer: Checkpointer,
    state: TrainState,
    config: TrainerConfig,
    directory: str,
    say: Log,
) -> tuple[TrainState, list[dict[str, float]], float]:
    """The checkpointed state, learning curve and last loss; ``state`` for a fresh run."""
    meta = checkpointer.meta()
    if meta is None:
        return state, [], float("nan")
    _check_resumable(meta, config, directory)
    state = checkpointer.restore(state)
    _check_step(int(state.step), config, directory)
    say(f"resumed from {directory} at step {int(state.step)}")
    return state, list(meta.get("history", [])), float(meta.get("loss") or "nan")


def _final_eval(
    trainer: Trainer, state: TrainState, last_loss: float, timing: Timing
) -> tuple[list[EvalRow], dict[str, float]]:
    """Every eval row, and the final metrics: eval scores, loss, throughput, timings."""
    eval_started = time.perf_counter()
    rows, final = trainer.evaluator(state.params)
    final.update(
        {
            "step": trainer.config.max_steps,
            "loss": last_loss,
            "steps_per_second": timing.timed_steps / timing.train if timing.train > 0 else 0.0,
            "compile_seconds": timing.compile,
            "train_seconds": timing.train,
            "eval_seconds": time.perf_counter() - eval_started + timing.eval,
        }
    )
    return rows, {k: v for k, v in final.items() if math.isfinite(v)}


def _final_line(metrics: dict[str, float], rows: int) -> str:
    score = metrics.get(PRIMARY_SCORE)
    return (
        f"done: {metrics['step']:.0f} steps, primary_score "
        f"{'n/a' if score is None else f'{score:.4f}'} on {rows} eval rows, format_valid "
        f"{metrics.get('format_valid_rate', 0):.3f}, cap_hit {metrics.get('cap_hit_rate', 0):.3f}, "
        f"trace p50/p95 {metrics.get('trace_len_p50', 0):.0f}/"
        f"{metrics.get('trace_len_p95', 0):.0f} tokens"
    )


def _meta(config: TrainerConfig, history: list[dict[str, float]], loss: float) -> dict[str, Any]:
    """What a resumed run needs besides the state: its config, learning curve, last loss."""
    return {
        "config": config.to_wire(),
        "history": history,
        "loss": loss if math.isfinite(loss) else None,
    }


def _check_step(step: int, config: TrainerConfig, directory: str) -> None:
    if step > config.max_steps:
        raise ValueError(
            f"checkpointDir {directory} is at step {step}, past maxSteps {config.max_steps}; "
            "raise maxSteps or use a fresh checkpointDir"
        )


def _check_resumable(meta: dict[str, Any], config: TrainerConfig, directory: str) -> None:
    """A checkpoint only continues the run that wrote it: same model, data and batch order."""
    saved = meta.get("config", {})
    wire = config.to_wire()
    for key in ("model", "dataset", "batchSize", "seed"):
        if saved.get(key) != wire.get(key):
            raise ValueError(
                f"checkpointDir {directory} holds a run with a different {key} "
                f"({saved.get(key)!r} != {wire.get(key)!r}); use a fresh checkpointDir"
            )
