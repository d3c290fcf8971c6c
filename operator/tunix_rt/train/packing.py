"""Train rows packed into [n, length] token and loss-mask arrays: one packing for the
flax loop's byte tokenizer and tunix-sft's model tokenizer."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import DTypeLike

Row = tuple[list[int], list[int]]
"""A train row: its prompt tokens and its target tokens (the loss counts the target)."""


def fitting_row(index: int, prompt: list[int], target: list[int], context: int, fix: str) -> Row:
    """The row, if it fits the model's context; else why not and ``fix``: what to do."""
    if len(prompt) + len(target) > context:
        raise ValueError(
            f"train row {index} is {len(prompt) + len(target)} tokens, longer than "
            f"model.context={context}; {fix}"
        )
    return prompt, target


def pack_rows(
    rows: Sequence[Row], pad_id: int, mask_dtype: DTypeLike
) -> tuple[np.ndarray, np.ndarray]:
    """Rows right-padded with ``pad_id`` to the longest one (no padding column is wasted),
    and the mask that is 1 on each row's target tokens."""
    length = max(len(p) + len(t) for p, t in rows)
    tokens = np.full((len(rows), length), pad_id, np.int32)
    mask = np.zeros((len(rows), length), mask_dtype)
    for row, (prompt, target) in enumerate(rows):
        end = len(prompt) + len(target)
        tokens[row, :end] = prompt + target
        mask[row, len(prompt) : end] = 1
    return tokens, mask
