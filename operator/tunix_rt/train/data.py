"""Datasets: the generated dev-reasoning-v2 arithmetic set and user JSONL files."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass

MASK64 = (1 << 64) - 1


@dataclass(frozen=True)
class Example:
    prompt: str
    reasoning: str
    answer: str


class SplitMix64:
    """Tiny PRNG defined by its arithmetic, so the data is identical on every machine and
    every Python/NumPy version (NumPy only promises stable bit generators, not methods)."""

    def __init__(self, seed: int) -> None:
        self.state = seed & MASK64

    def next(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        return z ^ (z >> 31)

    def below(self, n: int) -> int:
        """Uniform integer in [0, n) by rejection (no modulo bias)."""
        limit = (1 << 64) - ((1 << 64) % n)
        while True:
            x = self.next()
            if x < limit:
                return x % n


def _chain(operands: list[int], ops: list[str]) -> tuple[str, str]:
    acc = operands[0]
    steps = []
    for op, x in zip(ops, operands[1:], strict=True):
        new = acc + x if op == "+" else acc - x
        steps.append(f"{acc}{op}{x}={new}")
        acc = new
    return " ".join(steps), str(acc)


def _grouped_terms(operands: list[int], ops: list[str]) -> tuple[list[int], list[int]]:
    signs = ["+", *ops]
    plus = [x for s, x in zip(signs, operands, strict=True) if s == "+"]
    minus = [x for s, x in zip(signs, operands, strict=True) if s == "-"]
    return plus, minus


def _grouped(operands: list[int], ops: list[str], fmt: Callable[[int], str] = str) -> tuple[str, str]:
    plus, minus = _grouped_terms(operands, ops)
    steps = []
    p = plus[0]
    for x in plus[1:]:
        steps.append(f"{fmt(p)}+{fmt(x)}={fmt(p + x)}")
        p += x
    if minus:
        n = minus[0]
        for x in minus[1:]:
            steps.append(f"{fmt(n)}+{fmt(x)}={fmt(n + x)}")
            n += x
        steps.append(f"{fmt(p)}-{fmt(n)}={fmt(p - n)}")
        p -= n
    return " ".join(steps), str(p)


def _pad3(x: int) -> str:
    return f"-{-x:03d}" if x < 0 else f"{x:03d}"


def _rev3(x: int) -> str:
    return ("-" if x < 0 else "") + f"{abs(x):03d}"[::-1]


FORMATS: dict[str, Callable[[list[int], list[str]], tuple[str, str]]] = {
    "chain": _chain,
    "grouped": _grouped,
    "padded": lambda o, p: _grouped(o, p, _pad3),
    "rev": lambda o, p: _grouped(o, p, _rev3),
}
FORMAT = "chain"


def _s4(x: int) -> str:
    return ("-" if x < 0 else "+") + f"{abs(x):03d}"


def _fixed_full(operands: list[int], ops: list[str]) -> tuple[str, str]:
    acc = operands[0]
    steps = []
    for op, x in zip(ops, operands[1:], strict=True):
        new = acc + x if op == "+" else acc - x
        steps.append(f"{_s4(acc)}{op}{x:02d}={_s4(new)}")
        acc = new
    return " ".join(steps), str(acc)


def _fixed_min(operands: list[int], ops: list[str]) -> tuple[str, str]:
    acc = operands[0]
    steps = []
    for op, x in zip(ops, operands[1:], strict=True):
        acc = acc + x if op == "+" else acc - x
        steps.append(_s4(acc))
    return " ".join(steps), str(acc)


FORMATS["fixed_full"] = _fixed_full
FORMATS["fixed_min"] = _fixed_min


def make_example(operands: list[int], ops: list[str], fmt: str | None = None) -> Example:
    fmt = fmt or FORMAT
    w = "02d" if fmt.startswith("fixed") else "d"
    prompt = "".join([f"{operands[0]:{w}}"] + [f"{op}{x:{w}}" for op, x in zip(ops, operands[1:], strict=True)])
    reasoning, answer = FORMATS[fmt](operands, ops)
    return Example(prompt + "=", reasoning, answer)


def draw(rng: SplitMix64, fmt: str | None = None) -> Example:
    n = 2 + rng.below(2)
    operands = [rng.below(100) for _ in range(n)]
    ops = ["+-"[rng.below(2)] for _ in range(n - 1)]
    return make_example(operands, ops, fmt)


def generate(seed: int, train_size: int, eval_size: int, fmt: str | None = None) -> tuple[list[Example], list[Example]]:
    rng = SplitMix64(seed * 2 + 1)
    eval_rows: list[Example] = []
    seen: set[str] = set()
    while len(eval_rows) < eval_size:
        ex = draw(rng, fmt)
        if ex.prompt not in seen:
            seen.add(ex.prompt)
            eval_rows.append(ex)
    train: list[Example] = []
    while len(train) < train_size:
        ex = draw(rng, fmt)
        if ex.prompt not in seen:
            train.append(ex)
    return train, eval_rows
