"""Tiny trainer configs: real code paths, seconds on a CPU (imported by the train tests;
not a conftest, so its name cannot clash with tests/conftest.py)."""

from __future__ import annotations

from typing import Any

from tunix_rt.api.trainer import TrainerConfig


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
