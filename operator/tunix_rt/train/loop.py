"""run_trial: train one config, report as it goes, evaluate, return the result.

This is the workload of every Sweep trial and every Rehearsal. The loop keeps the
device busy: steps are dispatched asynchronously, the next batch is prepared while the
current step runs, and losses are only fetched to the host at report points.

An optional ``deadline`` (a ``time.monotonic()`` instant) is checked before every step
and before the final evaluation, with a clock read only (no device sync); past it,
``run_trial`` raises :class:`TrainingTimeout`.
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
from pydantic import BaseModel, ConfigDict, Field

from tunix_rt.api.trainer import TrainerConfig
from tunix_rt.scoring import PRIMARY_SCORE
from tunix_rt.train import data, sharding
from tunix_rt.train.data import DatasetInfo
from tunix_rt.train.evaluate import EvalRow, Evaluator
from tunix_rt.train.model import Transformer, param_count
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

Report = Callable[[dict[str, float]], None]
Log = Callable[[str], None]


class TrainingTimeout(TimeoutError):
    """``run_trial`` passed its deadline: ``step`` of ``max_steps`` train steps were
    dispatched (the device may still be finishing the last few) after ``elapsed_seconds``
    of run_trial; ``before_eval`` when training was complete but the final evaluation had
    not started."""

    def __init__(
        self, step: int, max_steps: int, elapsed_seconds: float, *, before_eval: bool = False
    ) -> None:
        self.step = step
        self.max_steps = max_steps
        self.elapsed_seconds = elapsed_seconds
        self.before_eval = before_eval
        where = "before the final evaluation" if before_eval else "in training"
        super().__init__(
            f"deadline reached at step {step} of {max_steps} ({where}) after "
            f"{elapsed_seconds:.0f} s"
        )


class ModelSource(BaseModel):
    """Where a backend's model came from: what the run manifest records about it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Config name, e.g. gemma3-1b or char-transformer-L2-W128.")
    config: dict[str, Any] = Field(description="The model config the backend built.")
    checkpoint: str | None = Field(None, description="Weights URI or path; None: random init.")
    checkpoint_sha256: str | None = Field(None, description="Digest of the weights read.")
    random_init: bool = Field(description="True when no checkpoint was loaded.")
    versions: dict[str, str] = Field(
        default_factory=dict, description="Library versions, e.g. google-tunix, qwix."
    )


class TrainResult(BaseModel):
    """Everything one trial produced; snake_case JSON (eval rows feed compute_primary_score)."""

    model_config = ConfigDict(extra="forbid")

    primary_score: float | None = Field(description="compute_primary_score over the final eval.")
    metrics: dict[str, float] = Field(description="Final eval metrics, final loss, throughput.")
    eval_rows: list[EvalRow] = Field(description="Every final eval row with its output and score.")
    history: list[dict[str, float]] = Field(
        description="Every report, in order: the learning curve."
    )
    steps: int = Field(description="Train steps completed.")
    wall_seconds: float = Field(description="Wall time of run_trial, compile and eval included.")
    dataset: DatasetInfo
    devices: list[str] = Field(description="The JAX devices the batch was split over.")
    config: dict[str, Any] = Field(description="The TrainerConfig used, wire (camelCase) form.")
    model_id: str = Field(description="e.g. tunix-rt/char-transformer-L2-W128.")
    backend: str = Field("builtin", description="The trainer.backend that ran.")
    model_source: ModelSource | None = Field(
        None, description="Checkpoint, digest and versions (None for the built-in trainer)."
    )


def model_id(config: TrainerConfig) -> str:
    return f"tunix-rt/char-transformer-L{config.model.layers}-W{config.model.width}"


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
        say(
            f"dataset {self.info.name} sha256 {self.info.sha256[:16]} train "
            f"{self.info.train_rows} eval {self.info.eval_rows} rows, "
            f"{encoded.tokens.shape[1]} tokens/row"
        )
        self.graphdef, params = build_model(config)
        self.initial = jax.device_put(init_state(params), self.replicated)
        say(
            f"model {model_id(config)} {param_count(params):,} params, batch "
            f"{config.batch_size} over {self.mesh.devices.size} x "
            f"{self.mesh.devices.flat[0].platform}"
        )
        self.hp = jax.device_put(Hyperparams.from_config(config), self.replicated)
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
    ) -> tuple[TrainState, float, Timing]:
        """Steps from ``state.step`` to max_steps; reports and saves on the way.

        Returns the final state, the mean loss since the last report, and the timings.
        Raises TrainingTimeout before a step that would start at or after ``deadline``
        (a ``time.monotonic()`` instant).
        """
        config, total = self.config, self.config.max_steps
        first = int(state.step)
        timing = Timing()
        losses: list[jax.Array] = []
        started = time.perf_counter()
        upcoming = self.batches.get(first) if first < total else None
        for step in range(first, total):
            if deadline is not None and time.monotonic() >= deadline:
                raise TrainingTimeout(step, total, time.perf_counter() - self.started)
            assert upcoming is not None
            state, loss = self.step_fn(self.graphdef, state, *upcoming, self.hp)
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
                    "learning_rate": float(learning_rate_at(jnp.asarray(step), self.hp)),
                    "steps_per_second": (done - timed_from) / elapsed if elapsed > 0 else 0.0,
                }
                if at_eval:
                    eval_started = time.perf_counter()
                    _, scores = self.evaluator(state.params, limit=config.eval.intermediate_rows)
                    timing.eval += time.perf_counter() - eval_started
                    metrics.update(scores)
                say(_progress_line(metrics, total))
                history.append(metrics)
            if save is not None and config.checkpoint_every and done % config.checkpoint_every == 0:
                save(state, last_loss)  # before the report: the trial may be stopped in it
            if metrics is not None:
                tell(metrics)
        sharding.wait(state)
        if first < total:
            timing.train = time.perf_counter() - started - timing.eval
            timing.timed_steps = total - timed_from
        if losses:
            last_loss = _mean(losses)
        return state, last_loss, timing


def run_trial(
    config: TrainerConfig,
    *,
    report: Report | None = None,
    checkpoint_dir: str | None = None,
    log: Log | None = None,
    deadline: float | None = None,
) -> TrainResult:
    """Train ``config``, reporting every ``log_every`` steps and at eval points, evaluate
    on the full eval split, and return the result. Resumes from ``checkpoint_dir``.

    ``deadline``: a ``time.monotonic()`` instant; checked before every train step and
    before the final evaluation (which, once started, runs to the end). Past it,
    :class:`TrainingTimeout` is raised (no checkpoint is written for the partial run
    beyond the regular ``checkpointEvery`` saves). None (the default): no limit."""
    started = time.perf_counter()
    say: Log = log or print
    tell: Report = report or (lambda metrics: None)
    trainer = Trainer(config, say)
    state, last_loss, timing, history = _train(trainer, checkpoint_dir, tell, say, deadline)
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
    return TrainResult(
        primary_score=final.get(PRIMARY_SCORE),
        metrics=final,
        eval_rows=rows,
        history=history,
        steps=config.max_steps,
        wall_seconds=time.perf_counter() - started,
        dataset=trainer.info,
        devices=[str(d) for d in trainer.mesh.devices.flat],
        config=config.to_wire(),
        model_id=model_id(config),
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

        state, last_loss, timing = trainer.train(
            state, history, tell, say, save, last_loss, deadline
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


def _progress_line(metrics: dict[str, float], total: int) -> str:
    line = (
        f"step {metrics['step']:.0f}/{total} loss {metrics['loss']:.4f} "
        f"lr {metrics['learning_rate']:.2e} {metrics['steps_per_second']:.1f} steps/s"
    )
    if PRIMARY_SCORE in metrics:
        line += f" primary_score {metrics[PRIMARY_SCORE]:.4f} on {metrics['eval_rows']:.0f} rows"
    return line


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
