"""The Tunix example manifests (tests/examples validates every manifest; these check what
makes each one the example it says it is)."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

import yaml

from tunix_rt.api.cluster import Accelerator
from tunix_rt.api.rehearsal import Rehearsal
from tunix_rt.api.sweep import Sweep
from tunix_rt.api.trainer import TrainerConfig
from tunix_rt.api.trainer_backends import tunix_model_name
from tunix_rt.train.config import load_trainer_config

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def load(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((EXAMPLES / name).read_text())
    return doc


def test_tiny_grpo_sweep_starts_from_the_committed_checkpoint() -> None:
    sweep = Sweep.model_validate(load("sweep-tunix-grpo-tiny.yaml"))
    trainer = sweep.spec.trainer
    assert trainer is not None and trainer.backend == "tunix-grpo"
    assert trainer.model.name == "gemma3-tiny"
    checkpoint = ROOT / str(trainer.model.checkpoint)
    assert checkpoint.is_file() and checkpoint.suffix == ".safetensors"
    # ~150k float32 weights (a few hundred KB, not a model zoo in git)
    assert checkpoint.stat().st_size < 1_000_000
    assert len(hashlib.sha256(checkpoint.read_bytes()).hexdigest()) == 64
    assert sweep.spec.max_trials == 3 and sweep.spec.max_concurrent_trials == 1
    rates = sweep.spec.search_space["learningRate"].values
    assert rates is not None and len(set(rates)) == 3


def test_the_sft_config_that_made_the_checkpoint_is_a_tunix_sft_config() -> None:
    config = load_trainer_config(str(EXAMPLES / "trainer-tunix-sft-tiny.yaml"), [])
    assert config.backend == "tunix-sft" and config.lora_rank == 0
    assert config.model.name == "gemma3-tiny"


def test_sft_rehearsal_is_lora_on_gemma3_tiny() -> None:
    rehearsal = Rehearsal.model_validate(load("rehearsal-tunix-sft-tiny.yaml"))
    trainer = rehearsal.spec.trainer
    assert isinstance(trainer, TrainerConfig)
    assert trainer.backend == "tunix-sft" and (trainer.lora_rank or 0) > 0
    assert rehearsal.spec.evidence.package


def test_v6e_grpo_sweep_loads_gemma3_1b_from_gs_on_a_v6e_slice() -> None:
    sweep = Sweep.model_validate(load("sweep-tunix-grpo-v6e.yaml"))
    trainer = sweep.spec.trainer
    assert trainer is not None and trainer.backend == "tunix-grpo"
    assert tunix_model_name(trainer.model.name or "") in {"gemma3-1b", "gemma3-1b-it"}
    assert str(trainer.model.checkpoint).startswith("gs://")
    assert str(trainer.model.tokenizer).startswith("gs://")
    (pool,) = sweep.spec.cluster.pools
    assert pool.accelerator is Accelerator.TPU and pool.tpu_accelerator == "tpu-v6e-slice"
    assert pool.tpu_topology
    chips = math.prod(int(n) for n in pool.tpu_topology.split("x"))
    assert 0 < sweep.spec.resources.tpu <= chips
    assert sweep.spec.max_concurrent_trials * sweep.spec.resources.tpu <= chips * pool.replicas


def test_v6e_rehearsal_promotes_the_v6e_sweep() -> None:
    rehearsal = Rehearsal.model_validate(load("rehearsal-tunix-grpo-v6e.yaml"))
    sweep = Sweep.model_validate(load("sweep-tunix-grpo-v6e.yaml"))
    assert rehearsal.spec.from_sweep == sweep.metadata.name
    (pool,) = rehearsal.spec.cluster.pools
    assert pool.tpu_accelerator == "tpu-v6e-slice"
