"""Datasets: the generated dev-reasoning-v2 arithmetic set and user JSONL files.

dev-reasoning-v2 is multi-step arithmetic: 2-3 operands, integers 0-99, + and -.
Operands are written as two digits (``05-60+30=``) so every digit of a problem sits in
the same column every time. The trace works the way one adds on paper, and is built
so that every token the model must produce is learnable from a signal it can already
see (what lets a 2-layer model reach high accuracy in a few hundred steps):

* one group per operation: the running total modulo 1000 (negative totals wrap,
  10's complement, so + and - work the same way on every total);
* a group walks the columns from the units up and writes, per column, the carry (or
  borrow) out of that column *before* the column's digit. The carry is a monotone
  function of the two digits, so it is learned first; given it, the digit is a simple
  function of the column too. (Writing the digit first leaves a digit that, seen from
  either input digit alone, is uniformly random: the model stalls on it.)
* a negative result is then written as ``-`` and its magnitude, units first;
* the answer is the plain integer.

Example ``05-60+30=``: ``<reasoning>051419 050709 -520</reasoning><answer>-25</answer>``
(5-60 = 945 mod 1000, columns 5-0 → borrow 0 digit 5, 0-6 → borrow 1 digit 4,
0-0-1 → borrow 1 digit 9; then 945+30 = 975; 975 is -25, written units first as 520).

Harder tiers (``dataset.name``, see :data:`TIERS`) keep this trace and raise the
difficulty: 3-4 operands of three digits, a first step that may multiply by one digit
(``*`` only first, so left to right is also the usual precedence), and totals kept
over five columns. ``dev-reasoning-v2-hard`` writes them compactly
(``034*007+120-045=``); ``dev-reasoning-v2-hard-worded`` writes the same problems as
fixed-length sentences (``Ann has 034 beans; times 007, gains 120, loses 045. How
many?``): the same draws, traces and answers, so the two tiers differ only in the
prompt. Every number keeps three digits, so each digit still sits in a fixed column.
``dev-reasoning-v2-hardest`` (compact) adds a step the others never show: the first
step's ``*`` is by a two-digit number, worked as two groups of partial products
(``operand * tens``, then that shifted one column plus ``operand * units``), with
totals over six columns (``034*027+120-045=``).
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict

from tunix_rt.api.trainer import TrainerConfig
from tunix_rt.api.trainer_sections import DatasetConfig
from tunix_rt.train import tokenizer
from tunix_rt.train.packing import fitting_row, pack_rows

MASK64 = (1 << 64) - 1
COLUMNS = 3
"""Totals are kept modulo 10**COLUMNS; all true totals lie in [-198, 297]."""
DEFAULT_TIER = "dev-reasoning-v2"


@dataclass(frozen=True)
class Tier:
    """How one built-in dataset draws its problems and writes its prompts."""

    name: str
    operands: tuple[int, ...]
    """Operand counts, drawn uniformly."""
    digits: int
    """Operands are 0 .. 10**digits - 1, written with exactly this many digits."""
    columns: int
    """Running totals are kept modulo 10**columns (true totals stay within half of it)."""
    multiply: bool = False
    """The first step may be ``*`` (one draw in three)."""
    multiplier_digits: int = 1
    """1: ``*`` by one digit 2-9, one group; 2: by 10-99, two groups of partial products
    (see :func:`two_digit_product`)."""
    worded: bool = False
    """Prompts are fixed-length sentences instead of ``a+b-c=``."""


_HARD = Tier("dev-reasoning-v2-hard", operands=(3, 4), digits=3, columns=5, multiply=True)
"""The hard tier, which the worded and hardest tiers vary."""
TIERS: dict[str, Tier] = {
    tier.name: tier
    for tier in (
        Tier(DEFAULT_TIER, operands=(2, 3), digits=2, columns=COLUMNS),
        _HARD,
        replace(_HARD, name="dev-reasoning-v2-hard-worded", worded=True),
        replace(_HARD, name="dev-reasoning-v2-hardest", columns=6, multiplier_digits=2),
    )
}
"""The built-in datasets, by ``dataset.name`` (``api/trainer.py`` lists the same names
with their longest row and trace, which ``tests/train/test_tiers.py`` checks)."""
WORDS = {"+": "gains", "-": "loses", "*": "times"}
"""Worded steps: every verb five letters, so a sentence's length depends only on its
operand count."""


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


def apply(total: int, operand: int, op: str) -> int:
    """``total op operand`` in plain integers."""
    if op == "*":
        return total * operand
    return total + operand if op == "+" else total - operand


def column_step(total: int, operand: int, op: str, columns: int = COLUMNS) -> tuple[str, int]:
    """``total op operand`` modulo 10**columns, units column first, each column as
    carry-out (or borrow-out) then digit. Returns the group's text and the new total.

    ``*`` multiplies by one digit: per column ``x * operand + carry``, whose carry-out
    (0-8) is again one digit, so every group has the same shape."""
    if op == "*" and not 0 <= operand <= 9:
        raise ValueError(f"'*' multiplies by one digit, got {operand}")
    text = []
    carry = 0
    for column in range(columns):
        x, y = (total // 10**column) % 10, (operand // 10**column) % 10
        if op == "*":
            value = x * operand + carry
            carry = value // 10
        elif op == "+":
            value = x + y + carry
            carry = int(value >= 10)
        else:
            value = x - y - carry
            carry = int(value < 0)
        text.append(f"{carry}{value % 10}")
    return "".join(text), apply(total, operand, op) % 10**columns


def two_digit_product(operand: int, multiplier: int, columns: int) -> tuple[str, int]:
    """``operand * multiplier`` for a two-digit multiplier as two groups of partial
    products, so the trace teaches a step the one-digit tiers never show.

    The first group is ``operand * tens`` (a one-digit :func:`column_step`); the second
    is that product shifted one column plus ``operand * units``: per column
    ``first[c-1] + operand[c] * units + carry``, whose carry-out is again one digit
    (at most 9 + 81 + 9 = 99). Returns both groups and the product."""
    if not 10 <= multiplier <= 99:
        raise ValueError(f"a two-digit multiplier is 10-99, got {multiplier}")
    tens, units = divmod(multiplier, 10)
    first_text, first = column_step(operand, tens, "*", columns)
    text = []
    carry = 0
    for column in range(columns):
        shifted = (first // 10 ** (column - 1)) % 10 if column else 0
        value = shifted + ((operand // 10**column) % 10) * units + carry
        carry = value // 10
        text.append(f"{carry}{value % 10}")
    return first_text + " " + "".join(text), operand * multiplier % 10**columns


def solve(operands: Sequence[int], ops: Sequence[str], columns: int = COLUMNS) -> tuple[str, str]:
    """The reasoning trace and the answer for ``operands[0] ops[0] operands[1] ...``,
    evaluated left to right."""
    if len(operands) != len(ops) + 1 or any(op not in "+-*" for op in ops):
        raise ValueError("need one more operand than operators, and operators in '+-*'")
    total = operands[0]
    true_total = operands[0]
    groups = []
    for op, operand in zip(ops, operands[1:], strict=True):
        if op == "*" and operand > 9:
            group, total = two_digit_product(total, operand, columns)
        else:
            group, total = column_step(total, operand, op, columns)
        groups.append(group)
        true_total = apply(true_total, operand, op)
    if not -(10**columns) // 2 < true_total < 10**columns // 2:
        raise ValueError(f"total {true_total} does not fit {columns} columns")
    if true_total < 0:
        groups.append("-" + f"{-true_total:0{columns}d}"[::-1])
    return " ".join(groups), str(true_total)


def make_example(operands: Sequence[int], ops: Sequence[str], tier: Tier | None = None) -> Example:
    """One problem of ``tier`` (the default: two-digit operands, e.g. ``05-60+30=``)."""
    tier = tier or TIERS[DEFAULT_TIER]
    if "*" in ops[1:]:
        raise ValueError("'*' only as the first step (left to right is then the precedence)")
    reasoning, answer = solve(operands, ops, tier.columns)
    return Example(write_prompt(operands, ops, tier), reasoning, answer)


def write_prompt(operands: Sequence[int], ops: Sequence[str], tier: Tier) -> str:
    """Compact ``034*007+120-045=`` or worded ``Ann has 034 beans; times 007, gains 120,
    loses 045. How many?``; every number with ``tier.digits`` digits."""
    width = tier.digits
    steps = list(zip(ops, operands[1:], strict=True))
    if tier.worded:
        clauses = ", ".join(f"{WORDS[op]} {x:0{width}d}" for op, x in steps)
        return f"Ann has {operands[0]:0{width}d} beans; {clauses}. How many?"
    return f"{operands[0]:0{width}d}" + "".join(f"{op}{x:0{width}d}" for op, x in steps) + "="


def draw(rng: SplitMix64, tier: Tier | None = None) -> Example:
    """One problem of ``tier``: operand count, operands and operators uniformly; with
    ``tier.multiply`` the first step is ``*`` one time in three, by 2-9 (or 10-99 with
    ``tier.multiplier_digits`` 2).

    The default tier's draws (2 or 3 operands in 0..99, + or -) are exactly the ones
    dev-reasoning-v2 was pinned with: the calls on ``rng`` must stay in this order."""
    tier = tier or TIERS[DEFAULT_TIER]
    count = tier.operands[rng.below(len(tier.operands))]
    operands = [rng.below(10**tier.digits) for _ in range(count)]
    ops = ["+-"[rng.below(2)] for _ in range(count - 1)]
    if tier.multiply and rng.below(3) == 0:
        ops[0] = "*"
        operands[1] = 2 + rng.below(8) if tier.multiplier_digits == 1 else 10 + rng.below(90)
    return make_example(operands, ops, tier)


def tier_of(name: str) -> Tier:
    """The built-in tier called ``name``; an unknown name names ``dataset.name``."""
    if name not in TIERS:
        raise ValueError(
            f"dataset.name {name!r} is not a built-in dataset; use one of {list(TIERS)} "
            "or give dataset.trainPath and dataset.evalPath"
        )
    return TIERS[name]


def generate(
    seed: int, train_size: int, eval_size: int, name: str = DEFAULT_TIER
) -> tuple[list[Example], list[Example]]:
    """Deterministic train and eval splits; eval prompts are distinct and never in train."""
    tier = tier_of(name)
    rng = SplitMix64(seed * 2 + 1)
    eval_rows: list[Example] = []
    seen: set[str] = set()
    while len(eval_rows) < eval_size:
        example = draw(rng, tier)
        if example.prompt not in seen:
            seen.add(example.prompt)
            eval_rows.append(example)
    train: list[Example] = []
    while len(train) < train_size:
        example = draw(rng, tier)
        if example.prompt not in seen:
            train.append(example)
    return train, eval_rows


FIELDS = ("prompt", "reasoning", "answer")


class DatasetInfo(BaseModel):
    """What a run trained and evaluated on; sha256 pins the exact content."""

    model_config = ConfigDict(extra="forbid")

    name: str
    sha256: str
    train_rows: int
    eval_rows: int

    def describe(self) -> str:
        """How the trainers' logs name it: name, hash prefix and row counts."""
        return (
            f"dataset {self.name} sha256 {self.sha256[:16]} train {self.train_rows} "
            f"eval {self.eval_rows} rows"
        )


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
    except RecursionError:
        return None, RowError(path, number, None, "nested too deeply to be a row")
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
    stamp: tuple[int, ...],
) -> Dataset:
    if train_path is not None and eval_path is not None:
        train, train_errors = _load_split("train", train_path)
        eval_rows, eval_errors = _load_split("eval", eval_path)
        for split, path, rows, errors in (
            ("train", train_path, train, train_errors),
            ("eval", eval_path, eval_rows, eval_errors),
        ):
            if not rows:
                shown = "; ".join(str(e) for e in errors[:3]) or "the file is empty"
                raise ValueError(f"dataset.{split}Path {path} has no valid rows: {shown}")
        rejected = train_errors + eval_errors
    else:
        train, eval_rows = generate(seed, train_size, eval_size, name)
        rejected = []
    info = DatasetInfo(
        name=name,
        sha256=content_sha256(train, eval_rows),
        train_rows=len(train),
        eval_rows=len(eval_rows),
    )
    return Dataset(train, eval_rows, info, rejected)


def _load_split(split: str, path: str) -> tuple[list[Example], list[RowError]]:
    """One user file; one that is not UTF-8 text is named with the field it came from."""
    try:
        return load_jsonl(path)
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"dataset.{split}Path {path}: not UTF-8 text (byte {exc.start}); save it as UTF-8"
        ) from None


def check_dataset(config: TrainerConfig) -> None:
    """Read and check a config's user files before any training: every file readable,
    rows valid, each train row within ``model.context``. Raises ValueError naming the
    field; the generated dataset needs no check."""
    if config.dataset.train_path is None and config.dataset.eval_path is None:
        return
    dataset = load_dataset(config.dataset)
    encode_train(dataset.train, config.model.context)


def load_dataset(config: DatasetConfig) -> Dataset:
    """The train and eval rows a config names (cached: sweeps reuse one dataset; a
    user file is read again when its size or modification time changes)."""
    stamp: tuple[int, ...] = ()
    for field, path in (("trainPath", config.train_path), ("evalPath", config.eval_path)):
        if path is not None:
            if not Path(path).is_file():
                what = "a folder, not a file" if Path(path).is_dir() else "no such file"
                raise ValueError(f"dataset.{field} {path}: {what}")
            stat = Path(path).stat()
            stamp += (stat.st_mtime_ns, stat.st_size)
    return _load(
        config.name,
        config.seed,
        config.train_size,
        config.eval_size,
        config.train_path,
        config.eval_path,
        stamp,
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
    """Rows as [n, length] arrays, length = the longest row: no padding column is wasted."""
    fix = "raise model.context or shorten the row"
    rows = [
        fitting_row(
            index,
            encode_prompt(ex.prompt),
            tokenizer.encode(tokenizer.format_target(ex.reasoning, ex.answer)),
            context,
            fix,
        )
        for index, ex in enumerate(examples)
    ]
    return EncodedTrain(*pack_rows(rows, 0, np.int8))
