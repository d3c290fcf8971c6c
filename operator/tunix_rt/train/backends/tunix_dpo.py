"""Backend ``tunix-dpo``: preference tuning with Tunix's ``DPOTrainer``.

``DPOTrainer(policy, reference, optimizer, DPOTrainingConfig(beta=dpoBeta))`` on pairs
built from the train split (``train/preference_pairs.py``): the gold trace and answer is
preferred to, in turn, a wrong answer, a trace past ``eval.maxTraceTokens`` and a trace
with no ``<answer>`` — the failures the eval scores 0. Each step takes ``batchSize`` pairs.
The reference is the start (``model.checkpoint``, e.g. a ``tunix-sft`` export), frozen.

Step metrics carry ``preference_accuracy`` (share of pairs whose implicit reward ranks the
chosen completion first) and ``preference_margin`` (the mean reward gap, in units of
``dpoBeta`` x log-ratio); the final eval is the other backends' eval.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from tunix_rt.api.trainer import TrainerConfig
from tunix_rt.train.backends import tunix_loop, tunix_model
from tunix_rt.train.backends.tunix_tokenizer import Tokenizer
from tunix_rt.train.packing import fitting_row
from tunix_rt.train.preference_pairs import Pair, preference_pairs
from tunix_rt.train.result import Outcome, Run

DEFAULT_DPO_BETA = 0.1
"""Tunix's and the DPO paper's default: how far the policy may move from the reference."""
PREFERENCE_METRICS = {
    "preference_accuracy": "rewards/accuracy",
    "preference_margin": "rewards/margin",
}
"""What the step metrics call Tunix's DPO aux metrics."""
BACKEND = tunix_loop.Backend(
    "tunix-dpo",
    tunix_loop.DoneLine("DPO steps", "preference_accuracy", "preference_accuracy", math.nan),
    random_init="DPO from a random init: it ranks completions the model cannot yet write; "
    "give model.checkpoint (e.g. a tunix-sft export)",
)
"""Its name, ``done:`` line and the WARNING said without model.checkpoint."""


def pair_arrays(pairs: Sequence[Pair], tokenizer: Tokenizer, context: int) -> dict[str, np.ndarray]:
    """``[BOS] prompt`` left-padded, chosen and rejected completions right-padded (with
    EOS when the completion stops), and their masks: Tunix's DPO ``TrainingInput`` fields."""
    adapter = tokenizer.adapter
    eos, pad = adapter.eos_id(), adapter.pad_id()
    prompts, chosen, rejected = [], [], []
    for index, pair in enumerate(pairs):
        prompt = [adapter.bos_id(), *adapter.encode(pair.prompt)]
        good = [*adapter.encode(pair.chosen), eos]
        bad = [*adapter.encode(pair.rejected), *([eos] if pair.rejected_stops else [])]
        fitting_row(index, prompt, max(good, bad, key=len), context, "raise model.context")
        prompts.append(prompt)
        chosen.append(good)
        rejected.append(bad)
    completion = max(len(row) for row in (*chosen, *rejected))  # one width: Tunix stacks them
    out: dict[str, np.ndarray] = {}
    for name, rows, left, length in (
        ("prompt", prompts, True, max(len(row) for row in prompts)),
        ("chosen", chosen, False, completion),
        ("rejected", rejected, False, completion),
    ):
        out[f"{name}_ids"], out[f"{name}_mask"] = padded(rows, pad, left, length)
    return out


def padded(
    rows: Sequence[list[int]], pad: int, left: bool, length: int
) -> tuple[np.ndarray, np.ndarray]:
    """Rows padded with ``pad`` to ``length`` (on the left or the right) and their masks."""
    ids = np.full((len(rows), length), pad, np.int32)
    mask = np.zeros((len(rows), length), np.int32)
    for i, row in enumerate(rows):
        span = slice(length - len(row), length) if left else slice(0, len(row))
        ids[i, span], mask[i, span] = row, 1
    return ids, mask


class PreferenceLog:
    """Tunix's DPO aux metrics per step, kept until the next report."""

    def __init__(self) -> None:
        self.values: dict[str, list[float]] = {name: [] for name in PREFERENCE_METRICS}
        self.last: dict[str, float] = {}

    def record(self, aux: dict[str, Any]) -> None:
        for name, key in PREFERENCE_METRICS.items():
            self.values[name].append(float(aux[key]))

    def drain(self) -> dict[str, float]:
        """The mean of each metric since the last report (empty when no step ran)."""
        values, self.values = self.values, {name: [] for name in PREFERENCE_METRICS}
        if not values["preference_accuracy"]:
            return {}
        self.last = {name: float(np.mean(v)) for name, v in values.items()}
        return self.last

    def final(self) -> dict[str, float]:
        return self.drain() or dict(self.last)


def batches(
    arrays: dict[str, np.ndarray], config: TrainerConfig, clock: tunix_loop.Deadline
) -> Iterator[Any]:
    """Tunix DPO training inputs, step after step, until max_steps or the deadline."""
    from tunix.sft.dpo import dpo_trainer  # type: ignore[import-untyped]

    rows = len(arrays["prompt_ids"])
    order = tunix_loop.batch_rows(rows, min(config.batch_size, rows), config.seed)
    for step, picked in enumerate(order):
        if step >= config.max_steps or not clock.allows(step):
            return
        yield dpo_trainer.TrainingInput(**{k: v[picked] for k, v in arrays.items()})


def make_trainer(
    built: tunix_model.Built,
    config: TrainerConfig,
    log: PreferenceLog,
    checkpoint_dir: str | None,
) -> Any:
    """Tunix's DPOTrainer over the model (LoRA params only when LoRA is on), recording its
    aux metrics in ``log`` after every step."""
    from tunix.sft.dpo import dpo_trainer

    class Trainer(dpo_trainer.DPOTrainer):  # type: ignore[misc]
        def _post_process_train_step(self, aux: Any) -> None:
            super()._post_process_train_step(aux)
            log.record(aux)

    return Trainer(
        built.model,
        tunix_model.reference_model(built),
        tunix_loop.make_optimizer(config),
        dpo_trainer.DPOTrainingConfig(
            beta=DEFAULT_DPO_BETA if config.dpo_beta is None else config.dpo_beta,
            eval_every_n_steps=config.max_steps + 1,
            max_steps=config.max_steps,
            pbar_description=None,
            **tunix_loop.checkpointing(config, checkpoint_dir),
        ),
    )


def train(run: Run) -> Outcome:
    """Train ``config`` with DPO, evaluate, return the result (a backend Train)."""
    config, say = run.config, run.say
    with tunix_loop.started(run, BACKEND) as (dataset, built):
        pairs = preference_pairs(dataset.train, config.eval.max_trace_tokens, built.tokenizer.count)
        arrays = pair_arrays(pairs, built.tokenizer, config.model.context)
        say(
            f"{dataset.info.describe()}; backend tunix-dpo: {len(pairs)} preference pairs "
            f"(rejected: wrong answer, over the trace cap, no answer, in turn), "
            f"{min(config.batch_size, len(pairs))} per step, beta "
            f"{DEFAULT_DPO_BETA if config.dpo_beta is None else config.dpo_beta:g}"
        )
        preferences = PreferenceLog()
        evaluator, clock, hooks = tunix_loop.Loop.of(run, dataset, built, extra=preferences.drain)
        with built.mesh, tunix_loop.tunix_stderr():
            start = tunix_loop.start_scores(evaluator, built, say)
            trainer = make_trainer(built, config, preferences, run.checkpoint_dir)
            trainer.with_training_hooks(hooks)
            trainer.train(batches(arrays, config, clock))
            trained = tunix_loop.evaluate_trained(trainer, clock, evaluator, built.model)
    return tunix_loop.finish_outcome(
        BACKEND, run, built, dataset.info, trained, hooks, preferences.final() | start
    )
