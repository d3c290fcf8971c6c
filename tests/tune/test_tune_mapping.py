"""Unit tests of the spec -> Ray Tune mapping and of the driver's bookkeeping (no Ray run)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from optuna.samplers import TPESampler
from ray import tune
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, MedianStoppingRule
from ray.tune.search import BasicVariantGenerator, ConcurrencyLimiter
from ray.tune.search.sample import Categorical, Float, Integer, LogUniform, Uniform

from tunix_rt.api.sweep import SweepSpec
from tunix_rt.api.trial import TrialResult, TrialState
from tunix_rt.contract.exits import ExitCode
from tunix_rt.contract.layout import SweepTarget, read_trial
from tunix_rt.storage import Store
from tunix_rt.tune import command, hooks, mapping, resume
from tunix_rt.tune.records import numeric_metrics
from tunix_rt.tune.session import SweepRun, experiment_fs, experiment_root
from tunix_rt.tune.trainable import COMPILE_CACHE_DIR, Reporter, limit_threads, use_compile_cache

LR = {"type": "loguniform", "low": 1e-4, "high": 3e-2}


def spec(**fields: Any) -> SweepSpec:
    body: dict[str, Any] = {"searchSpace": {"learningRate": LR}}
    body.update(fields)
    return SweepSpec.model_validate(body)


def test_search_space_distributions() -> None:
    space = mapping.search_space(
        spec(
            searchSpace={
                "learningRate": LR,
                "weightDecay": {"type": "uniform", "low": 0.0, "high": 0.1},
                "warmupSteps": {"type": "randint", "low": 0, "high": 100},
                "batchSize": {"type": "choice", "values": [16, 32]},
                "seed": {"type": "grid", "values": [0, 1]},
            },
            maxTrials=4,
        )
    )
    assert set(space) == {"learningRate", "weightDecay", "warmupSteps", "batchSize", "seed"}
    lr = space["learningRate"]
    assert isinstance(lr, Float) and isinstance(lr.get_sampler(), LogUniform)
    assert (lr.lower, lr.upper) == (1e-4, 3e-2)
    wd = space["weightDecay"]
    assert isinstance(wd, Float) and isinstance(wd.get_sampler(), Uniform)
    assert isinstance(space["warmupSteps"], Integer)
    assert (space["warmupSteps"].lower, space["warmupSteps"].upper) == (0, 100)
    assert isinstance(space["batchSize"], Categorical)
    assert space["batchSize"].categories == [16, 32]
    assert space["seed"] == {"grid_search": [0, 1]}


def test_grid_algorithm_enumerates_choices() -> None:
    s = spec(
        algorithm="grid",
        maxTrials=6,
        searchSpace={"batchSize": {"type": "choice", "values": [16, 32, 64]}},
    )
    assert mapping.search_space(s) == {"batchSize": {"grid_search": [16, 32, 64]}}
    config = mapping.tune_config(s)
    assert config.num_samples == 2  # the 3-point grid twice: 6 trials
    assert isinstance(config.search_alg, hooks.BudgetGate)  # the budget's gate in front
    assert isinstance(config.search_alg.searcher, BasicVariantGenerator)


def test_random_search_is_seeded_and_limited() -> None:
    alg = mapping.search_algorithm(spec(seed=7, maxTrials=6, maxConcurrentTrials=3))
    assert isinstance(alg, BasicVariantGenerator)
    assert alg.max_concurrent == 3
    assert alg._constant_grid_search is True


def sample_configs(seed: int) -> list[dict[str, Any]]:
    s = spec(seed=seed, maxTrials=3)
    alg = mapping.search_algorithm(s)
    assert isinstance(alg, BasicVariantGenerator)
    tune.register_trainable("tunix_rt_mapping_test", lambda config: None)
    experiment = {
        "run": "tunix_rt_mapping_test",
        "config": mapping.search_space(s),
        "num_samples": 3,
    }
    alg.add_configurations({"t": experiment})
    out = []
    for _ in range(3):
        trial = alg.next_trial()
        out.append(dict(trial.config))
        alg.on_trial_complete(trial.trial_id)  # one at a time (maxConcurrentTrials: 1)
    return out


def test_same_seed_same_trials() -> None:
    first, again, other = sample_configs(1), sample_configs(1), sample_configs(2)
    assert first == again
    assert first != other
    assert len({c["learningRate"] for c in first}) == 3
    assert all(1e-4 <= c["learningRate"] <= 3e-2 for c in first)


def test_tpe_is_optuna_with_a_seed_behind_a_concurrency_limit() -> None:
    alg = mapping.search_algorithm(
        spec(algorithm="tpe", seed=3, maxTrials=8, maxConcurrentTrials=2)
    )
    assert isinstance(alg, ConcurrencyLimiter)
    assert alg.max_concurrent == 2
    searcher = alg.searcher
    assert isinstance(searcher, mapping._OptunaSearch)
    assert searcher.metric == "primary_score" and searcher.mode == "max"
    sampler = searcher._sampler
    assert isinstance(sampler, TPESampler)
    assert sampler._n_startup_trials == 4


def test_tpe_ignores_reports_without_the_objective() -> None:
    searcher = mapping._OptunaSearch(metric="primary_score", mode="max", sampler=TPESampler(seed=0))
    assert searcher.set_search_properties(None, None, {"learningRate": tune.loguniform(1e-4, 1e-2)})
    config = searcher.suggest("t1")
    assert 1e-4 <= config["learningRate"] <= 1e-2
    searcher.on_trial_result("t1", {"loss": 1.0, "step": 10, "training_iteration": 1})
    searcher.on_trial_result("t1", {"loss": 0.5, "primary_score": 0.2, "training_iteration": 2})
    searcher.on_trial_complete("t1", {"loss": 0.4, "primary_score": 0.3, "training_iteration": 3})
    assert searcher._ot_study.trials[0].value == 0.3


def test_schedulers() -> None:
    assert isinstance(mapping.scheduler(spec()), FIFOScheduler)
    asha = mapping.scheduler(
        spec(
            scheduler={"type": "asha", "gracePeriod": 20, "reductionFactor": 2},
            budget={"smokeSteps": 160},
        )
    )
    assert isinstance(asha, ASHAScheduler)
    # Rungs strictly below smokeSteps: a trial that reaches the end keeps its final eval.
    assert asha._time_attr == "step" and asha._max_t == 159
    assert asha._reduction_factor == 2 and asha._metric == "loss" and asha._mode == "min"
    assert asha._stop_last_trials is False
    assert [milestone for milestone, _ in asha._brackets[0]._rungs] == [80, 40, 20]
    median = mapping.scheduler(
        spec(
            scheduler={
                "type": "median",
                "gracePeriod": 30,
                "metric": "primary_score",
                "mode": "max",
            },
            trainer={"eval": {"evalEvery": 50}},  # primary_score while trials train
        )
    )
    assert isinstance(median, MedianStoppingRule)
    assert median._time_attr == "step" and median._grace_period == 30
    assert median._metric == "primary_score" and median._mode == "max"


def test_resources_per_trial() -> None:
    assert mapping.trial_resources(spec()) == {"cpu": 1.0}
    res = mapping.trial_resources(spec(resources={"cpu": 4, "gpu": 0.5, "memory": "2Gi", "tpu": 4}))
    assert res == {"cpu": 4.0, "gpu": 0.5, "memory": float(2 * 1024**3), "TPU": 4.0}


def test_tune_config_samples_and_budget() -> None:
    config = mapping.tune_config(spec(maxTrials=9, budget={"sweepTimeoutSeconds": 600}))
    assert config.num_samples == 9
    assert config.time_budget_s == 600
    assert config.metric is None and config.mode is None  # on the searcher and scheduler
    assert config.max_concurrent_trials is None  # inside the search algorithm
    assert mapping.trial_name(SimpleNamespace(trial_id="abc_00001")) == "abc_00001"


@pytest.mark.parametrize(
    ("fields", "reused"),
    [
        ({}, True),
        ({"resources": {"gpu": 1}}, True),
        ({"trainer": {"backend": "tunix-sft", "model": {"name": "gemma3-tiny"}}}, False),
        ({"trainer": {"backend": "python", "entrypoint": "pkg.mod:fn"}}, False),
        ({"resources": {"cpu": 1, "workers": 2}}, False),
    ],
)
def test_worker_processes_are_reused_for_builtin_single_host_trials(
    fields: dict[str, Any], reused: bool
) -> None:
    """Built-in trials keep JAX, the dataset and the compiled step between trials; a
    Tunix model, a user's module state or a Ray Train run per trial do not carry over."""
    assert mapping.tune_config(spec(**fields)).reuse_actors is reused


def test_parse_args_contract() -> None:
    args = command.parse_args(
        [
            "--spec-b64",
            "e30=",
            "--storage",
            "s3://b/p",
            "--namespace",
            "ns",
            "--name",
            "n",
            "--address",
            "auto",
        ]
    )
    assert (args.spec_b64, args.storage, args.namespace, args.name, args.address) == (
        "e30=",
        "s3://b/p",
        "ns",
        "n",
        "auto",
    )
    with pytest.raises(SystemExit):
        command.parse_args(["--storage", "file://x"])  # --spec or --spec-b64 is required


def test_main_rejects_an_invalid_spec_without_starting_ray(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "kind: Sweep\nmetadata: {name: b}\nspec:\n  searchSpace:\n"
        "    learningRate: {type: uniform, low: 1, high: 0.5}\n"
    )
    assert command.main(["--spec", str(bad)]) == ExitCode.INVALID
    assert "spec.searchSpace.learningRate.low" in capsys.readouterr().err
    bare = tmp_path / "bare.yaml"
    bare.write_text("searchSpace:\n  learningRate: {type: uniform, low: 0.001, high: 0.01}\n")
    assert command.main(["--spec", str(bare)]) == ExitCode.INVALID
    assert "--name" in capsys.readouterr().err


def test_ray_state_lives_under_the_sweeps_prefix_in_any_store(tmp_path: Path) -> None:
    target = SweepTarget("s3://bucket/prefix", "ns", "sw")
    run = SweepRun(spec=spec(), name="sw", namespace="ns")
    remote = SimpleNamespace(scheme="s3", root="bucket/prefix")
    assert experiment_root(run, remote, target) == "bucket/prefix/ns/sw"  # type: ignore[arg-type]
    elsewhere = SweepRun(spec=spec(), name="sw", namespace="ns", ray_storage="/r")
    assert experiment_root(elsewhere, remote, target) == "/r"  # type: ignore[arg-type]
    assert experiment_fs(elsewhere, remote) is None  # type: ignore[arg-type]
    local = Store(f"file://{tmp_path}")
    assert (
        experiment_root(run, local, SweepTarget(local.uri, "local", "sw")) == f"{tmp_path}/local/sw"
    )


# ----------------------------------------------------------------------------- records


def fake_trial(
    trial_id: str, last_result: dict[str, Any] | None = None, status: str = "RUNNING"
) -> Any:
    return SimpleNamespace(
        trial_id=trial_id,
        last_result=last_result or {},
        config={"learningRate": 0.01},
        status=status,
        get_error=lambda: RuntimeError("worker died"),
    )


def test_monitor_records_stopped_and_failed_trials(tmp_path: Path) -> None:
    store = Store(f"file://{tmp_path}")
    target = SweepTarget(store.uri, "local", "sw")
    monitor = hooks.SweepMonitor(target, max_failed_trials=1, trial_timeout_s=60, echo=False)
    running = TrialResult(
        trial_id="a",
        sweep="sw",
        namespace="local",
        params={"learningRate": 0.01},
        state=TrialState.RUNNING,
    )
    store.write_json(target.layout.trial_key("a"), running)
    last = {
        "step": 40,
        "loss": 0.7,
        "primary_score": 0.25,
        "time_total_s": 12.0,
        "training_iteration": 4,
    }
    monitor.on_trial_complete(0, [], fake_trial("a", last))
    stopped = read_trial(store, target.layout.trial_key("a"))
    assert stopped is not None and stopped.state is TrialState.STOPPED
    assert (stopped.steps, stopped.primary_score, stopped.wall_seconds) == (40, 0.25, 12.0)
    assert stopped.metrics == {"step": 40.0, "loss": 0.7, "primary_score": 0.25}
    assert stopped.curve == [stopped.metrics]  # the report it was stopped on is kept

    done = running.model_copy(
        update={"trial_id": "b", "state": TrialState.SUCCEEDED, "primary_score": 0.5}
    )
    store.write_json(target.layout.trial_key("b"), done)
    monitor.on_trial_complete(0, [], fake_trial("b", {"step": 100}))
    assert read_trial(store, target.layout.trial_key("b")) == done  # the trial's own record wins

    monitor.on_trial_complete(0, [], fake_trial("never-started"))
    assert not store.exists(target.layout.trial_key("never-started"))

    assert not monitor.stop_all()
    monitor.on_trial_error(0, [], fake_trial("c"))
    failed = read_trial(store, target.layout.trial_key("c"))
    assert (
        failed is not None and failed.state is TrialState.FAILED and failed.error == "worker died"
    )
    assert not monitor.stop_all()  # 1 failure is within maxFailedTrials=1
    monitor.on_step_begin(0, [fake_trial("d", status="ERROR")])  # restored errored trial
    assert monitor.stop_all()

    assert monitor("a", {"time_total_s": 61.0}) and not monitor("a", {"time_total_s": 5.0})
    import pickle

    clone = pickle.loads(pickle.dumps(monitor))
    assert clone.failed == monitor.failed and clone._files is None


def test_a_trial_stopped_after_its_last_step_and_score_succeeded(tmp_path: Path) -> None:
    """The goal (or a budget) met at a trial's last report stops it in Tune; having run
    every step and been scored, it is Succeeded. One stopped before its last step is
    Stopped, and only a full trial estimates the next one's hours."""
    import time

    from tunix_rt.tune.budget import SweepLimits
    from tunix_rt.tune.context import SessionContext
    from tunix_rt.tune.durable import SessionLedger
    from tunix_rt.tune.sweep_log import SweepLog

    store = Store(f"file://{tmp_path}")
    target = SweepTarget(store.uri, "local", "sw")
    files = target.files(store)
    sweep = spec(budget={"smokeSteps": 40}, objective={"goal": 0.9})
    limits = SweepLimits.seeded(sweep, time.monotonic(), [], 0.0)
    monitor = hooks.SweepMonitor(target, max_failed_trials=0, echo=False)
    monitor.context = SessionContext(
        SweepLog(files, echo=False), limits, SessionLedger(files, every_s=5.0)
    )
    for trial_id, step in (("full", 40), ("cut", 20)):
        running = TrialResult(
            trial_id=trial_id, sweep="sw", namespace="local", state=TrialState.RUNNING
        )
        store.write_json(target.layout.trial_key(trial_id), running)
        limits.trial_started(trial_id, time.monotonic())
        last = {"step": step, "primary_score": 1.0, "time_total_s": 3.0}
        monitor.on_trial_complete(0, [], fake_trial(trial_id, last))
    full = read_trial(store, target.layout.trial_key("full"))
    cut = read_trial(store, target.layout.trial_key("cut"))
    assert full is not None and full.state is TrialState.SUCCEEDED and full.error is None
    assert (full.steps, full.primary_score) == (40, 1.0)
    assert cut is not None and cut.state is TrialState.STOPPED and cut.steps == 20
    assert len(limits.full_trials) == 1


def test_numeric_metrics_drop_tune_bookkeeping() -> None:
    result = {
        "loss": 1.5,
        "step": 3,
        "training_iteration": 3,
        "time_total_s": 1.0,
        "done": True,
        "trial_id": "x",
        "config/lr": 0.1,
        "note": "x",
        "nan": float("nan"),
    }
    assert numeric_metrics(result) == {"loss": 1.5, "step": 3.0}


def test_reporter_carries_metrics_forward_and_writes_sparingly() -> None:
    writes: list[TrialResult] = []
    reported: list[dict[str, Any]] = []
    record = TrialResult(trial_id="t", sweep="s", state=TrialState.RUNNING)
    reporter = Reporter(record, writes.append, reported.append, every_s=3600)
    reporter({"step": 10, "loss": 2.0})
    reporter({"step": 20, "loss": 1.5})
    assert writes == []  # not yet: no eval point, throttled
    reporter({"step": 20, "primary_score": 0.25})
    reporter({"step": 30, "loss": 1.2})
    assert reported[-1] == {"step": 30, "loss": 1.2, "primary_score": 0.25}
    assert all("loss" in r for r in reported)
    assert isinstance(reported[-1]["step"], int)
    assert len(writes) == 1 and writes[0].primary_score == 0.25 and writes[0].steps == 20


def test_limit_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OMP_NUM_THREADS", "XLA_FLAGS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delitem(sys.modules, "jax", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    limit_threads(1)
    assert os.environ["OMP_NUM_THREADS"] == "1"
    assert "JAX_PLATFORMS" not in os.environ or os.environ["JAX_PLATFORMS"] != "cpu"
    # XLA's flags are the numerics pins' (tests/train/test_numerics.py), the same for
    # every trial size: Eigen's thread count would change the numbers.
    assert "XLA_FLAGS" not in os.environ


def test_fresh_start_archives_earlier_results(tmp_path: Path) -> None:
    store = Store(f"file://{tmp_path}")
    target = SweepTarget(store.uri, "local", "sw")
    old = TrialResult(
        trial_id="old_00000", sweep="sw", namespace="local", state=TrialState.SUCCEEDED
    )
    store.write_json(target.layout.trial_key("old_00000"), old)
    store.write_json(target.layout.summary_key, {"sweep": "sw"})
    store.write_text("local/sw/ray/experiment_state.json", "{}")
    store.write_text("local/sw/logs/driver.log", "log")
    said: list[str] = []
    resume.archive_previous(target.files(store), said.append)
    assert not store.exists(target.layout.trial_key("old_00000"))
    assert not store.exists(target.layout.summary_key)
    assert store.exists("local/sw/ray/experiment_state.json")  # Ray's state and logs stay
    assert store.exists("local/sw/logs/driver.log")
    archived = [k for k in store.list("local/sw/archive/") if k.endswith("old_00000.json")]
    assert len(archived) == 1 and read_trial(store, archived[0]) == old
    assert said and "moved 2 file(s)" in said[0]
    said.clear()
    resume.archive_previous(target.files(store), said.append)  # nothing left to move
    assert said == []


def test_compile_cache_is_on_unless_the_environment_says_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
    monkeypatch.delenv("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", raising=False)
    use_compile_cache()
    assert os.environ["JAX_COMPILATION_CACHE_DIR"] == COMPILE_CACHE_DIR
    assert float(os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"]) > 0
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", "")  # off, as documented
    use_compile_cache()
    assert os.environ["JAX_COMPILATION_CACHE_DIR"] == ""
