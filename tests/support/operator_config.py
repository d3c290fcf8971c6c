"""The operator configuration the tests run kopf with: test images, one storage Secret,
no liveness endpoint and no metrics port; only the store and the timings differ."""

from __future__ import annotations

from tunix_rt.controller import OperatorConfig


def operator_config(
    default_storage: str, *, poll_seconds: float = 0.2, summary_grace_seconds: float = 1.0
) -> OperatorConfig:
    return OperatorConfig(
        image_cpu="registry.example/trainer:t-cpu",
        image_gpu="registry.example/trainer:t-cuda",
        image_tpu="registry.example/trainer:t-tpu",
        default_storage=default_storage,
        storage_secret="store-creds",
        poll_seconds=poll_seconds,
        summary_grace_seconds=summary_grace_seconds,
        liveness_endpoint=None,
        metrics_port=0,
    )
