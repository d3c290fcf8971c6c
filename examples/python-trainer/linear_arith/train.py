"""A trainer of the user's own, for ``backend: python``: a linear model of the
dev-reasoning arithmetic, trained with minibatch SGD in numpy.

An example, not a competitor to the built-in transformer: the prompt is parsed by hand
into operand features (``05-60+30=`` -> ``[5, -60, 30]`` with ``feature_set: signed``,
``[5, 60, 30]`` with ``unsigned``), and the model learns the weights and bias that turn
them into the answer. The true map is ``[1, 1, 1]`` and ``0`` on signed features, so
whether a trial gets there within its steps depends on the searched parameters:

* ``step_size`` (float): too small and the weights are still far off when the budget
  ends; too large (without ``normalise``) and SGD diverges;
* ``feature_set`` (str): ``unsigned`` cannot represent subtraction at all;
* ``normalise`` (bool): features and targets scaled by 1/100 make much larger steps stable.

tunix-rt scores what this writes: each ``output`` goes through the built-in trainer's
parser and trace guardrail, and primary_score is computed from the rows by
``tunix_rt.scoring``; the trainer cannot report a score of its own.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # the trial workers have tunix-rt; this module needs it only for types
    from tunix_rt.train.backends.python import Trial

_TOKEN = re.compile(r"\s*(\d+|[+-])")
FEATURE_SETS = ("signed", "unsigned")
OPERANDS = 3
"""dev-reasoning-v2 prompts have 2 or 3 operands; a missing one is a 0 feature."""


def parse(prompt: str) -> tuple[list[int], list[str]] | None:
    """``'05-60+30='`` -> ``([5, 60, 30], ['-', '+'])``; None for any other shape."""
    text = prompt.strip().removesuffix("=")
    parts = _TOKEN.findall(text)
    if "".join(parts) != text.replace(" ", "") or len(parts) % 2 == 0:
        return None
    operands, ops = parts[0::2], parts[1::2]
    if not all(o.isdigit() for o in operands) or any(op not in "+-" for op in ops):
        return None
    if len(operands) > OPERANDS:
        return None
    return [int(o) for o in operands], ops


def features(prompt: str, feature_set: str) -> np.ndarray | None:
    """The operand features of one prompt (None when it does not parse)."""
    parsed = parse(prompt)
    if parsed is None:
        return None
    operands, ops = parsed
    signs = [1.0] + [(-1.0 if op == "-" else 1.0) for op in ops]
    if feature_set == "unsigned":
        signs = [1.0] * len(operands)
    values = [s * x for s, x in zip(signs, operands, strict=True)]
    return np.array(values + [0.0] * (OPERANDS - len(values)), dtype=np.float64)


class LinearModel:
    """``answer = round(w . x + b)``, with x and the target scaled by ``1/scale``."""

    def __init__(self, feature_set: str, scale: float, seed: int) -> None:
        self.feature_set, self.scale = feature_set, scale
        self.rng = np.random.default_rng(seed)
        self.w = self.rng.normal(0.0, 0.1, OPERANDS)
        self.b = 0.0

    def matrix(self, prompts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Features [n, 3] (scaled) and which rows parsed."""
        rows = [features(p, self.feature_set) for p in prompts]
        ok = np.array([r is not None for r in rows])
        x = np.stack([r if r is not None else np.zeros(OPERANDS) for r in rows])
        return x / self.scale, ok

    def sgd_step(self, x: np.ndarray, y: np.ndarray, step_size: float) -> float:
        """One step on the mean squared error; returns the batch loss in answer units."""
        with np.errstate(all="ignore"):
            err = x @ self.w + self.b - y
            self.w = self.w - step_size * 2.0 * (x.T @ err) / len(y)
            self.b = self.b - step_size * 2.0 * float(err.mean())
            return float(np.mean(err**2)) * self.scale**2

    def output(self, x_row: np.ndarray, parsed: bool) -> str:
        """The trace the eval reads: the raw prediction as reasoning, then the answer."""
        with np.errstate(all="ignore"):
            value = float(x_row @ self.w + self.b) * self.scale
        if not parsed:
            return "<reasoning>unparsed prompt</reasoning><answer></answer>"
        if not np.isfinite(value) or abs(value) > 1e6:
            return "<reasoning>diverged</reasoning><answer></answer>"
        return f"<reasoning>{value:.1f}</reasoning><answer>{round(value)}</answer>"


def _finite(value: float) -> float | None:
    """A weight for the run manifest (JSON has no NaN or infinity: a diverged one is null)."""
    return round(float(value), 6) if np.isfinite(value) else None


def eval_rows(model: LinearModel, examples: Sequence[Any]) -> list[dict[str, Any]]:
    """One row per eval example: its prompt, expected answer and the model's output."""
    x, ok = model.matrix([ex.prompt for ex in examples])
    return [
        {"prompt": ex.prompt, "expected_answer": ex.answer, "output": model.output(x[i], ok[i])}
        for i, ex in enumerate(examples)
    ]


def train(trial: Trial) -> None:
    """The entrypoint (``linear_arith.train:train``): train, report, hand over eval rows."""
    params = trial.params
    step_size = float(params.get("step_size", 0.1))
    feature_set = str(params.get("feature_set", "signed"))
    if feature_set not in FEATURE_SETS:
        raise ValueError(f"feature_set must be one of {FEATURE_SETS}, got {feature_set!r}")
    scale = 100.0 if params.get("normalise", True) else 1.0
    config = trial.config

    model = LinearModel(feature_set, scale, trial.seed)
    train_rows = trial.dataset.train
    x, ok = model.matrix([ex.prompt for ex in train_rows])
    y = np.array([float(ex.answer) if ok[i] else 0.0 for i, ex in enumerate(train_rows)])
    x, y = x[ok], y[ok] / scale
    trial.log(f"linear_arith: {len(y)} train rows, step_size {step_size:g}, {feature_set}")
    if not len(y):
        raise ValueError("no train prompt parsed as arithmetic; this example needs dev-reasoning")

    losses: list[float] = []
    every = config.eval.eval_every
    for step in range(1, trial.max_steps + 1):
        batch = model.rng.integers(0, len(y), config.batch_size)
        losses.append(model.sgd_step(x[batch], y[batch], step_size))
        if step % config.log_every == 0 or step == trial.max_steps:
            trial.report(step=step, loss=float(np.mean(losses)))
            losses = []
        if every and step % every == 0 and step < trial.max_steps:
            trial.eval_rows(eval_rows(model, trial.dataset.eval[: config.eval.intermediate_rows]))

    trial.describe_model(
        "linear-arith",
        config={
            "feature_set": feature_set,
            "scale": scale,
            "weights": [_finite(w) for w in model.w],
            "bias": _finite(model.b),
        },
    )
    trial.eval_rows(eval_rows(model, trial.dataset.eval))
