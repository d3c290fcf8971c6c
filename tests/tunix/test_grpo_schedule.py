"""What scheduler pbt relies on in backend tunix-grpo: a checkpoint restored under a new
learningRate and klBeta continues with them (weights, Adam moments and step count kept,
a new learner around them), and a ``schedule`` replays that run in one go to the same
weights and eval (tunix_schedule)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tunix", reason="the tunix extra is not installed")

from support.trainer import full_from_sft
from tunix_rt.api.trainer import TrainerConfig
from tunix_rt.train.backends import run_trial

pytestmark = pytest.mark.slow

CONFIG = full_from_sft(
    "tunix-grpo",
    {
        "maxSteps": 4,
        "batchSize": 2,
        "numGenerations": 2,
        "maxGenerationLength": 24,
        "learningRate": 1e-3,
        "warmupSteps": 0,
        "klBeta": 0.04,
        "logEvery": 2,
        "checkpointEvery": 2,
        "seed": 0,
        "dataset": {"trainSize": 16, "evalSize": 4},
        "eval": {"maxTraceTokens": 24, "batchSize": 4, "evalEvery": 0},
    },
    context=64,
)
EXPLOIT = {"learningRate": 3e-3, "klBeta": 0.2}


class Stop(Exception):
    """Raised from a report, as Tune stops (pauses) a trial right after it reports."""


def weights(checkpoint_dir: Path, step: int) -> dict[str, np.ndarray]:
    """The actor's weights in the Tunix checkpoint of ``step``."""
    import jax
    import orbax.checkpoint as ocp  # type: ignore[import-untyped]

    tree = ocp.PyTreeCheckpointer().restore(
        str(checkpoint_dir / "actor" / str(step) / "model_params")
    )
    return {
        jax.tree_util.keystr(p): np.asarray(v) for p, v in jax.tree_util.tree_leaves_with_path(tree)
    }


def test_an_exploit_replayed_as_a_schedule_gives_the_same_weights(tmp_path: Path) -> None:
    def stop_at_2(metrics: dict[str, float]) -> None:
        if metrics["step"] == 2:
            raise Stop

    with pytest.raises(Stop):  # the strong trial, up to its checkpoint at step 2
        run_trial(CONFIG, report=stop_at_2, checkpoint_dir=str(tmp_path / "a"), log=lambda _: None)
    assert sorted(p.name for p in (tmp_path / "a" / "actor").iterdir() if p.name.isdigit()) == ["2"]
    shutil.copytree(tmp_path / "a", tmp_path / "b")  # the exploit: its checkpoint copied
    exploited = run_trial(
        CONFIG.with_params(EXPLOIT), checkpoint_dir=str(tmp_path / "b"), log=lambda _: None
    )
    assert [h["step"] for h in exploited.history] == [4.0]  # resumed at 2: no report of 2
    steps = [
        {"step": 0, "params": {"learningRate": 1e-3, "klBeta": 0.04}},
        {"step": 2, "params": EXPLOIT, "exploitedFrom": "a"},
    ]
    lines: list[str] = []
    replayed = run_trial(
        TrainerConfig.model_validate(CONFIG.to_wire() | {"schedule": steps}),
        checkpoint_dir=str(tmp_path / "c"),
        log=lines.append,
    )
    assert any("schedule: until step 2 with learningRate 0.001" in line for line in lines)
    assert any(
        "until step 4 with learningRate 0.003" in line and "klBeta 0.2" in line for line in lines
    )
    assert exploited.steps == replayed.steps == 4
    # Bit-equal, not merely close: both runs restore the same checkpoint and then run the
    # same jitted steps on the same batches and sampling seeds in one process.
    got, want = weights(tmp_path / "c", 4), weights(tmp_path / "b", 4)
    assert got.keys() == want.keys()
    for key, value in want.items():
        np.testing.assert_array_equal(got[key], value, err_msg=key)
    assert replayed.metrics["loss"] == exploited.metrics["loss"]
    assert replayed.primary_score == exploited.primary_score
    assert [r.output for r in replayed.eval_rows] == [r.output for r in exploited.eval_rows]

    run_trial(CONFIG, checkpoint_dir=str(tmp_path / "d"), log=lambda _: None)
    unchanged = weights(tmp_path / "d", 4)  # the schedule did change the run
    assert any(not np.allclose(unchanged[k], got[k]) for k in got)
