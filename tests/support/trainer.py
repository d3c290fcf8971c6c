"""Tiny trainer configs: real code paths, seconds on a CPU (imported by the train tests;
not a conftest, so its name cannot clash with tests/conftest.py); and the committed
gemma3-tiny SFT checkpoint the tunix backends' tests start from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tunix_rt.api.trainer import TrainerConfig

SFT_CHECKPOINT = (
    Path(__file__).resolve().parents[2]
    / "examples"
    / "checkpoints"
    / "gemma3-tiny-sft"
    / "model.safetensors"
)
"""gemma3-tiny after SFT, committed to the repository."""
FULLSTOP_CHECKPOINT = SFT_CHECKPOINT.parents[1] / "gemma3-tiny-sft-fullstop" / "model.safetensors"
"""gemma3-tiny after SFT on answers that mostly end with a full stop (the GRPO repair's
start: examples/trainer-tunix-sft-tiny-fullstop.yaml)."""


def full_from_sft(
    backend: str,
    fields: dict[str, Any],
    *,
    context: int | None = None,
    checkpoint: Path = SFT_CHECKPOINT,
) -> TrainerConfig:
    """A ``backend`` config that trains all of gemma3-tiny (no LoRA) from ``checkpoint``
    (``fields``: the rest of the config; ``context``: the model's, where given)."""
    model: dict[str, Any] = {"name": "gemma3-tiny", "checkpoint": str(checkpoint)}
    if context is not None:
        model["context"] = context
    return TrainerConfig.model_validate(
        {"backend": backend, "model": model, "loraRank": 0, **fields}
    )


def tiny_config(**overrides: Any) -> TrainerConfig:
    data: dict[str, Any] = {
        "learningRate": 3e-3,
        "warmupSteps": 5,
        "batchSize": 16,
        "maxSteps": 20,
        "seed": 0,
        "logEvery": 5,
        "model": {"layers": 1, "width": 32, "heads": 2, "mlpRatio": 2, "context": 48},
        "dataset": {"trainSize": 256, "evalSize": 16},
        "eval": {"maxTraceTokens": 32, "batchSize": 16, "evalEvery": 10, "intermediateRows": 8},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    if data["eval"].get("evalEvery") == 0 and "intermediateRows" not in overrides.get("eval", {}):
        del data["eval"]["intermediateRows"]  # no intermediate evals to size
    return TrainerConfig.model_validate(data)
