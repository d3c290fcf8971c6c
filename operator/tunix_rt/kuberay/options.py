"""The operator-wide settings every RayJob manifest is built with (images, secrets)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from tunix_rt.api.cluster import Accelerator


@dataclass(frozen=True)
class BuildOptions:
    """Operator-wide defaults the manifests use (see ``tunix_rt.controller.config``)."""

    image_cpu: str = "ghcr.io/tunix-rt/trainer:0.1.0-cpu"
    image_gpu: str = "ghcr.io/tunix-rt/trainer:0.1.0-cuda"
    image_tpu: str = "ghcr.io/tunix-rt/trainer:0.1.0-tpu"
    image_pull_policy: str | None = None
    storage_secret: str | None = None
    """Secret whose keys become env vars of head and workers (storage credentials)."""
    deadline_grace_seconds: int = 900
    """Added to the sweep/rehearsal timeout for the RayJob's activeDeadlineSeconds: cluster
    start-up, image pulls and the final summary write."""
    extra_labels: Mapping[str, str] = field(default_factory=dict)

    def image_for(self, accelerator: Accelerator) -> str:
        return {
            Accelerator.CPU: self.image_cpu,
            Accelerator.GPU: self.image_gpu,
            Accelerator.TPU: self.image_tpu,
        }[accelerator]
