"""A local Ray that misses its own fixed 30 s start window on a busy machine is started
again (twice at most), saying so; any other start failure is raised at once."""

from __future__ import annotations

import os
from typing import Any

import pytest
import ray
import yaml

from support.sweeps import GOOD_SWEEP_YAML
from tunix_rt.api.sweep import SweepSpec
from tunix_rt.tune import driver
from tunix_rt.tune.session import SweepRun

TIMED_OUT = "The current node timed out during startup. This could happen because ..."


def fake_ray(monkeypatch: pytest.MonkeyPatch, failures: list[str]) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []

    def init(**kwargs: Any) -> None:
        calls.append(kwargs)
        if failures:
            raise Exception(failures.pop(0))  # what ray/_private/node.py raises

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", init)
    monkeypatch.setattr(ray, "shutdown", lambda: None)
    return calls


def local_run() -> SweepRun:
    return SweepRun(
        spec=SweepSpec.model_validate(yaml.safe_load(GOOD_SWEEP_YAML)["spec"]), name="s", num_cpus=2
    )


def test_a_start_that_timed_out_is_tried_again(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls = fake_ray(monkeypatch, [TIMED_OUT])
    driver._init_ray(local_run())
    assert len(calls) == 2 and calls[1]["num_cpus"] == 2
    assert "starting it again (2/3)" in capsys.readouterr().err


def test_it_gives_up_after_three_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = fake_ray(monkeypatch, [TIMED_OUT] * 3)
    with pytest.raises(Exception, match="timed out during startup"):
        driver._init_ray(local_run())
    assert len(calls) == driver.RAY_START_ATTEMPTS == 3


def test_other_failures_are_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = fake_ray(monkeypatch, ["object store too small"])
    with pytest.raises(Exception, match="object store"):
        driver._init_ray(local_run())
    assert len(calls) == 1


def test_local_trials_run_at_normal_priority_unless_the_user_says(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ray's workers default to nice 15: beside a busy process they starve. A local run
    starts them at 0 (the raylet reads RAY_worker_niceness); a value the user set stays."""
    fake_ray(monkeypatch, [])
    monkeypatch.delenv(driver.WORKER_NICENESS_ENV, raising=False)
    driver._init_ray(local_run())
    assert os.environ[driver.WORKER_NICENESS_ENV] == "0"
    monkeypatch.setenv(driver.WORKER_NICENESS_ENV, "10")
    driver._init_ray(local_run())
    assert os.environ[driver.WORKER_NICENESS_ENV] == "10"
