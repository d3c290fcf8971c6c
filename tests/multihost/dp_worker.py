"""One process of a data-parallel run of the built-in trainer (run by test_data_parallel.py
as ``python dp_worker.py``): joins ``jax.distributed`` on CPU when there are several
processes, trains, and writes what it saw to ``--out``."""

from __future__ import annotations

import argparse
import json


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True, help="TrainerConfig, wire JSON")
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--rank", type=int, default=0)
    parser.add_argument("--coordinator", default="")
    parser.add_argument("--checkpoint-dir", default=None)
    parser.add_argument("--out", required=True)
    parser.add_argument("--hlo", default="", help="non-empty: inspect the compiled step")
    args = parser.parse_args()

    from tunix_rt.train import sharding

    if args.processes > 1:
        sharding.join_processes(args.coordinator, args.processes, args.rank)
    import jax

    from tunix_rt.api.trainer import TrainerConfig
    from tunix_rt.train import run_trial
    from tunix_rt.train.loop import Trainer

    config = TrainerConfig.model_validate_json(args.config)
    result = run_trial(config, checkpoint_dir=args.checkpoint_dir, log=lambda line: None)
    hlo = ""
    if args.hlo:
        # The compiled train step of this mesh: with devices in several processes, the
        # gradient mean is an all-reduce across them.
        trainer = Trainer(config, lambda line: None)
        batch = trainer.batches.get(0)
        lowered = trainer.step_fn.lower(trainer.graphdef, trainer.initial, *batch, trainer.hp)
        hlo = lowered.compile().as_text()
    with open(args.out, "w") as out:
        json.dump(
            {
                "process_count": jax.process_count(),
                "process_index": jax.process_index(),
                "devices": result.devices,
                "local_devices": [str(d) for d in jax.local_devices()],
                "history": result.history,
                "primary_score": result.primary_score,
                "eval_rows": len(result.eval_rows),
                "all_reduce": "all-reduce" in hlo,
            },
            out,
        )
    if args.processes > 1:
        jax.distributed.shutdown()


if __name__ == "__main__":
    main()
