"""The TPU trainer image carries the tunix extra (the backends are TPU-first) and proves
at build time that the Tunix code paths import."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TPU = ROOT / "images" / "trainer-tpu" / "Dockerfile"


def test_tpu_image_installs_the_tunix_extra_from_the_lock() -> None:
    text = TPU.read_text()
    syncs = re.findall(r"uv (?:sync|export) [^\n]*", text)
    assert len(syncs) == 3, syncs
    assert all("--frozen" in s and "--extra tunix" in s for s in syncs)
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert any(d.startswith("google-tunix==") for d in extras["tunix"])


def test_tpu_image_imports_the_tunix_backends_at_build_time() -> None:
    text = TPU.read_text()
    assert "from tunix.rl.grpo import grpo_learner" in text
    assert "from tunix_rt.train.backends import tunix_sft, tunix_grpo" in text
