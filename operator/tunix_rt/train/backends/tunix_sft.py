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

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tunix_rt.api.trainer import TrainerConfig
from tunix_rt.train import tokenizer as byte_tokenizer
from tunix_rt.train.backends import tunix_loop, tunix_model, tunix_weights
from tunix_rt.train.backends.tunix_tokenizer import Tokenizer
from tunix_rt.train.data import Example
from tunix_rt.train.packing import fitting_row, pack_rows
from tunix_rt.train.result import Log, Outcome, Run

EXPORT_DIR = "export"
"""Under ``checkpoint_dir``: the final weights as safetensors (Hugging Face layout)."""
BACKEND = tunix_loop.Backend(
    "tunix-sft", tunix_loop.DoneLine("steps", "cap_hit", "cap_hit_rate", 0.0)
)
"""Its name and ``done:`` line (SFT from a random init says no WARNING)."""


def sft_rows(
    examples: Sequence[Example], tokenizer: Tokenizer, context: int
) -> tuple[np.ndarray, np.ndarray]:
    """``[BOS] prompt target [EOS]`` per row, right-padded to the longest row, and the
    loss mask (target and EOS: the model learns to stop after ``</answer>``)."""
    adapter = tokenizer.adapter
    rows = []
    for index, ex in enumerate(examples):
        prompt = [adapter.bos_id(), *adapter.encode(ex.prompt)]
        target = [
            *adapter.encode(byte_tokenizer.format_target(ex.reasoning, ex.answer)),
            adapter.eos_id(),
        ]
        rows.append(fitting_row(index, prompt, target, context, "raise model.context"))
    return pack_rows(rows, adapter.pad_id(), bool)


def batches(
    tokens: np.ndarray, mask: np.ndarray, config: TrainerConfig, clock: tunix_loop.Deadline
) -> Iterator[Any]:
    """Training inputs, step after step, until max_steps or the deadline."""
    from tunix.sft import peft_trainer  # type: ignore[import-untyped]

    order = tunix_loop.batch_rows(len(tokens), min(config.batch_size, len(tokens)), config.seed)
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


def make_trainer(
    built: tunix_model.Built, config: TrainerConfig, checkpoint_dir: str | None
) -> Any:
    """PeftTrainer over the model (LoRA params only when LoRA is on)."""
    from tunix.sft import peft_trainer

    trainer = peft_trainer.PeftTrainer(
        built.model,
        tunix_loop.make_optimizer(config),
        peft_trainer.TrainingConfig(
            eval_every_n_steps=config.max_steps + 1,
            max_steps=config.max_steps,
            pbar_description=None,
            **tunix_loop.checkpointing(config, checkpoint_dir),
        ),
    )
    return trainer.with_gen_model_input_fn(model_inputs(built.tokenizer.adapter.pad_id()))


def export(built: tunix_model.Built, folder: Path, say: Log) -> Path:
    """The trained weights as safetensors in ``folder`` (LoRA adapters merged in)."""
    model = built.model
    if built.lora_rank:
        model = tunix_model.merge_lora(built.model, built.lora_rank, built.lora_alpha or 0.0)
    path = tunix_weights.save_safetensors(model, folder)
    say(f"exported the trained weights to {path} (sha256 {tunix_weights.sha256_of(path)[:16]})")
    return path


def train(run: Run) -> Outcome:
    """Fine-tune ``config`` with PeftTrainer, evaluate, return the result (a backend Train)."""
    config, say = run.config, run.say
    with tunix_loop.started(run, BACKEND) as (dataset, built):
        tokens, mask = sft_rows(dataset.train, built.tokenizer, config.model.context)
        say(
            f"{dataset.info.describe()}, {tokens.shape[1]} tokens/row; backend tunix-sft on "
            f"{built.mesh.devices.size} x {built.mesh.devices.flat[0].platform}"
        )
        evaluator, clock, hooks = tunix_loop.Loop.of(run, dataset, built)
        with built.mesh, tunix_loop.tunix_stderr():
            start = tunix_loop.start_scores(evaluator, built, say)
            trainer = make_trainer(built, config, run.checkpoint_dir)
            trainer.with_training_hooks(hooks)
            trainer.train(batches(tokens, mask, config, clock))
            trained = tunix_loop.evaluate_trained(trainer, clock, evaluator, built.model)
            if run.checkpoint_dir is not None:
                export(built, Path(run.checkpoint_dir) / EXPORT_DIR, say)
    return tunix_loop.finish_outcome(BACKEND, run, built, dataset.info, trained, hooks, start)
