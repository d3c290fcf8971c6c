"""A Tunix trial's step throughput vs the same Tunix training loop run bare.

    uv run python benchmarks/tunix_backend.py [--steps 80] [--repeats 3] [--lora-rank 8]

In one process, alternating to share the machine's noise fairly, on gemma3-tiny (random
init, byte tokenizer) with the same optimizer, batches and step count:

* trial: ``tunix_rt.train.backends.run_trial`` (the ``tunix-sft`` backend:
  the batch iterator with its deadline check, the training hooks that report every
  ``logEvery`` steps, the learning-curve bookkeeping), read from the result's
  ``steps_per_second`` (the steps after the first, evaluation excluded);
* bare: Tunix's ``PeftTrainer.train`` on the same model and optimizer with no hooks and
  a plain list of batches: one call of one step (compile), then the timed call.

``tunix_vs_bare_ratio`` = median trial steps/s / median bare steps/s (goal >= 0.95).
Writes the ``tunix`` key of ``benchmarks/results.json`` and the section between the
``tunix`` markers of ``benchmarks/README.md``. (Not ``benchmarks/tunix.py``: a script's
folder comes first on ``sys.path``, and that name would shadow the ``tunix`` package.)
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import jax

from recording import cpu_name, merge_results, quick
from tunix_rt.api.trainer import TrainerConfig
from tunix_rt.train import data
from tunix_rt.train.backends import run_trial, tunix_loop, tunix_model, tunix_sft

HERE = Path(__file__).resolve().parent
README = HERE / "README.md"
BEGIN, END = "<!-- tunix:begin -->", "<!-- tunix:end -->"


def config(steps: int, lora_rank: int) -> TrainerConfig:
    return TrainerConfig.model_validate(
        {
            "backend": "tunix-sft",
            "model": {"name": "gemma3-tiny", "context": 64},
            "loraRank": lora_rank,
            "maxSteps": steps,
            "batchSize": 32,
            "warmupSteps": 5,
            "logEvery": 10,
            "dataset": {"trainSize": 2000, "evalSize": 8},
            "eval": {"maxTraceTokens": 32, "batchSize": 8},
        }
    )


def trial_steps_per_second(cfg: TrainerConfig) -> float:
    result = run_trial(cfg, log=lambda line: None)
    return float(result.metrics["steps_per_second"])


def bare_steps_per_second(cfg: TrainerConfig) -> float:
    """Tunix's own loop, nothing of ours around it: compile on one batch, then time."""
    from tunix.sft import peft_trainer

    dataset = data.load_dataset(cfg.dataset)
    with tempfile.TemporaryDirectory() as work:
        built = tunix_model.build(cfg, Path(work), lambda line: None)
    tokens, mask = tunix_sft.sft_rows(dataset.train, built.tokenizer, cfg.model.context)
    order = tunix_loop.batch_rows(len(tokens), cfg.batch_size, cfg.seed)
    batches = [
        peft_trainer.TrainingInput(input_tokens=tokens[rows], input_mask=mask[rows])
        for rows, _ in zip(order, range(cfg.max_steps), strict=False)
    ]
    with built.mesh:
        trainer = tunix_sft.make_trainer(built, cfg, None)
        trainer.is_managed_externally = True  # runs to the end of each list, no close()
        trainer.train(batches[:1])
        start = time.perf_counter()
        trainer.train(batches[1:])
        jax.block_until_ready(jax.tree.leaves(trainer.model))
        return (len(batches) - 1) / (time.perf_counter() - start)


def measure(steps: int, repeats: int, lora_rank: int) -> dict[str, Any]:
    cfg = config(steps, lora_rank)
    load_before = os.getloadavg()[0]
    trial: list[float] = []
    bare: list[float] = []
    for _ in range(repeats):
        bare.append(bare_steps_per_second(cfg))
        trial.append(trial_steps_per_second(cfg))
    load_after = os.getloadavg()[0]
    ratio = statistics.median(trial) / statistics.median(bare)
    return {
        "date": dt.date.today().isoformat(),
        "machine": f"{cpu_name()}, {jax.devices()[0].platform} x {jax.device_count()}",
        "model": "gemma3-tiny (random init), batch 32, byte tokenizer",
        "lora_rank": lora_rank,
        "steps": steps,
        "repeats": repeats,
        "trial_runs": trial,
        "bare_runs": bare,
        "trial_steps_per_second": statistics.median(trial),
        "bare_steps_per_second": statistics.median(bare),
        "trial_spread": [min(trial), max(trial)],
        "bare_spread": [min(bare), max(bare)],
        "tunix_vs_bare_ratio": ratio,
        "loadavg_1m_before_after": [round(load_before, 2), round(load_after, 2)],
        "versions": tunix_model.versions(),
    }


def section(figures: dict[str, Any]) -> str:
    def spread(values: list[float]) -> str:
        return f"{min(values):.2f} to {max(values):.2f}"

    load = figures["loadavg_1m_before_after"]
    return "\n".join(
        [
            "## Tunix backend overhead (`benchmarks/tunix_backend.py`)",
            "",
            f"Measured {figures['date']} on {figures['machine']}, 1-minute load average "
            f"{load[0]} before and {load[1]} after (the machine is shared: read the ratio, "
            "not the absolute rates). "
            f"{figures['model']}, LoRA rank {figures['lora_rank']}, {figures['steps']} steps "
            f"per run, {figures['repeats']} runs of each, alternating; google-tunix "
            f"{figures['versions'].get('google-tunix')}, qwix {figures['versions'].get('qwix')}.",
            "",
            "| loop | median steps/s | spread |",
            "| --- | --- | --- |",
            f"| tunix-sft trial (`run_trial`: hooks, reports, deadline) | "
            f"{figures['trial_steps_per_second']:.2f} | {spread(figures['trial_runs'])} |",
            f"| bare `PeftTrainer.train` (same model, optimizer, batches) | "
            f"{figures['bare_steps_per_second']:.2f} | {spread(figures['bare_runs'])} |",
            "",
            f"**tunix_vs_bare_ratio = {figures['tunix_vs_bare_ratio']:.3f}** (goal >= 0.95).",
        ]
    )


def replace_section(body: str) -> None:
    text = README.read_text(encoding="utf-8") if README.exists() else "# Benchmarks\n"
    block = f"{BEGIN}\n{body}\n{END}"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    README.write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=80, help="train steps per run")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each, alternating")
    parser.add_argument("--lora-rank", type=int, default=8, help="0: full fine-tuning")
    args = parser.parse_args()
    if quick():  # make bench's quick mode: prove it runs, record nothing in the README
        args.steps, args.repeats = 10, 1
    figures = measure(args.steps, args.repeats, args.lora_rank)
    merge_results({"tunix": figures, "tunix_vs_bare_ratio": figures["tunix_vs_bare_ratio"]})
    if not quick():
        replace_section(section(figures))
    print(section(figures))


if __name__ == "__main__":
    main()
