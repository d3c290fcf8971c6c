"""Backend ``tunix-sft``: supervised fine-tuning with Tunix's ``PeftTrainer``.

LoRA (qwix adapters, only they train) when ``loraRank`` > 0, full fine-tuning at 0; the
learning rate, warmup, weight decay and gradient clip are the trainer's. Step metrics go
to ``report`` every ``logEvery`` steps (and at ``eval.evalEvery`` points with an eval of
``eval.intermediateRows`` rows); the final eval scores every eval row with the built-in
trainer's parser and guardrail, and primary_score comes from ``tunix_rt.scoring``.

With a ``checkpoint_dir`` the run resumes from Tunix's checkpoints there and, when it
ends, exports the trained weights (LoRA merged in) as safetensors to
``<checkpoint_dir>/export``: what a ``tunix-grpo`` run's ``model.checkpoint`` can start from.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from tunix_rt.api.trainer import TrainerConfig
from tunix_rt.scoring import PRIMARY_SCORE
from tunix_rt.train import data
from tunix_rt.train.backends import tunix_common as common
from tunix_rt.train.backends import tunix_model_id
from tunix_rt.train.loop import Log, Report, TrainResult

EXPORT_DIR = "export"
"""Under ``checkpoint_dir``: the final weights as safetensors (Hugging Face layout)."""


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
        self.learning_rate = common.schedule(config)
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
        self.say(_progress(metrics, self.config.max_steps))
        self.history.append(metrics)
        self.tell(metrics)

    def finish(self, final: dict[str, float], steps: int, eval_started: float) -> dict[str, float]:
        """The final metrics: the eval's scores and the run's timings, made finite, kept as
        the curve's last point and reported once."""
        train_seconds = self.train_seconds()
        final = common.finite(
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


def batches(
    tokens: np.ndarray, mask: np.ndarray, config: TrainerConfig, clock: common.Deadline
) -> Iterator[Any]:
    """Training inputs, step after step, until max_steps or the deadline."""
    from tunix.sft import peft_trainer  # type: ignore[import-untyped]

    order = common.batch_rows(len(tokens), min(config.batch_size, len(tokens)), config.seed)
    for step, rows in enumerate(order):
        if step >= config.max_steps or not clock.allows(step):
            return
        yield peft_trainer.TrainingInput(input_tokens=tokens[rows], input_mask=mask[rows])


def model_inputs(pad_id: int) -> Any:
    """Training input -> the keyword arguments of Tunix's default loss (positions and a
    causal mask built from the padding)."""
    from tunix.sft import utils

    def make(batch: Any) -> dict[str, Any]:
        present = batch.input_tokens != pad_id
        return {
            "input_tokens": batch.input_tokens,
            "input_mask": batch.input_mask,
            "positions": utils.build_positions_from_mask(present),
            "attention_mask": utils.make_causal_attn_mask(present),
        }

    return make


def make_trainer(built: common.Built, config: TrainerConfig, checkpoint_dir: str | None) -> Any:
    """PeftTrainer over the model (LoRA params only when LoRA is on)."""
    import orbax.checkpoint as ocp  # type: ignore[import-untyped]
    from tunix.sft import peft_trainer

    options = None
    if checkpoint_dir is not None:
        every = config.checkpoint_every or config.max_steps
        options = ocp.CheckpointManagerOptions(save_interval_steps=every, max_to_keep=1)
    trainer = peft_trainer.PeftTrainer(
        built.model,
        common.make_optimizer(config),
        peft_trainer.TrainingConfig(
            eval_every_n_steps=config.max_steps + 1,
            max_steps=config.max_steps,
            checkpoint_root_directory=None
            if checkpoint_dir is None
            else str(Path(checkpoint_dir).resolve()),
            checkpointing_options=options,
            pbar_description=None,
        ),
    )
    return trainer.with_gen_model_input_fn(model_inputs(built.tokenizer.adapter.pad_id()))


def export(built: common.Built, folder: Path, say: Log) -> Path:
    """The trained weights as safetensors in ``folder`` (LoRA adapters merged in)."""
    model = built.model
    if built.lora_rank:
        model = common.merge_lora(built.model, built.lora_rank, built.lora_alpha or 0.0)
    path = common.save_safetensors(model, folder)
    say(f"exported the trained weights to {path} (sha256 {common.sha256_of(path)[:16]})")
    return path


def run_trial(
    config: TrainerConfig,
    *,
    report: Report | None = None,
    checkpoint_dir: str | None = None,
    log: Log | None = None,
    deadline: float | None = None,
) -> TrainResult:
    """Fine-tune ``config`` with PeftTrainer, evaluate, return the result (TrainFn)."""
    started = time.perf_counter()
    say: Log = log or print
    tell: Report = report or (lambda metrics: None)
    dataset = data.load_dataset(config.dataset)
    workdir = Path(tempfile.mkdtemp(prefix="tunix-rt-sft-"))
    try:
        built = common.build(config, workdir, say)
        tokens, mask = common.sft_rows(dataset.train, built.tokenizer, config.model.context)
        say(
            f"dataset {dataset.info.name} sha256 {dataset.info.sha256[:16]} train "
            f"{dataset.info.train_rows} eval {dataset.info.eval_rows} rows, "
            f"{tokens.shape[1]} tokens/row; backend tunix-sft on "
            f"{built.mesh.devices.size} x {built.mesh.devices.flat[0].platform}"
        )
        evaluator = common.TunixEvaluator(dataset.eval, built.tokenizer, config)
        clock = common.Deadline(deadline, config.max_steps)
        hooks = StepReporter(config, tell, say, evaluator)
        with built.mesh, common.tunix_stderr():
            trainer = make_trainer(built, config, checkpoint_dir)
            trainer.with_training_hooks(hooks)
            trainer.train(batches(tokens, mask, config, clock))
            steps = int(trainer.train_steps)
            clock.raise_if_passed(steps)
            clock.raise_if_passed(steps, before_eval=True)
            eval_started = time.perf_counter()
            rows, final = evaluator(built.model)
            if checkpoint_dir is not None:
                export(built, Path(checkpoint_dir) / EXPORT_DIR, say)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    final = hooks.finish(final, steps, eval_started)
    say(
        f"done: {steps} steps, primary_score {final.get(PRIMARY_SCORE, 'n/a')} on {len(rows)} "
        f"eval rows, format_valid {final.get('format_valid_rate', 0):.3f}, cap_hit "
        f"{final.get('cap_hit_rate', 0):.3f}"
    )
    return trial_result("tunix-sft", config, built, dataset.info, rows, final, hooks, started)


def trial_result(
    backend: str,
    config: TrainerConfig,
    built: common.Built,
    dataset: Any,
    rows: list[Any],
    final: dict[str, float],
    hooks: StepReporter,
    started: float,
) -> TrainResult:
    """A Tunix run's :class:`TrainResult` (``dataset``: the run's DatasetInfo)."""
    return TrainResult(
        primary_score=final.get(PRIMARY_SCORE),
        metrics=final,
        eval_rows=rows,
        history=hooks.history,
        steps=int(final["step"]),
        wall_seconds=time.perf_counter() - started,
        dataset=dataset,
        devices=[str(d) for d in built.mesh.devices.flat],
        config=config.to_wire(),
        model_id=tunix_model_id(built.source.name, built.lora_rank, backend),
        backend=backend,
        model_source=built.source,
    )


def _progress(metrics: dict[str, float], total: int) -> str:
    line = (
        f"step {metrics['step']:.0f}/{total} loss {metrics['loss']:.4f} "
        f"lr {metrics['learning_rate']:.2e} {metrics['steps_per_second']:.1f} steps/s"
    )
    if PRIMARY_SCORE in metrics:
        line += f" primary_score {metrics[PRIMARY_SCORE]:.4f} on {metrics['eval_rows']:.0f} rows"
    return line
