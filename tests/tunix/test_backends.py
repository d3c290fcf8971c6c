"""The tunix-sft, tunix-grpo and tunix-dpo train functions on gemma3-tiny (a handful of steps):
what they report, the eval rows they score, the deadline, the weights an SFT run
exports and a GRPO run starts from."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from support.trainer import SFT_CHECKPOINT
from tunix_rt.api.trainer import TrainerConfig
from tunix_rt.scoring import compute_primary_score

pytest.importorskip("tunix", reason="the tunix extra is not installed")

from tunix_rt.train import TrainingTimeout, data
from tunix_rt.train.backends import run_trial, tunix_eval, tunix_model, tunix_weights
from tunix_rt.train.backends.tunix_loop import START_SCORE

pytestmark = pytest.mark.slow


def tiny(**extra: Any) -> TrainerConfig:
    base: dict[str, Any] = {
        "backend": "tunix-sft",
        "model": {"name": "gemma3-tiny", "context": 64},
        "maxSteps": 6,
        "batchSize": 8,
        "warmupSteps": 1,
        "logEvery": 2,
        "dataset": {"trainSize": 64, "evalSize": 8},
        "eval": {"maxTraceTokens": 24, "batchSize": 8, "evalEvery": 4, "intermediateRows": 4},
    }
    return TrainerConfig.model_validate(base | extra)


def from_checkpoint(backend: str, **extra: Any) -> TrainerConfig:
    """A full (no LoRA) run of ``backend`` that starts from the committed SFT checkpoint."""
    return tiny(
        backend=backend,
        model={"name": "gemma3-tiny", "checkpoint": str(SFT_CHECKPOINT), "context": 64},
        loraRank=0,
        learningRate=1e-5,
        **extra,
    )


def test_sft_lora_reports_evaluates_and_exports_merged_weights(tmp_path: Path) -> None:
    reports: list[dict[str, float]] = []
    lines: list[str] = []
    result = run_trial(
        tiny(loraRank=4, loraAlpha=8),
        report=reports.append,
        checkpoint_dir=str(tmp_path / "ckpt"),
        log=lines.append,
    )
    assert result.backend == "tunix-sft" and result.steps == 6
    assert [r["step"] for r in reports] == [2.0, 4.0, 6.0]
    assert {"loss", "learning_rate", "steps_per_second"} <= set(reports[0])
    assert reports[1]["eval_rows"] == 4  # the intermediate eval at evalEvery
    assert len(result.eval_rows) == 8
    assert result.primary_score == compute_primary_score(r.model_dump() for r in result.eval_rows)
    assert result.history[-1]["step"] == 6 and "compile_seconds" in result.metrics
    source = result.model_source
    assert source is not None and source.random_init and source.config["lora_rank"] == 4
    assert START_SCORE not in result.metrics  # a random init has no start worth scoring
    assert result.model_id == "tunix-rt/gemma3-tiny-lora4"
    # The export (LoRA merged in) loads as a checkpoint of the same config.
    exported = tmp_path / "ckpt" / "export" / "model.safetensors"
    assert exported.is_file()
    built = tunix_model.build(
        tiny(model={"name": "gemma3-tiny", "checkpoint": str(exported)}, loraRank=0),
        tmp_path / "work",
        lines.append,
    )
    assert built.source.checkpoint_sha256 == tunix_weights.sha256_of(exported)


def test_a_passed_deadline_stops_training(tmp_path: Path) -> None:
    with pytest.raises(TrainingTimeout) as stopped:
        run_trial(tiny(loraRank=0), deadline=time.monotonic(), log=lambda line: None)
    assert stopped.value.step == 0 and stopped.value.max_steps == 6


def test_grpo_reports_rewards_from_the_committed_checkpoint(tmp_path: Path) -> None:
    reports: list[dict[str, float]] = []
    config = from_checkpoint(
        "tunix-grpo",
        maxSteps=2,
        batchSize=2,
        numGenerations=2,
        maxGenerationLength=24,
        logEvery=1,
        eval={"maxTraceTokens": 24, "batchSize": 8},
    )
    result = run_trial(config, report=reports.append, log=lambda line: None)
    assert result.backend == "tunix-grpo" and result.steps == 2
    final = result.metrics
    for name in ("reward_mean", "reward_answer_correct", "reward_format_valid"):
        assert name in final
    assert final["reward_format_valid"] > 0  # the SFT checkpoint writes the format
    assert result.model_source is not None and not result.model_source.random_init
    assert result.primary_score == compute_primary_score(r.model_dump() for r in result.eval_rows)
    # The summary's start score is the checkpoint's, on the rows the final eval scored.
    built = tunix_model.build(config, tmp_path, lambda line: None)
    evaluate = tunix_eval.TunixEvaluator(
        data.load_dataset(config.dataset).eval, built.tokenizer, config
    )
    with built.mesh:
        rows, _ = evaluate(built.model)
    assert [r.index for r in rows] == [r.index for r in result.eval_rows]
    assert final[START_SCORE] == compute_primary_score(r.model_dump() for r in rows)


def test_dpo_reports_preferences_from_the_committed_checkpoint() -> None:
    reports: list[dict[str, float]] = []
    lines: list[str] = []
    result = run_trial(
        from_checkpoint(
            "tunix-dpo",
            maxSteps=4,
            batchSize=6,
            dpoBeta=0.5,
            logEvery=2,
            eval={"maxTraceTokens": 32, "batchSize": 8},
        ),
        report=reports.append,
        log=lines.append,
    )
    assert result.backend == "tunix-dpo" and result.steps == 4
    assert result.model_id == "tunix-rt/gemma3-tiny-full-dpo"
    assert [r["step"] for r in reports[:2]] == [2.0, 4.0]
    for metrics in (reports[0], result.metrics):
        assert 0.0 <= metrics["preference_accuracy"] <= 1.0
        assert "preference_margin" in metrics
    # The first steps start at the reference: the DPO loss is near log 2, then falls.
    assert 0.0 < reports[0]["loss"] < 0.75
    assert any("64 preference pairs" in line for line in lines)
    assert 0.0 <= result.metrics[START_SCORE] <= 1.0
    assert any(line.startswith("start (model.checkpoint): primary_score") for line in lines)
    assert result.model_source is not None and not result.model_source.random_init
    assert result.primary_score == compute_primary_score(r.model_dump() for r in result.eval_rows)
