"""run_trial's deadline on a tiny real config: TrainingTimeout part-way, or before step 0."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from support.trainer import tiny_config
from tunix_rt.train import TrainingTimeout, loop, run_trial


def test_deadline_stops_training_part_way(monkeypatch: pytest.MonkeyPatch) -> None:
    """The clock jumps an hour once step 5 is reported: the check before the next step
    raises (deterministic, no sleeping), with the steps reached and no final evaluation."""
    leap = [0.0]

    def monotonic() -> float:
        return time.monotonic() + leap[0]

    clock = SimpleNamespace(monotonic=monotonic, perf_counter=time.perf_counter)
    monkeypatch.setattr(loop, "time", clock)
    reports: list[dict[str, float]] = []

    def report(metrics: dict[str, float]) -> None:
        reports.append(metrics)
        leap[0] = 3600.0

    config = tiny_config(maxSteps=40, eval={"evalEvery": 0})
    with pytest.raises(TrainingTimeout) as caught:
        run_trial(config, report=report, log=lambda _line: None, deadline=monotonic() + 60)
    timeout = caught.value
    assert timeout.step == 5 < config.max_steps
    assert (timeout.max_steps, timeout.before_eval) == (40, False)
    assert timeout.elapsed_seconds > 0
    assert isinstance(timeout, TimeoutError)
    assert str(timeout).startswith("deadline reached at step 5 of 40 (in training) after ")
    assert [r["step"] for r in reports] == [5]  # no final report: evaluation never ran


def test_a_past_deadline_stops_before_the_first_step() -> None:
    config = tiny_config(maxSteps=40)
    with pytest.raises(TrainingTimeout) as caught:
        run_trial(config, log=lambda _line: None, deadline=time.monotonic() - 1)
    assert caught.value.step == 0
