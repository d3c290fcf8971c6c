"""The issue's done-when runs, with the real Tunix stack on CPU (small budgets):

* ``tunix-rt sweep run examples/sweep-tunix-grpo-tiny.yaml``: three ``tunix-grpo``
  trials through Ray Tune in local mode, distinct primary_scores, GRPO rewards in the
  trial metrics, the committed checkpoint's digest in the driver's log;
* the same sweep, shortened, with ``objective: {metric: reward_mean}`` (issue 25 item 4):
  the best trial is the one with the best final reward_mean;
* ``tunix-rt rehearsal run examples/rehearsal-tunix-sft-tiny.yaml``: a LoRA SFT rehearsal
  whose evidence bundle verifies, with the backend and model source in the manifest;
* ``examples/sweep-tunix-dpo-tiny.yaml``, promoted and rehearsed as its header says: three
  ``tunix-dpo`` trials, then the best one's rehearsal with the same score and a bundle
  that verifies.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tunix_rt.api.trial import SweepResult, TrialResult, TrialState
from tunix_rt.api.trial_metrics import METRIC_BOUNDS
from tunix_rt.evidence import schema_errors, verify_zip
from tunix_rt.scoring import compute_primary_score
from tunix_rt.tune.trainable import COMPILE_CACHE_DEFAULTS

pytest.importorskip("tunix", reason="the tunix extra is not installed")

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"


def run_cli(args: list[str], env: dict[str, str], timeout: int) -> subprocess.CompletedProcess[str]:
    """``tunix-rt`` with JAX's persistent compile cache on in every process, as the sweep's
    trial workers have it (``use_compile_cache``): a rehearsal of a trial's config loads
    the programs the trial compiled instead of compiling them again (same executables,
    same numbers)."""
    exe = Path(sys.executable).with_name("tunix-rt")
    return subprocess.run(
        [str(exe), *args],
        cwd=REPO,
        env=COMPILE_CACHE_DEFAULTS | env,  # what env (this process's, copied) sets wins
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_grpo_sweep_of_three_trials(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    storage = tmp_path / "runs"
    started = time.monotonic()
    out = run_cli(
        [
            "sweep",
            "run",
            "examples/sweep-tunix-grpo-tiny.yaml",
            "--no-live",
            "--storage",
            f"file://{storage}",
        ],
        subprocess_env,
        timeout=600,
    )
    wall = time.monotonic() - started
    folder = storage / "local" / "tunix-grpo-tiny"
    logs = sorted((folder / "logs").glob("driver-*.log"))
    log = logs[-1].read_text() if logs else ""
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:] + log[-4000:]
    trials = [
        TrialResult.model_validate_json(p.read_text()) for p in (folder / "trials").glob("*.json")
    ]
    assert len(trials) == 3
    assert all(t.state is TrialState.SUCCEEDED for t in trials)
    scores = sorted(t.primary_score for t in trials if t.primary_score is not None)
    assert len(set(scores)) == 3, f"scores not distinct: {scores}"
    for trial in trials:
        assert trial.steps == 12
        assert {"reward_mean", "reward_answer_correct", "reward_format_valid"} <= set(trial.metrics)
    summary = SweepResult.model_validate_json((folder / "summary.json").read_text())
    assert summary.phase.value == "Succeeded"
    assert summary.primary_score == scores[-1]
    print(f"3-trial tunix-grpo sweep: {wall:.0f} s, scores {scores}")


def test_grpo_sweep_optimises_reward_mean(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    """Two short trials searched by TPE for reward_mean: the searcher, the summary and its
    message go by the final reward_mean (RewardLog.final), each trial keeps its score."""
    doc = yaml.safe_load((EXAMPLES / "sweep-tunix-grpo-tiny.yaml").read_text())
    spec = doc["spec"]
    spec |= {
        "objective": {"metric": "reward_mean", "mode": "max"},
        "algorithm": "tpe",
        "searchSpace": {"learningRate": {"type": "loguniform", "low": 1.0e-5, "high": 3.0e-3}},
        "maxTrials": 2,
        "maxConcurrentTrials": 2,
        "resources": {"cpu": 1},
        "budget": {"smokeSteps": 2},
    }
    spec["trainer"] |= {"logEvery": 1, "dataset": {"trainSize": 64, "evalSize": 8}}
    spec["trainer"]["eval"]["batchSize"] = 8
    manifest = tmp_path / "sweep.yaml"
    manifest.write_text(yaml.safe_dump(doc))
    storage = tmp_path / "runs"
    out = run_cli(
        ["sweep", "run", str(manifest), "--no-live", "--storage", f"file://{storage}"],
        subprocess_env,
        timeout=600,
    )
    folder = storage / "local" / "tunix-grpo-tiny"
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    summary = SweepResult.model_validate_json((folder / "summary.json").read_text())
    assert summary.objective_metric == "reward_mean" and len(summary.trials) == 2
    low, high = METRIC_BOUNDS["reward_mean"]
    for trial in summary.trials:
        assert trial.state is TrialState.SUCCEEDED and trial.primary_score is not None
        assert high is not None and low <= trial.metrics["reward_mean"] <= high
    best = min(summary.trials, key=lambda t: (-t.metrics["reward_mean"], t.trial_id))
    assert summary.best_trial_id == best.trial_id
    assert summary.primary_score == best.primary_score
    assert f"reward_mean={best.metrics['reward_mean']}" in (summary.message or "")


def test_sft_lora_rehearsal_leaves_a_verifiable_bundle(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    out_dir = tmp_path / "out"
    done = run_cli(
        [
            "rehearsal",
            "run",
            "examples/rehearsal-tunix-sft-tiny.yaml",
            "--storage",
            f"file://{tmp_path}/store",
            "--out",
            str(out_dir),
            "--json",
        ],
        subprocess_env,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    manifest = json.loads((out_dir / "run_manifest.json").read_text())
    summary = json.loads((out_dir / "eval_summary.json").read_text())
    assert schema_errors("run_manifest", manifest) == []
    assert manifest["config"]["backend"] == "tunix-sft"
    assert manifest["config"]["loraRank"] == 8
    assert manifest["model_id"] == "tunix-rt/gemma3-tiny-lora8"
    rows = [json.loads(line) for line in (out_dir / "eval_rows.jsonl").read_text().splitlines()]
    assert len(rows) == 32
    assert summary["primary_score"] == compute_primary_score(rows)
    assert summary["learning_curve"]
    log = (out_dir / "kaggle_output_log.txt").read_text()
    assert "RANDOM INIT" in log and "LoRA rank 8" in log
    (bundle,) = (out_dir / "submission").glob("*.zip")
    check = verify_zip(bundle)
    assert check.ok, check.errors
    verified = run_cli(["package", "--verify", str(bundle)], subprocess_env, timeout=120)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_dpo_sweep_then_its_best_trial_rehearsed(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    storage = f"file://{tmp_path}/runs"
    swept = run_cli(
        ["sweep", "run", "examples/sweep-tunix-dpo-tiny.yaml", "--no-live", "--storage", storage],
        subprocess_env,
        timeout=600,
    )
    folder = tmp_path / "runs" / "local" / "tunix-dpo-tiny"
    assert swept.returncode == 0, swept.stdout[-3000:] + swept.stderr[-2000:]
    trials = [
        TrialResult.model_validate_json(p.read_text()) for p in (folder / "trials").glob("*.json")
    ]
    assert len(trials) == 3 and all(t.state is TrialState.SUCCEEDED for t in trials)
    for trial in trials:
        assert trial.steps == 40
        assert {"preference_accuracy", "preference_margin"} <= set(trial.metrics)
    summary = SweepResult.model_validate_json((folder / "summary.json").read_text())
    best = max(t.primary_score or 0.0 for t in trials)
    assert summary.phase.value == "Succeeded" and summary.primary_score == best

    promoted = run_cli(
        ["promote", str(folder), "-o", str(tmp_path / "best.yaml"), "--steps", "40"],
        subprocess_env,
        timeout=120,
    )
    assert promoted.returncode == 0, promoted.stdout + promoted.stderr
    out_dir = tmp_path / "rehearsal"
    rehearsed = run_cli(
        [
            "rehearsal",
            "run",
            str(tmp_path / "best-rehearsal.yaml"),
            "--storage",
            storage,
            "--out",
            str(out_dir),
        ],
        subprocess_env,
        timeout=600,
    )
    assert rehearsed.returncode == 0, rehearsed.stdout[-3000:] + rehearsed.stderr[-3000:]
    manifest = json.loads((out_dir / "run_manifest.json").read_text())
    assert manifest["config"]["backend"] == "tunix-dpo"
    assert manifest["model_id"] == "tunix-rt/gemma3-tiny-full-dpo"
    eval_summary = json.loads((out_dir / "eval_summary.json").read_text())
    # Same config, same data, same steps: the rehearsal reproduces the trial's score.
    assert eval_summary["primary_score"] == best
    (bundle,) = (out_dir / "submission").glob("*.zip")
    check = verify_zip(bundle)
    assert check.ok, check.errors
