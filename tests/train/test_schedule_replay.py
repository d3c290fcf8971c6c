"""What scheduler pbt relies on in the built-in trainer: a checkpoint restored under a new
learning rate continues with it (params and Adam moments kept), and a ``schedule``
replays that run in one go, bit for bit."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from support.trainer import tiny_config
from tunix_rt.train import run_trial


class Stop(Exception):
    """Raised from a report, as Tune stops (pauses) a trial right after it reports."""


def test_an_exploit_replayed_as_a_schedule_gives_the_same_numbers(tmp_path: Path) -> None:
    config = tiny_config(checkpointEvery=10, eval={"evalEvery": 0}, learningRate=0.003)

    def stop_at_10(metrics: dict[str, float]) -> None:
        if metrics["step"] == 10:
            raise Stop

    with pytest.raises(Stop):  # the strong trial, up to its checkpoint at step 10
        run_trial(config, report=stop_at_10, checkpoint_dir=str(tmp_path / "a"), log=lambda _: None)
    shutil.copytree(tmp_path / "a", tmp_path / "b")  # the exploit: its checkpoint copied
    lines: list[str] = []
    exploited = run_trial(
        config.with_params({"learningRate": 0.006}),
        checkpoint_dir=str(tmp_path / "b"),
        log=lines.append,
    )
    assert any("resumed" in line and "step 10" in line for line in lines)
    steps = [
        {"step": 0, "params": {"learningRate": 0.003}},
        {"step": 10, "params": {"learningRate": 0.006}, "exploitedFrom": "a"},
    ]
    replayed = run_trial(
        config.model_validate(config.to_wire() | {"schedule": steps}), log=lambda _: None
    )
    assert replayed.metrics["loss"] == exploited.metrics["loss"]
    assert [r.output for r in replayed.eval_rows] == [r.output for r in exploited.eval_rows]
    unchanged = run_trial(config, log=lambda _: None)  # the schedule did change the run
    assert unchanged.metrics["loss"] != replayed.metrics["loss"]
