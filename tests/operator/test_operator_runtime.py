"""Running the operator: import weight, metrics and liveness endpoints, namespaces, CLI,
configuration, and the pure helpers behind the handlers."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError
from typer.testing import CliRunner

from support import operator as op
from support.imports import loaded_by
from support.net import free_ports
from tunix_rt.api.common import Phase
from tunix_rt.api.errors import ManifestError, describe
from tunix_rt.api.sweep import SweepSpec
from tunix_rt.api.trainer import TrainerConfig
from tunix_rt.api.trial import SweepResult, TrialResult, TrialState
from tunix_rt.cli.operator import app, build_config
from tunix_rt.contract.exits import exit_code_in
from tunix_rt.contract.phases import judge_sweep
from tunix_rt.controller import ConfigError, Metrics, OperatorConfig
from tunix_rt.controller.status import set_condition
from tunix_rt.controller.sweep_status import newly_finished, trial_fields
from tunix_rt.storage import Store


def http_get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return int(resp.status), resp.read().decode()


def test_operator_never_imports_ml_stacks() -> None:
    modules = ["tunix_rt.controller", "tunix_rt.cli.operator", "tunix_rt.kuberay.client"]
    assert loaded_by(modules) == []


async def test_metrics_endpoint_serves_prometheus_text() -> None:
    metrics = Metrics()
    metrics.observe_phase("sweep", "ml", "a", "Running")
    metrics.observe_phase("sweep", "ml", "b", "Running")
    metrics.observe_phase("sweep", "ml", "b", "Succeeded")
    metrics.observe_phase("rehearsal", "ml", "r", "Pending")
    metrics.trials_finished("ml", 3)
    with metrics.time("sweep", "follow"):
        pass
    port = metrics.serve(0, "127.0.0.1")
    try:
        status, text = await asyncio.to_thread(http_get, f"http://127.0.0.1:{port}/metrics")
    finally:
        metrics.stop()
    assert status == 200
    assert 'tunixrt_sweeps{phase="Running"} 1.0' in text
    assert 'tunixrt_sweeps{phase="Succeeded"} 1.0' in text
    assert 'tunixrt_rehearsals{phase="Pending"} 1.0' in text
    assert 'tunixrt_trials_completed_total{namespace="ml"} 3.0' in text
    assert 'tunixrt_reconcile_duration_seconds_count{handler="follow",kind="sweep"} 1.0' in text
    metrics.forget("sweep", "ml", "a")
    assert 'tunixrt_sweeps{phase="Running"} 0.0' in metrics.render().decode()


async def test_liveness_and_metrics_of_a_running_operator(
    api: op.Api, config: OperatorConfig, start_operator: op.StartOperator
) -> None:
    live, prom = free_ports(2)
    await start_operator(config.replace(
        liveness_endpoint=f"http://127.0.0.1:{live}/healthz", metrics_port=prom,
        metrics_addr="127.0.0.1"))  # fmt: skip
    await api.create(op.SWEEPS, op.sweep_body("probe"))
    await op.wait_for(lambda: api.get(op.RAYJOBS, "ml", "sweep-probe"), what="the RayJob")

    async def healthy() -> dict[str, Any] | None:
        try:
            status, text = await asyncio.to_thread(http_get, f"http://127.0.0.1:{live}/healthz")
        except OSError:
            return None
        payload = json.loads(text)
        followed = payload.get("followed") or {}
        return (
            payload
            if status == 200 and followed.get('tunixrt_sweeps{phase="Pending"}') == 1.0
            else None
        )

    await op.wait_for(healthy, what="/healthz reporting the followed sweep")

    # The counter moves just after the API server answers the create: wait for it.
    async def counted() -> bool:
        status, text = await asyncio.to_thread(http_get, f"http://127.0.0.1:{prom}/metrics")
        return status == 200 and 'tunixrt_rayjobs_created_total{kind="sweep"} 1.0' in text

    await op.wait_for(counted, what="the RayJob counted in /metrics")


async def test_namespace_scoped_operator_ignores_other_namespaces(
    api: op.Api, config: OperatorConfig, start_operator: op.StartOperator
) -> None:
    await start_operator(config.replace(namespaces=("team-a",), scan_namespaces=False))
    await api.create(op.SWEEPS, op.sweep_body("other", namespace="team-b"))
    await api.create(op.SWEEPS, op.sweep_body("mine", namespace="team-a"))
    await op.wait_for(lambda: api.get(op.RAYJOBS, "team-a", "sweep-mine"), what="team-a's RayJob")
    await asyncio.sleep(1.0)  # several poll intervals
    assert await api.get(op.RAYJOBS, "team-b", "sweep-other") is None
    other = await api.get(op.SWEEPS, "team-b", "other")
    assert other is not None and "status" not in other


# ----------------------------------------------------------------------------- CLI, config


def test_cli_help_lists_the_options() -> None:
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for option in (
        "--namespace",
        "--all-namespaces",
        "--peering",
        "--standalone",
        "--liveness",
        "--metrics-port",
        "--verbose",
    ):
        assert option in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--namespace", "a", "--all-namespaces"], "either --namespace or --all-namespaces"),
        (["--peering", "p", "--standalone"], "either --peering NAME or --standalone"),
        (["--metrics-port", "70000"], "--metrics-port 70000"),
    ],
)
def test_cli_rejects_conflicting_options(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert message in result.output


def test_options_override_the_environment() -> None:
    base = OperatorConfig.from_env(
        {"TUNIX_RT_NAMESPACES": "x,y", "TUNIX_RT_PEERING": "p", "TUNIX_RT_METRICS_PORT": "9100"}
    )
    assert base.namespaces == ("x", "y") and base.peering == "p" and base.metrics_port == 9100
    config = build_config(
        namespaces=["ml"],
        all_namespaces=False,
        peering=None,
        standalone=True,
        liveness="",
        metrics_port=0,
        base=base,
    )
    assert config.namespaces == ("ml",) and not config.clusterwide
    assert config.peering is None and config.liveness_endpoint is None
    assert config.metrics_port == 0
    wide = build_config(
        namespaces=[],
        all_namespaces=True,
        peering="tunix",
        standalone=False,
        liveness=None,
        metrics_port=None,
        base=base,
    )
    assert wide.clusterwide and wide.peering == "tunix" and wide.metrics_port == 9100


def test_config_from_env() -> None:
    env = {
        "TUNIX_RT_IMAGE_CPU": "r/t:1-cpu",
        "TUNIX_RT_IMAGE_TPU": "r/t:1-tpu",
        "TUNIX_RT_DEFAULT_STORAGE": "s3://bucket/runs",
        "TUNIX_RT_STORAGE_SECRET": "creds",
        "TUNIX_RT_POLL_SECONDS": "2.5",
        "TUNIX_RT_DEFAULT_POOLS": json.dumps(
            [{"name": "gpu", "accelerator": "gpu", "gpusPerPod": 1}]
        ),
    }
    config = OperatorConfig.from_env(env)
    options = config.build_options()
    assert options.image_cpu == "r/t:1-cpu" and options.image_tpu == "r/t:1-tpu"
    assert options.image_gpu.endswith("-cuda")  # default kept
    # Set but empty (the chart without that image): none, never the built-in guess.
    assert OperatorConfig.from_env({"TUNIX_RT_IMAGE_TPU": ""}).image_tpu == ""
    assert options.storage_secret == "creds" and config.poll_seconds == 2.5
    filled = config.with_defaults({"searchSpace": {}})
    assert filled["storage"] == "s3://bucket/runs"
    assert filled["cluster"]["pools"][0]["name"] == "gpu"
    explicit = config.with_defaults({"storage": "gs://b/x", "cluster": {"pools": [{"name": "c"}]}})
    assert explicit["storage"] == "gs://b/x" and explicit["cluster"]["pools"] == [{"name": "c"}]
    assert OperatorConfig.from_env({}).clusterwide


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"TUNIX_RT_POLL_SECONDS": "soon"}, "TUNIX_RT_POLL_SECONDS"),
        ({"TUNIX_RT_DEFAULT_STORAGE": "/data"}, "TUNIX_RT_DEFAULT_STORAGE"),
        ({"TUNIX_RT_PEERING_LIFETIME": "5"}, "TUNIX_RT_PEERING_LIFETIME='5' must be >= 11"),
        ({"TUNIX_RT_DEFAULT_POOLS": '[{"accelerator": "gpu"}]'}, "TUNIX_RT_DEFAULT_POOLS[0]"),
        ({"TUNIX_RT_DEFAULT_POOLS": "{"}, "TUNIX_RT_DEFAULT_POOLS is not JSON"),
    ],
)
def test_bad_environment_names_the_variable(env: dict[str, str], words: str) -> None:
    with pytest.raises(ConfigError, match=words.replace("[", r"\[").replace("]", r"\]")):
        OperatorConfig.from_env(env)


# ----------------------------------------------------------------------------- pure helpers


def test_conditions_keep_their_transition_time() -> None:
    conds = set_condition([], "Ready", False, "Pending", "wait", 1)
    first = conds[0]["lastTransitionTime"]
    conds[0]["lastTransitionTime"] = "2020-01-01T00:00:00Z"
    same = set_condition(conds, "Ready", False, "Running", "still not ready", 2)
    assert same[0]["lastTransitionTime"] == "2020-01-01T00:00:00Z"
    assert same[0]["reason"] == "Running" and same[0]["observedGeneration"] == 2
    flipped = set_condition(same, "Ready", True, "Succeeded", "done", 2)
    assert flipped[0]["lastTransitionTime"] != "2020-01-01T00:00:00Z"
    assert first and len(flipped) == 1


def test_validation_errors_name_wire_fields() -> None:
    with pytest.raises(ValidationError) as info:
        SweepSpec.model_validate({
            "searchSpace": {"learningRate": {"type": "uniform", "low": 1, "high": 2}},
            "cluster": {"pools": [{"name": "g", "accelerator": "gpu"}]},
        })  # fmt: skip
    text = describe(info.value)
    assert "spec.cluster.pools[0].gpusPerPod: a gpu pool needs gpusPerPod >= 1" in text


def _trial(tid: str, state: TrialState, score: float | None = None) -> TrialResult:
    return TrialResult(trial_id=tid, sweep="s", state=state, primary_score=score)


@pytest.mark.parametrize(
    ("job", "trials", "summary", "waited", "phase", "reason"),
    [
        ({}, [], False, 0, Phase.PENDING, "RayClusterStarting"),
        ({"jobDeploymentStatus": "Suspended"}, [], False, 0, Phase.PENDING, "RayJobSuspended"),
        (
            {"jobDeploymentStatus": "Running", "jobStatus": "PENDING"},
            [],
            False,
            0,
            Phase.RUNNING,
            "TrialsRunning",
        ),
        ({"jobStatus": "SUCCEEDED"}, [], True, 0, Phase.SUCCEEDED, "Succeeded"),
        ({"jobStatus": "SUCCEEDED"}, [], False, 0, Phase.RUNNING, "WaitingForSummary"),
        ({"jobStatus": "SUCCEEDED"}, [], False, 99, Phase.FAILED, "NoSummary"),
        ({"jobStatus": "FAILED", "message": "boom"}, [], False, 0, Phase.FAILED, "RayJobFailed"),
        (
            {"jobDeploymentStatus": "Failed", "reason": "DeadlineExceeded"},
            [],
            False,
            0,
            Phase.FAILED,
            "DeadlineExceeded",
        ),
        (None, [], True, 0, Phase.SUCCEEDED, "Succeeded"),
        (None, [], False, 0, Phase.FAILED, "RayJobLost"),
    ],
)
def test_sweep_verdicts(
    job: dict[str, Any] | None,
    trials: list[TrialResult],
    summary: bool,
    waited: float,
    phase: Phase,
    reason: str,
) -> None:
    result = SweepResult(sweep="s") if summary else None
    rayjob = None if job is None else {"status": job}
    verdict = judge_sweep(rayjob, "sweep-s", result, bool(trials), waited, grace=60)
    assert (verdict.phase, verdict.reason) == (phase, reason)


def test_trial_fields_count_and_rank() -> None:
    spec = SweepSpec.model_validate({
        "searchSpace": {"learningRate": {"type": "loguniform", "low": 1e-4, "high": 1e-2}},
        "maxTrials": 5, "objective": {"mode": "max"}})  # fmt: skip
    trials = [
        _trial("a", TrialState.SUCCEEDED, 0.2),
        _trial("b", TrialState.FAILED),
        _trial("c", TrialState.STOPPED, 0.9),
        _trial("d", TrialState.RUNNING),
    ]
    fields = trial_fields(trials, spec, None)
    assert (fields["trialsCompleted"], fields["trialsFailed"], fields["trialsRunning"]) == (
        2, 1, 1)  # fmt: skip
    assert fields["trialsProgress"] == "3/5" and fields["trialsTotal"] == 5
    assert fields["bestTrial"]["id"] == "c" and fields["primaryScore"] == 0.9


def test_overrides_name_unknown_fields() -> None:
    base = TrainerConfig()
    out = base.with_overrides({"max_steps": 10, "dataset": {"evalSize": 8}})
    assert out.max_steps == 10 and out.dataset.eval_size == 8
    with pytest.raises(ManifestError, match=r"^spec\.overrides\.epochs: "):
        base.with_overrides({"epochs": 3})
    with pytest.raises(ManifestError, match=r"^spec\.overrides\.model\.depth: "):
        base.with_overrides({"model": {"depth": 3}})


async def test_cli_runs_the_operator_until_sigterm(
    api: op.Api, apiserver: Any, tmp_path: Path, store: Store
) -> None:
    """`tunix-rt operator` as a process: kubeconfig login, liveness, metrics, a Sweep served,
    a clean exit on SIGTERM."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "kmock",
        "clusters": [{"name": "kmock", "cluster": {"server": str(apiserver.url).rstrip("/")}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": "u"}}],
    }))  # fmt: skip
    live, prom = free_ports(2)
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "TUNIX_RT_DEFAULT_STORAGE": store.uri,
           "TUNIX_RT_POLL_SECONDS": "0.2"}  # fmt: skip
    env.pop("KUBERNETES_SERVICE_HOST", None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from tunix_rt.cli import main; main()",
        "operator", "--all-namespaces", "--standalone",
        "--liveness", f"http://127.0.0.1:{live}/healthz", "--metrics-port", str(prom),
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:

        async def healthy() -> bool:
            try:
                status, _ = await asyncio.to_thread(http_get, f"http://127.0.0.1:{live}/healthz")
            except OSError:
                return proc.returncode is not None and pytest.fail("the operator exited")
            return status == 200

        await op.wait_for(healthy, timeout=60, what="the operator's /healthz")
        await api.create(op.SWEEPS, op.sweep_body("cli"))
        rayjob = await op.wait_for(
            lambda: api.get(op.RAYJOBS, "ml", "sweep-cli"), what="the RayJob"
        )
        assert f"--storage {store.uri}" in rayjob["spec"]["entrypoint"]
        # The counter moves just after the API server answers the create: wait for it.
        created = 'tunixrt_rayjobs_created_total{kind="sweep"} 1.0'

        async def counted() -> str | None:
            _, text = await asyncio.to_thread(http_get, f"http://127.0.0.1:{prom}/metrics")
            return text if created in text else None

        text = await op.wait_for(counted, timeout=60, what=f"{created!r} in /metrics")
        assert 'tunixrt_rayjobs_created_total{kind="rehearsal"} 1.0' not in text
    except BaseException:
        proc.kill()
        output, _ = await proc.communicate()
        print(output.decode()[-6000:])  # the operator's log, for the failure report
        raise
    proc.send_signal(signal.SIGTERM)
    output, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, output.decode()[-3000:]


def test_kopf_settings_for_peering_and_scope() -> None:
    from tunix_rt.controller import settings

    ha = OperatorConfig(peering="tunix-rt", namespaces=("a", "b"))
    kopf_settings = settings.make_settings(ha)
    assert kopf_settings.peering.name == "tunix-rt" and kopf_settings.peering.mandatory
    assert not kopf_settings.peering.standalone
    assert kopf_settings.persistence.finalizer == "tunixrt.io/finalizer"
    assert kopf_settings.peering.lifetime == 60  # kopf's own default, kept
    quick = OperatorConfig.from_env({"TUNIX_RT_PEERING": "t", "TUNIX_RT_PEERING_LIFETIME": "15"})
    assert settings.make_settings(quick).peering.lifetime == 15
    assert settings.operator_kwargs(ha) == {
        "standalone": False, "peering_name": "tunix-rt", "namespaces": ["a", "b"],
        "liveness_endpoint": "http://0.0.0.0:8080/healthz",
    }  # fmt: skip
    solo = settings.operator_kwargs(OperatorConfig(liveness_endpoint=None))
    assert solo == {"standalone": True, "clusterwide": True, "liveness_endpoint": None}
    assert settings.make_settings(OperatorConfig()).peering.standalone


def test_a_failed_jobs_message_is_rays_first_line_without_the_driver_output() -> None:
    """Ray's message of a failed job carries up to 20,000 characters of driver output (seen
    on the simulated cluster, tests/control_plane/test_run_to_completion.py): the status
    keeps the line that says what happened, with the exit code a retry decision reads."""
    output = "╭────╮\n│ Trial status │\n" + "Traceback (most recent call last):\n" * 500
    message = (
        "Job entrypoint command failed with exit code 1, last available logs (truncated to "
        f"20,000 chars):\n{output}"
    )
    rayjob = {"status": {"jobStatus": "FAILED", "reason": "AppFailed", "message": message}}
    verdict = judge_sweep(rayjob, "sweep-s", None, False, 0, grace=60)
    assert verdict.message == "Job entrypoint command failed with exit code 1"
    assert verdict.reason == "AppFailed"
    assert exit_code_in(verdict.message) == 1
    long_line = {"status": {"jobStatus": "FAILED", "message": "x" * 5000}}
    assert len(judge_sweep(long_line, "sweep-s", None, False, 0, grace=60).message) == 1024


def test_a_trial_is_announced_once_even_from_a_stale_status() -> None:
    """A follow step woken by a RayJob event may hold the status from before the previous
    step's write: the trials that step announced (its memo) get no second Event."""

    def trial(trial_id: str, state: TrialState) -> TrialResult:
        return TrialResult(trial_id=trial_id, sweep="s", namespace="ml", params={}, state=state)

    trials = [trial("t0", TrialState.SUCCEEDED), trial("t1", TrialState.RUNNING)]
    stale = {"trials": [{"id": "t0", "state": "Running"}]}
    assert [t.trial_id for t in newly_finished(stale, trials)] == ["t0"]
    assert newly_finished(stale, trials, announced={"t0"}) == []
    trials.append(trial("t2", TrialState.FAILED))
    assert [t.trial_id for t in newly_finished(stale, trials, {"t0"})] == ["t2"]
