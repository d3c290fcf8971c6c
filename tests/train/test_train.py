"""run_trial end to end on tiny configs: the report contract, determinism, learning,
checkpoint resume, data parallelism and the module entry point."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import jax
import pytest

from support.trainer import tiny_config
from tunix_rt.api.trainer import TrainerConfig
from tunix_rt.train import TrainResult, run_trial
from tunix_rt.train.__main__ import main
from tunix_rt.train.config import load_trainer_config
from tunix_rt.train.loop import BatchOrder
from tunix_rt.train.sharding import data_mesh

ROOT = Path(__file__).resolve().parents[2]


class Run:
    def __init__(self, config: TrainerConfig, **kwargs: object) -> None:
        self.reports: list[dict[str, float]] = []
        self.lines: list[str] = []
        self.result = run_trial(config, report=self.reports.append, log=self.lines.append, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def twice() -> tuple[Run, Run]:
    return Run(tiny_config()), Run(tiny_config())


def test_reports_follow_the_contract(twice: tuple[Run, Run]) -> None:
    run = twice[0]
    steps = [r["step"] for r in run.reports]
    assert steps == [5, 10, 15, 20]  # logEvery 5; the last report is the final eval
    for report in run.reports:
        assert {"step", "loss"} <= report.keys()
        assert all(isinstance(v, int | float) and math.isfinite(v) for v in report.values())
    assert "primary_score" in run.reports[1] and run.reports[1]["eval_rows"] == 8  # evalEvery 10
    assert "primary_score" not in run.reports[0]
    final = run.reports[-1]
    assert final["eval_rows"] == 16 and "primary_score" in final and "format_valid_rate" in final
    assert run.result.history == run.reports
    assert any("primary_score" in line for line in run.lines)


def test_result_has_everything_downstream_needs(twice: tuple[Run, Run]) -> None:
    result = twice[0].result
    assert result.steps == 20
    assert result.primary_score == result.metrics["primary_score"]
    assert len(result.eval_rows) == 16
    assert {"cap_hit_rate", "trace_len_p50", "trace_len_p95", "loss", "steps_per_second"} <= set(
        result.metrics
    )
    assert result.model_id == "tunix-rt/char-transformer-L1-W32"
    assert result.dataset.train_rows == 256 and len(result.dataset.sha256) == 64
    assert result.devices == [str(d) for d in jax.devices()]
    assert TrainerConfig.model_validate(result.config) == tiny_config()
    assert TrainResult.model_validate_json(result.model_dump_json()) == result


def test_same_config_same_machine_gives_identical_results(twice: tuple[Run, Run]) -> None:
    a, b = twice[0].result, twice[1].result
    assert a.primary_score == b.primary_score
    assert [r.output for r in a.eval_rows] == [r.output for r in b.eval_rows]
    assert [h["loss"] for h in a.history] == [h["loss"] for h in b.history]


def test_loss_decreases(twice: tuple[Run, Run]) -> None:
    losses = [r["loss"] for r in twice[0].reports]
    assert losses[-1] < 0.7 * losses[0]
    assert losses == sorted(losses, reverse=True)


def test_a_different_seed_trains_a_different_model(twice: tuple[Run, Run]) -> None:
    other = run_trial(tiny_config(seed=1), log=lambda line: None)
    assert other.history[-1]["loss"] != twice[0].result.history[-1]["loss"]


class Stop(Exception):
    pass


def test_checkpoint_resume_matches_an_uninterrupted_run(tmp_path: Path) -> None:
    config = tiny_config(checkpointEvery=10, eval={"evalEvery": 0})
    straight = run_trial(config, checkpoint_dir=str(tmp_path / "a"), log=lambda line: None)

    def stop_at_10(metrics: dict[str, float]) -> None:
        if metrics["step"] == 10:
            raise Stop  # like a scheduler stopping the trial right after its report

    with pytest.raises(Stop):
        run_trial(config, report=stop_at_10, checkpoint_dir=str(tmp_path / "b"), log=lambda _: None)
    lines: list[str] = []
    resumed = run_trial(config, checkpoint_dir=str(tmp_path / "b"), log=lines.append)
    assert any("resumed" in line and "step 10" in line for line in lines)
    assert resumed.primary_score == straight.primary_score
    assert resumed.metrics["loss"] == straight.metrics["loss"]  # bit-identical training
    assert [r.output for r in resumed.eval_rows] == [r.output for r in straight.eval_rows]

    def curve(result: TrainResult) -> list[tuple[float, float]]:
        return [(h["step"], h["loss"]) for h in result.history]

    assert curve(resumed) == curve(straight)
    again = run_trial(config, checkpoint_dir=str(tmp_path / "b"), log=lambda _: None)
    assert again.metrics["loss"] == straight.metrics["loss"]  # finished run: eval only


def test_checkpoint_of_a_different_model_is_refused(tmp_path: Path) -> None:
    run_trial(tiny_config(maxSteps=5), checkpoint_dir=str(tmp_path), log=lambda _: None)
    with pytest.raises(ValueError, match="different model"):
        run_trial(
            tiny_config(maxSteps=5, model={"width": 64}),
            checkpoint_dir=str(tmp_path),
            log=lambda _: None,
        )


def test_batches_are_a_pure_function_of_seed_and_step() -> None:
    order = BatchOrder(rows=10, batch_size=4, seed=7)
    first_epoch = [order(s) for s in range(2)]
    assert sorted(set(first_epoch[0]) | set(first_epoch[1])) == sorted(
        list(first_epoch[0]) + list(first_epoch[1])
    )  # no repeats inside an epoch
    assert (BatchOrder(10, 4, 7)(5) == order(5)).all()
    assert not (BatchOrder(10, 4, 8)(0) == order(0)).all()


def test_batch_size_must_split_over_the_devices() -> None:
    cpu = jax.devices()[0]
    with pytest.raises(ValueError, match=r"batchSize 3 .* multiple of 2"):
        data_mesh(3, devices=[cpu, cpu])


def test_config_loading_accepts_both_spellings_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("learningRate: 0.001\nmodel:\n  width: 64\n", encoding="utf-8")
    config = load_trainer_config(path, ["learning_rate=2e-3", "model.layers=3", "eval.evalEvery=7"])
    assert config.learning_rate == 2e-3
    assert (config.model.width, config.model.layers, config.eval.eval_every) == (64, 3, 7)
    assert load_trainer_config({"max_steps": 9}).max_steps == 9
    with pytest.raises(ValueError, match="KEY=VALUE"):
        load_trainer_config(None, ["learningRate"])


def test_module_entry_point_writes_the_result(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(tiny_config().to_wire()), encoding="utf-8")
    out = tmp_path / "out" / "result.json"
    assert main(["--config", str(path), "--set", "maxSteps=6", "--output", str(out)]) == 0
    result = TrainResult.model_validate_json(out.read_text(encoding="utf-8"))
    assert result.steps == 6
    assert "primary_score=" in capsys.readouterr().out
    assert main(["--config", str(path), "--set", "batchSize=0"]) == 2
    assert "batchSize" in capsys.readouterr().err


@pytest.mark.slow
def test_data_parallel_over_two_devices(tmp_path: Path) -> None:
    """Two forced host devices: the batch is split over a 2-device mesh; an odd batch
    size is refused with a message naming batchSize."""
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(tiny_config(maxSteps=6).to_wire()), encoding="utf-8")
    env = dict(os.environ)
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONPATH"] = str(ROOT / "operator")
    cmd = [sys.executable, "-m", "tunix_rt.train", "--config", str(path)]
    out = tmp_path / "r.json"
    done = subprocess.run([*cmd, "--output", str(out)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    result = TrainResult.model_validate_json(out.read_text(encoding="utf-8"))
    assert len(result.devices) == 2
    assert result.primary_score is not None
    odd = subprocess.run([*cmd, "--set", "batchSize=15"], env=env, capture_output=True, text=True)
    assert odd.returncode == 2
    assert "batchSize 15" in odd.stderr and "multiple of 2" in odd.stderr
