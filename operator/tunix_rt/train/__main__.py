"""``python -m tunix_rt.train --config FILE [--set key=value ...] [--output result.json]``.

Runs one trial from a TrainerConfig file (YAML or JSON, camelCase or snake_case), prints
a short summary, and writes the TrainResult JSON.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from tunix_rt.contract.exits import ExitCode
from tunix_rt.notice import NOTICE, Preempted
from tunix_rt.train.config import load_trainer_config


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tunix_rt.train", description=__doc__)
    parser.add_argument(
        "--config", help="TrainerConfig YAML/JSON file (default: built-in defaults)"
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a field, dotted for nested ones: learningRate=1e-3, model.width=64",
    )
    parser.add_argument("--output", help="write the TrainResult JSON here")
    parser.add_argument("--checkpoint-dir", help="resume from / save checkpoints to this folder")
    args = parser.parse_args(argv)
    try:
        config = load_trainer_config(args.config, args.overrides)
    except (ValidationError, ValueError, OSError) as exc:
        print(f"error: invalid trainer config: {exc}", file=sys.stderr)
        return ExitCode.INVALID

    from tunix_rt.train import run_trial  # imports JAX: after the config is known good

    NOTICE.install()  # SIGTERM: checkpoint at the next step, exit to be resumed
    try:
        result = run_trial(config, checkpoint_dir=args.checkpoint_dir)
    except ValueError as exc:  # a setting that does not fit the data or the devices
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.INVALID
    except Preempted as exc:
        print(f"{exc}; run the same command again to resume", file=sys.stderr)
        return ExitCode.INTERRUPTED
    m = result.metrics
    print(
        f"{result.model_id} {result.steps} steps in {result.wall_seconds:.1f}s: "
        f"primary_score={result.primary_score} format_valid={m.get('format_valid_rate')} "
        f"cap_hit={m.get('cap_hit_rate')} trace p50/p95={m.get('trace_len_p50')}/"
        f"{m.get('trace_len_p95')} dataset sha256={result.dataset.sha256}"
    )
    if args.output:
        path = Path(args.output)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(result.model_dump_json(indent=2) + "\n", encoding="utf-8")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
