"""backend python: the eval rows an entrypoint hands back, checked against the eval split
and scored with the built-in trainer's parser and trace-length guardrail."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tunix_rt.scoring import PRIMARY_SCORE
from tunix_rt.train import tokenizer
from tunix_rt.train.data import Example
from tunix_rt.train.eval_rows import EvalRow, score_row

ROW_REQUIRED = ("prompt", "expected_answer", "output")
ROW_OPTIONAL = ("index", "trace_tokens", "hit_cap")
ROW_COMPUTED = ("answer_correctness", "format_valid", "reasoning", "answer", PRIMARY_SCORE)
"""Row fields tunix-rt derives from ``output``: an entrypoint that sends them is refused."""


class TrialReportError(ValueError):
    """The entrypoint reported something malformed (a metric, a step, an eval row)."""


class EvalRowChecker:
    """Rows of ``trial.eval_rows``: each matched to its eval example (by ``index``, else
    by prompt), its fields checked, its output scored as the built-in eval would."""

    def __init__(self, eval_split: Sequence[Example], dataset_name: str, max_trace_tokens: int):
        self.eval = eval_split
        self.dataset_name = dataset_name
        self.max_trace_tokens = max_trace_tokens
        self.by_prompt: dict[str, list[int]] = {}
        for index, example in enumerate(eval_split):
            self.by_prompt.setdefault(example.prompt, []).append(index)

    def score(self, rows: list[Mapping[str, Any]]) -> list[EvalRow]:
        if not rows:
            raise TrialReportError("trial.eval_rows: no rows; pass one row per eval example")
        seen: dict[int, int] = {}
        out = []
        for number, row in enumerate(rows):
            index = self._match(number, row)
            if index in seen:
                raise TrialReportError(
                    f"trial.eval_rows: row {number} repeats eval row {index} (row {seen[index]})"
                )
            seen[index] = number
            out.append(self._score_one(number, index, row))
        return out

    def _match(self, number: int, row: Any) -> int:
        """The eval split's index of ``row`` (by ``index``, else by prompt), its fields
        checked."""
        where = f"trial.eval_rows: row {number}"
        if not isinstance(row, Mapping):
            raise TrialReportError(f"{where}: expected a mapping, got {type(row).__name__}")
        for key in row:
            if key in ROW_COMPUTED:
                raise TrialReportError(
                    f"{where}: {key!r} is computed by tunix-rt from 'output'; leave it out"
                )
            if key not in ROW_REQUIRED + ROW_OPTIONAL:
                raise TrialReportError(
                    f"{where}: unknown field {key!r}; rows take {list(ROW_REQUIRED)} and "
                    f"optionally {list(ROW_OPTIONAL)}"
                )
        for key in ROW_REQUIRED:
            if not isinstance(row.get(key), str):
                got = "nothing" if key not in row else type(row[key]).__name__
                raise TrialReportError(f"{where}: {key!r} must be a string, got {got}")
        prompt, expected = row["prompt"], row["expected_answer"]
        if "index" in row:
            index = row["index"]
            if isinstance(index, bool) or not isinstance(index, int):
                raise TrialReportError(f"{where}: 'index' must be an integer, got {index!r}")
            if not 0 <= index < len(self.eval):
                raise TrialReportError(
                    f"{where}: index {index} is outside the eval split (0..{len(self.eval) - 1})"
                )
            if self.eval[index].prompt != prompt:
                raise TrialReportError(
                    f"{where}: prompt {prompt[:80]!r} is not eval row {index}'s "
                    f"({self.eval[index].prompt[:80]!r})"
                )
        else:
            candidates = self.by_prompt.get(prompt)
            if not candidates:
                raise TrialReportError(
                    f"{where}: prompt {prompt[:80]!r} is not in the eval split "
                    f"({self.dataset_name}); score rows of trial.dataset.eval"
                )
            index = candidates[0]
        answer = self.eval[index].answer
        if expected.strip() != answer.strip():
            raise TrialReportError(
                f"{where}: expected_answer {expected[:40]!r} differs from eval row {index}'s "
                f"answer {answer[:40]!r}"
            )
        return int(index)

    def _score_one(self, number: int, index: int, row: Mapping[str, Any]) -> EvalRow:
        """The built-in trainer's parser and guardrail on one row's output."""
        where = f"trial.eval_rows: row {number}"
        counted = row.get("trace_tokens")
        if counted is not None and (
            isinstance(counted, bool) or not isinstance(counted, int) or counted < 0
        ):
            raise TrialReportError(f"{where}: 'trace_tokens' must be an integer >= 0")
        capped = row.get("hit_cap", False)
        if not isinstance(capped, bool):
            raise TrialReportError(f"{where}: 'hit_cap' must be true or false")
        return score_generation(
            index,
            self.eval[index],
            row["output"],
            self.max_trace_tokens,
            trace_tokens=counted,
            hit_cap=capped,
        )


def score_generation(
    index: int,
    example: Example,
    output: str,
    max_trace_tokens: int,
    *,
    trace_tokens: int | None = None,
    hit_cap: bool = False,
) -> EvalRow:
    """Score a generation made outside the built-in decoder as the built-in eval would:
    read up to its first ``</answer>`` (where the decoder stops), capped at
    ``max_trace_tokens`` tokens (tunix-rt's tokenizer, unless ``trace_tokens`` counts
    them with the generator's own), a capped trace scoring 0; then the built-in parser
    (``score_row``). For any backend that generates text itself."""
    tokens = tokenizer.encode(output)
    cut = next((i + 1 for i, t in enumerate(tokens) if t in tokenizer.STOP_TOKENS), len(tokens))
    tokens = tokens[:cut]
    counted = len(tokens) if trace_tokens is None else trace_tokens
    capped = hit_cap or counted > max_trace_tokens
    if trace_tokens is None and len(tokens) > max_trace_tokens:
        tokens = tokens[:max_trace_tokens]
    text = tokenizer.decode(tokens)
    return score_row(index, example, text, min(counted, max_trace_tokens), capped)
