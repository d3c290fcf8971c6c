"""Datasets: the generated dev-reasoning-v2 arithmetic set and user JSONL files."""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict

from tunix_rt.api.trainer import DatasetConfig
from tunix_rt.train import tokenizer

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


def _grouped(
    operands: list[int], ops: list[str], fmt: Callable[[int], str] = str
) -> tuple[str, str]:
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


def _running(operands: list[int], ops: list[str]) -> list[int]:
    acc = operands[0]
    out = []
    for op, x in zip(ops, operands[1:], strict=True):
        acc = acc + x if op == "+" else acc - x
        out.append(acc)
    return out


def _fixed_rev_signed(operands: list[int], ops: list[str]) -> tuple[str, str]:
    r = _running(operands, ops)
    return " ".join(("-" if x < 0 else "+") + f"{abs(x):03d}"[::-1] for x in r), str(r[-1])


def _fixed_rev_comp(operands: list[int], ops: list[str]) -> tuple[str, str]:
    r = _running(operands, ops)
    steps = [f"{x % 1000:03d}"[::-1] for x in r]
    if r[-1] < 0:
        steps.append("-" + f"{-r[-1]:03d}"[::-1])
    return " ".join(steps), str(r[-1])


def _srev(x: int) -> str:
    return ("-" if x < 0 else "+") + f"{abs(x):03d}"[::-1]


def _fixed_full_rev(operands: list[int], ops: list[str]) -> tuple[str, str]:
    acc = operands[0]
    steps = []
    for op, x in zip(ops, operands[1:], strict=True):
        new = acc + x if op == "+" else acc - x
        steps.append(f"{_srev(acc)}{op}{f'{x:03d}'[::-1]}={_srev(new)}")
        acc = new
    return " ".join(steps), str(acc)


def _grouped_rev_signed(operands: list[int], ops: list[str]) -> tuple[str, str]:
    plus, minus = _grouped_terms(operands, ops)
    terms = [(1, x) for x in plus[1:]] + [(-1, x) for x in minus]
    acc = plus[0] if plus else 0
    out = []
    for s, x in terms:
        acc += s * x
        out.append(_srev(acc))
    return " ".join(out), str(acc)


FORMATS["grouped_rev_signed"] = _grouped_rev_signed
def _colpairs(x: int, y: int, op: str) -> tuple[str, int]:
    """(x op y) mod 1000 column by column, LSB first, each column as carry/borrow-out then digit."""
    out = []
    carry = 0
    for i in range(3):
        xi, yi = (x // 10**i) % 10, (y // 10**i) % 10
        v = xi + yi + carry if op == "+" else xi - yi - carry
        if op == "+":
            carry, d = divmod(v, 10)
        else:
            carry, d = int(v < 0), v % 10
        out.append(f"{carry}{d}")
    return "".join(out), (x + y if op == "+" else x - y) % 1000


def _comp_pairs(operands: list[int], ops: list[str]) -> tuple[str, str]:
    acc = operands[0]
    steps = []
    true = operands[0]
    for op, x in zip(ops, operands[1:], strict=True):
        text, acc = _colpairs(acc, x, op)
        steps.append(text)
        true = true + x if op == "+" else true - x
    if true < 0:
        steps.append("-" + f"{-true:03d}"[::-1])
    return " ".join(steps), str(true)


FORMATS["comp_pairs"] = _comp_pairs
FORMATS["fixed_comp_pairs"] = _comp_pairs
FORMATS["fixed_full_rev"] = _fixed_full_rev
FORMATS["fixed_rev_signed"] = _fixed_rev_signed
FORMATS["fixed_rev_comp"] = _fixed_rev_comp
FORMATS["fixed_full"] = _fixed_full
FORMATS["fixed_min"] = _fixed_min


def make_example(operands: list[int], ops: list[str], fmt: str | None = None) -> Example:
    fmt = fmt or FORMAT
    w = "02d" if fmt.startswith(("fixed", "grouped_rev")) else "d"
    prompt = "".join(
        [f"{operands[0]:{w}}"] + [f"{op}{x:{w}}" for op, x in zip(ops, operands[1:], strict=True)]
    )
    reasoning, answer = FORMATS[fmt](operands, ops)
    return Example(prompt + "=", reasoning, answer)


def draw(rng: SplitMix64, fmt: str | None = None) -> Example:
    n = 2 + rng.below(2)
    operands = [rng.below(100) for _ in range(n)]
    ops = ["+-"[rng.below(2)] for _ in range(n - 1)]
    return make_example(operands, ops, fmt)


def generate(
    seed: int, train_size: int, eval_size: int, fmt: str | None = None
) -> tuple[list[Example], list[Example]]:
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


FIELDS = ("prompt", "reasoning", "answer")


class DatasetInfo(BaseModel):
    """What a run trained and evaluated on; sha256 pins the exact content."""

    model_config = ConfigDict(extra="forbid")

    name: str
    sha256: str
    train_rows: int
    eval_rows: int


@dataclass(frozen=True)
class RowError:
    """A rejected JSONL row: where it is and which field is wrong."""

    path: str
    line: int
    field: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}"
        return (
            f"{where}: field {self.field!r}: {self.message}"
            if self.field
            else f"{where}: {self.message}"
        )


@dataclass(frozen=True)
class Dataset:
    train: list[Example]
    eval: list[Example]
    info: DatasetInfo
    rejected: list[RowError]


def content_sha256(train: Iterable[Example], eval_rows: Iterable[Example]) -> str:
    """sha256 of the canonical JSON lines of both splits (key order and spacing fixed)."""
    digest = hashlib.sha256()
    for split, rows in (("train", train), ("eval", eval_rows)):
        digest.update(f"#{split}\n".encode())
        for ex in rows:
            line = json.dumps(
                {"prompt": ex.prompt, "reasoning": ex.reasoning, "answer": ex.answer},
                sort_keys=True,
                ensure_ascii=False,
                separators=(",", ":"),
            )
            digest.update(line.encode("utf-8") + b"\n")
    return digest.hexdigest()


def load_jsonl(path: str | Path) -> tuple[list[Example], list[RowError]]:
    """Read prompt/reasoning/answer rows; a bad row is reported (line, field) and skipped,
    the good rows are all kept. A missing file raises (nothing to salvage)."""
    path = Path(path)
    rows: list[Example] = []
    errors: list[RowError] = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            example, error = _parse_row(str(path), number, line)
            if error is not None:
                errors.append(error)
            elif example is not None:
                rows.append(example)
    return rows, errors


def _parse_row(path: str, number: int, line: str) -> tuple[Example | None, RowError | None]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        return None, RowError(
            path, number, None, f"not valid JSON ({exc.msg} at column {exc.colno})"
        )
    if not isinstance(record, dict):
        return None, RowError(
            path, number, None, "expected a JSON object with prompt, reasoning, answer"
        )
    values: dict[str, str] = {}
    for field in FIELDS:
        if field not in record:
            return None, RowError(path, number, field, "missing")
        value = record[field]
        if field == "answer" and isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            return None, RowError(
                path, number, field, f"must be a string, got {type(value).__name__}"
            )
        if field != "reasoning" and not value.strip():
            return None, RowError(path, number, field, "is empty")
        values[field] = value
    return Example(values["prompt"], values["reasoning"], values["answer"].strip()), None


@functools.lru_cache(maxsize=4)
def _load(
    name: str,
    seed: int,
    train_size: int,
    eval_size: int,
    train_path: str | None,
    eval_path: str | None,
) -> Dataset:
    if train_path is not None and eval_path is not None:
        train, train_errors = load_jsonl(train_path)
        eval_rows, eval_errors = load_jsonl(eval_path)
        for split, path, rows in (("train", train_path, train), ("eval", eval_path, eval_rows)):
            if not rows:
                raise ValueError(
                    f"dataset.{split}Path {path} has no valid rows; see the row errors"
                )
        rejected = train_errors + eval_errors
    else:
        train, eval_rows = generate(seed, train_size, eval_size)
        rejected = []
    info = DatasetInfo(
        name=name,
        sha256=content_sha256(train, eval_rows),
        train_rows=len(train),
        eval_rows=len(eval_rows),
    )
    return Dataset(train, eval_rows, info, rejected)


def load_dataset(config: DatasetConfig) -> Dataset:
    """The train and eval rows a config names (cached: sweeps reuse one dataset)."""
    return _load(
        config.name,
        config.seed,
        config.train_size,
        config.eval_size,
        config.train_path,
        config.eval_path,
    )


def dataset_info(config: DatasetConfig) -> DatasetInfo:
    """Name, content sha256 and sizes, without training (for manifests and evidence)."""
    return load_dataset(config).info


@dataclass(frozen=True)
class EncodedTrain:
    """Train rows as fixed-length arrays: tokens [n, length] and loss_mask [n, length]
    (1 on reasoning + answer tokens, the only positions the loss counts)."""

    tokens: np.ndarray
    loss_mask: np.ndarray


def encode_prompt(prompt: str) -> list[int]:
    return [tokenizer.BOS, *tokenizer.encode(prompt)]


def encode_train(examples: Sequence[Example], context: int) -> EncodedTrain:
    """Pack every row into the shortest multiple-of-8 length that fits the longest row."""
    encoded = []
    for index, ex in enumerate(examples):
        prompt = encode_prompt(ex.prompt)
        target = tokenizer.encode(tokenizer.format_target(ex.reasoning, ex.answer))
        if len(prompt) + len(target) > context:
            raise ValueError(
                f"train row {index} is {len(prompt) + len(target)} tokens, longer than "
                f"model.context={context}; raise model.context or shorten the row"
            )
        encoded.append((prompt, target))
    longest = max(len(p) + len(t) for p, t in encoded)
    length = min(context, -(-longest // 8) * 8)
    tokens = np.zeros((len(encoded), length), np.int32)
    loss_mask = np.zeros((len(encoded), length), np.int8)
    for row, (prompt, target) in enumerate(encoded):
        end = len(prompt) + len(target)
        tokens[row, :end] = prompt + target
        loss_mask[row, len(prompt) : end] = 1
    return EncodedTrain(tokens, loss_mask)
