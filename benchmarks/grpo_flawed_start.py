"""Demonstrations with a known flaw, for SFT starts that GRPO should be able to repair
(issue 25): does the GRPO backend learn what its rewards measure when the signal is strong?

* ``ramble``: a share of the train traces is written twice (``T`` -> ``T T``), so the
  start often runs past ``eval.maxTraceTokens`` (a cap hit scores 0 and costs the
  ``trace_length`` reward);
* ``reversed``: a share of the train answers is written little-endian, as the trace's
  columns are (``147`` -> ``741``);
* ``full-stop``: a share of the train answers ends with a full stop, as prose would
  (``147`` -> ``147.``), which the eval does not read as the integer (it scores 0).

The eval rows stay clean. Writes ``OUT/train.jsonl`` and ``OUT/eval.jsonl`` for
``dataset.trainPath`` / ``dataset.evalPath`` (dev-reasoning-v2, seed 0, 20,000 + 128 rows):

    uv run python benchmarks/grpo_flawed_start.py ramble 0.6 /tmp/ramble60

benchmarks/README.md ("Flawed SFT starts") has the SFT and GRPO runs made from them.
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import asdict, replace
from pathlib import Path

from tunix_rt.train import data
from tunix_rt.train.data import Example


def reverse_digits(answer: str) -> str:
    """``147`` -> ``741``, ``-26`` -> ``-62``."""
    sign, digits = ("-", answer[1:]) if answer.startswith("-") else ("", answer)
    return sign + digits[::-1]


def flawed(example: Example, flaw: str) -> Example:
    if flaw == "ramble":
        return replace(example, reasoning=f"{example.reasoning} {example.reasoning}")
    if flaw == "full-stop":
        return replace(example, answer=f"{example.answer}.")
    return replace(example, answer=reverse_digits(example.answer))


def write(path: Path, rows: list[Example]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(asdict(row)) + "\n")  # the fields load_jsonl reads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("flaw", choices=["ramble", "reversed", "full-stop"])
    parser.add_argument("share", type=float, help="share of the train rows given the flaw")
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    train, evaluation = data.generate(0, 20_000, 128)
    rng = random.Random(0)
    train = [flawed(ex, args.flaw) if rng.random() < args.share else ex for ex in train]
    args.out.mkdir(parents=True, exist_ok=True)
    write(args.out / "train.jsonl", train)
    write(args.out / "eval.jsonl", evaluation)
    flaw = f"{args.share:.0%} {args.flaw}"
    print(f"{args.out}: {len(train)} train rows ({flaw}), {len(evaluation)} eval rows")


if __name__ == "__main__":
    main()
