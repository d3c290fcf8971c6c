"""Backend ``tunix-grpo``: reinforcement learning with Tunix's ``GRPOLearner``.

``GRPOLearner(rl_cluster=RLCluster(actor, reference, tokenizer, cluster_config=...),
algo_config=GRPOConfig(num_generations, beta=klBeta, epsilon=clipEpsilon), reward_fns)``
on one mesh (actor, reference and rollout colocated, Tunix's vanilla sampler). Each step
takes ``batchSize`` prompts of the train split and samples ``numGenerations``
completions of up to ``maxGenerationLength`` tokens (default ``eval.maxTraceTokens``) at
``temperature`` for each.

The rewards are ``tunix_rt.scoring.rewards``: answer correctness judged exactly as the
eval judges a row, format validity, and a trace-length penalty at ``eval.maxTraceTokens``
— so a completion the reward calls correct is one the eval would score 1. Step metrics
carry ``reward_mean`` (the summed reward per completion) and ``reward_<fn>`` per function.

A ``schedule`` (a PBT trial's, replayed by a Rehearsal) runs as segments, each a learner
built from its params that restores the previous segment's last checkpoint: what a PBT
exploit-restart does (``tunix_schedule``).

The policy starts from ``model.checkpoint`` (e.g. a ``tunix-sft`` export): GRPO improves
a model that sometimes gets the answer; from random init there is no reward to learn from.
"""

from __future__ import annotations

import math
import tempfile
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from tunix_rt.api.trainer import TrainerConfig
from tunix_rt.scoring.rewards import RewardFn, reward_fns
from tunix_rt.train.backends import (
    tunix_loop,
    tunix_model,
    tunix_schedule,
    tunix_tokenizer,
)
from tunix_rt.train.data import Example
from tunix_rt.train.result import Outcome, Run

DEFAULT_KL_BETA = 0.04
DEFAULT_NUM_GENERATIONS = 4
DEFAULT_CLIP_EPSILON = 0.2
DEFAULT_TEMPERATURE = 0.9
BACKEND = tunix_loop.Backend(
    "tunix-grpo",
    tunix_loop.DoneLine("GRPO steps", "reward_mean", "reward_mean", math.nan),
    random_init="GRPO from a random init: rewards stay near zero until the policy produces "
    "the format; give model.checkpoint (e.g. a tunix-sft export)",
)
"""Its name, ``done:`` line and the WARNING said without model.checkpoint."""


class RewardLog:
    """Wraps the reward functions to keep what they returned since the last report (they
    run on Tunix's rollout thread; the report is made on the main thread)."""

    def __init__(self, fns: Sequence[RewardFn]) -> None:
        self.lock = threading.Lock()
        self.names = [fn.__name__ for fn in fns]
        self.values: dict[str, list[float]] = {name: [] for name in self.names}
        self.last: dict[str, float] = {}
        self.wrapped = [self._wrap(fn) for fn in fns]

    def _wrap(self, fn: RewardFn) -> RewardFn:
        def recorded(*args: Any, **kwargs: Any) -> list[float]:
            rewards = fn(*args, **kwargs)
            with self.lock:
                self.values[fn.__name__].extend(float(r) for r in rewards)
            return rewards

        recorded.__name__ = fn.__name__
        return recorded

    def drain(self) -> dict[str, float]:
        """``reward_mean`` (mean summed reward per completion) and ``reward_<fn>``."""
        with self.lock:
            values, self.values = self.values, {name: [] for name in self.names}
        count = min((len(v) for v in values.values()), default=0)
        if count == 0:
            return {}
        out = {f"reward_{name}": float(np.mean(v)) for name, v in values.items()}
        totals = np.sum([v[:count] for v in values.values()], axis=0)
        out["reward_mean"] = float(np.mean(totals))
        self.last = out
        return out

    def final(self) -> dict[str, float]:
        """What :meth:`drain` has, or else what it last returned (Tunix calls the step
        hooks one step late, so the last report may already hold the last rewards)."""
        return self.drain() or dict(self.last)


def prompt_batches(
    examples: Sequence[Example],
    config: TrainerConfig,
    clock: tunix_loop.Deadline,
    end: int | None = None,
) -> Iterator[dict[str, Any]]:
    """``{"prompts": ..., "answer": ...}`` per step until ``end`` (default max_steps) or
    the deadline."""
    size = min(config.batch_size, len(examples))
    order = tunix_loop.batch_rows(len(examples), size, config.seed)
    stop = config.max_steps if end is None else end
    for step, rows in enumerate(order):
        if step >= stop or not clock.allows(step):
            return
        yield {  # numpy columns: Tunix repeats each row numGenerations times with np.repeat
            "prompts": np.array([examples[i].prompt for i in rows]),
            "answer": np.array([examples[i].answer for i in rows]),
        }


def prompt_length(examples: Sequence[Example], tokenizer: tunix_tokenizer.Tokenizer) -> int:
    """The rollout's prompt buffer: a power of two that fits every prompt and its BOS."""
    longest = max(len(tokenizer.adapter.encode(ex.prompt)) + 1 for ex in examples)
    return 1 << max(longest - 1, 1).bit_length()


def make_learner(
    built: tunix_model.Built,
    config: TrainerConfig,
    rewards: Sequence[RewardFn],
    prompt_len: int,
    batch: int,
    checkpoint_dir: str | None,
    reference: Any,
) -> Any:
    """The RL cluster (actor, reference, rollout on one mesh) and the GRPO learner;
    ``reference``: :func:`tunix_model.reference_model`, taken before any training."""
    from tunix.rl import rl_cluster as rl_cluster_lib  # type: ignore[import-untyped]
    from tunix.rl.grpo import grpo_learner  # type: ignore[import-untyped]
    from tunix.rl.rollout import base_rollout  # type: ignore[import-untyped]

    generation = config.max_generation_length or config.eval.max_trace_tokens
    roles = rl_cluster_lib.Role
    cluster_config = rl_cluster_lib.ClusterConfig(
        role_to_mesh={
            roles.ACTOR: built.mesh,
            roles.REFERENCE: built.mesh,
            roles.ROLLOUT: built.mesh,
        },
        rollout_engine="vanilla",
        offload_to_cpu=False,
        training_config=rl_cluster_lib.RLTrainingConfig(
            actor_optimizer=tunix_loop.make_optimizer(config),
            eval_every_n_steps=config.max_steps + 1,
            max_steps=config.max_steps,
            mini_batch_size=batch,
            train_micro_batch_size=batch,
            pbar_description=None,
            **tunix_loop.checkpointing(config, checkpoint_dir),
        ),
        rollout_config=base_rollout.RolloutConfig(
            max_tokens_to_generate=generation,
            max_prompt_length=prompt_len,
            kv_cache_size=prompt_len + generation,
            temperature=config.temperature or DEFAULT_TEMPERATURE,
            top_p=1.0,
            top_k=None,
            seed=config.seed,
        ),
    )
    cluster = rl_cluster_lib.RLCluster(
        actor=built.model,
        reference=reference,
        tokenizer=built.tokenizer.adapter,
        cluster_config=cluster_config,
    )
    algo = grpo_learner.GRPOConfig(
        num_generations=config.num_generations or DEFAULT_NUM_GENERATIONS,
        num_iterations=1,
        beta=DEFAULT_KL_BETA if config.kl_beta is None else config.kl_beta,
        epsilon=config.clip_epsilon or DEFAULT_CLIP_EPSILON,
    )
    return grpo_learner.GRPOLearner(rl_cluster=cluster, algo_config=algo, reward_fns=list(rewards))


def describe(config: TrainerConfig) -> str:
    """The params a schedule may change, as one segment of a replay uses them."""
    kl = DEFAULT_KL_BETA if config.kl_beta is None else config.kl_beta
    return (
        f"learningRate {config.learning_rate:g}, weightDecay {config.weight_decay:g}, "
        f"gradClip {config.grad_clip:g}, klBeta {kl:g}, "
        f"temperature {config.temperature or DEFAULT_TEMPERATURE:g}"
    )


def train(run: Run) -> Outcome:
    """Train ``config`` with GRPO, evaluate, return the result (a backend Train)."""
    config, say = run.config, run.say
    with tunix_loop.started(run, BACKEND) as (dataset, built):
        rewards = RewardLog(reward_fns(config.eval.max_trace_tokens, built.tokenizer.count))
        prompt_len = prompt_length(dataset.train, built.tokenizer)
        say(
            f"{dataset.info.describe()}; backend tunix-grpo: "
            f"{config.num_generations or DEFAULT_NUM_GENERATIONS} generations of "
            f"{config.max_generation_length or config.eval.max_trace_tokens} tokens per "
            f"prompt, {min(config.batch_size, len(dataset.train))} prompts per step, rewards "
            f"{rewards.names}"
        )
        evaluator, clock, hooks = tunix_loop.Loop.of(run, dataset, built, extra=rewards.drain)
        plan = tunix_schedule.segments(config)
        with (
            built.mesh,
            tunix_loop.tunix_stderr(),
            tempfile.TemporaryDirectory(prefix="tunix-rt-grpo-schedule-") as scratch,
        ):
            # a schedule's segments hand over through a checkpoint, kept in scratch if the
            # run keeps none
            checkpoint_dir = run.checkpoint_dir or (scratch if len(plan) > 1 else None)
            start = tunix_loop.start_scores(evaluator, built, say)
            batch = min(config.batch_size, len(dataset.train))
            reference = tunix_model.reference_model(built)
            done = tunix_schedule.saved_step(checkpoint_dir)
            for part in plan:
                if part.end <= done and part is not plan[-1]:
                    continue  # a resumed replay: this segment is in the checkpoint
                if len(plan) > 1:
                    say(f"schedule: until step {part.end} with {describe(part.config)}")
                learner = make_learner(
                    built,
                    part.config,
                    rewards.wrapped,
                    prompt_len,
                    batch,
                    checkpoint_dir,
                    reference,
                )
                trainer = learner.rl_cluster.actor_trainer
                hooks.learning_rate = tunix_loop.schedule(part.config)
                trainer.with_training_hooks(hooks)
                learner.train(prompt_batches(dataset.train, part.config, clock, part.end))
                clock.raise_if_passed(int(trainer.train_steps))
            trained = tunix_loop.evaluate_trained(trainer, clock, evaluator, trainer.model)
    return tunix_loop.finish_outcome(
        BACKEND, run, built, dataset.info, trained, hooks, rewards.final() | start
    )
