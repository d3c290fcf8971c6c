"""A store for the web view's tests, written with the real writers and models (no Ray):

* ``local/sweep-smoke`` and ``local/rehearsals/sweep-smoke-best``: the recorded real run
  (submission_runs/m34_v1), copied as the store held it;
* ``team-a/mixed``: a finished sweep of 4 trials over three parameters (one failed, one
  stopped by the scheduler), with its spec, summary and a GRPO-like reward curve;
* ``team-a/rehearsals/mixed-best``: an evidence folder promoted from ``mixed``'s best
  trial whose eval rows carry markup in their traces (untrusted model output);
* ``team-a/rehearsals/broken``: a rehearsal that only failed (failed/<stamp>/failure.json);
* ``team-b/growing``: a running sweep: no summary, trial records with curves, an open
  driver session.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from support.evidence import sample_manifest, sample_rows, sample_summary
from support.rehearsal import EVIDENCE_FILES
from tunix_rt.api.sweep import SweepSpec
from tunix_rt.api.trial import DriverSession, DriverSessions, SweepResult, TrialResult, TrialState
from tunix_rt.contract.file_names import (
    EVAL_ROWS_JSONL,
    EVAL_SUMMARY_JSON,
    FAILED_DIR,
    FAILURE_JSON,
    KAGGLE_OUTPUT_LOG_TXT,
    RUN_MANIFEST_JSON,
)
from tunix_rt.contract.layout import RehearsalLayout, SweepFiles, SweepLayout
from tunix_rt.evidence.failure import RehearsalFailure
from tunix_rt.evidence.summary import rows_jsonl
from tunix_rt.storage import Store

ROOT = Path(__file__).resolve().parents[2]
M34 = ROOT / "submission_runs" / "m34_v1"
M34_REHEARSAL_FILES = (*sorted(EVIDENCE_FILES), "sweep_summary.json", "submission")
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
XSS = "<script>alert('trace')</script><img src=x onerror=alert(1)>"
"""Model output that must reach the page as text."""

MIXED_SPEC = {
    "searchSpace": {
        "learningRate": {"type": "loguniform", "low": 1.0e-4, "high": 3.0e-2},
        "batchSize": {"type": "choice", "values": [32, 64]},
        "weightDecay": {"type": "uniform", "low": 0.0, "high": 0.1},
    },
    "objective": {"metric": "primary_score", "mode": "max", "goal": 0.9},
    "algorithm": "random",
    "maxTrials": 4,
    "maxConcurrentTrials": 2,
    "maxFailedTrials": 1,
    "budget": {"smokeSteps": 40, "acceleratorHours": 2.0, "wallClockSeconds": 7200},
}

# trial id -> (learningRate, batchSize, weightDecay, state, primary_score, steps, error)
MIXED_TRIALS: dict[str, tuple[float, int, float, TrialState, float | None, int, str | None]] = {
    "t_00000": (3.0e-4, 64, 0.05, TrialState.SUCCEEDED, 0.40, 40, None),
    "t_00001": (1.0e-2, 32, 0.01, TrialState.SUCCEEDED, 0.75, 40, None),
    "t_00002": (
        2.0e-2,
        64,
        0.09,
        TrialState.FAILED,
        None,
        7,
        "FloatingPointError: loss is nan <at step 7>",
    ),
    "t_00003": (1.0e-4, 32, 0.02, TrialState.STOPPED, 0.10, 20, "stopped by asha"),
}


def curve(steps: int, lr: float, rewards: bool = False) -> list[dict[str, float]]:
    """A made-up learning curve: a point every 10 steps."""
    points = []
    for step in range(10, steps + 1, 10):
        point = {"step": float(step), "loss": 3.0 / (1 + lr * 100 * step), "learning_rate": lr}
        if rewards:
            point["reward_mean"] = min(1.0, step * lr * 5)
        points.append(point)
    return points


def mixed_trials() -> list[TrialResult]:
    trials = []
    for index, (trial_id, (lr, batch, decay, state, score, steps, error)) in enumerate(
        MIXED_TRIALS.items()
    ):
        start = T0 + timedelta(minutes=5 * index)
        trials.append(
            TrialResult(
                trial_id=trial_id,
                sweep="mixed",
                namespace="team-a",
                params={"learningRate": lr, "batchSize": batch, "weightDecay": decay},
                state=state,
                primary_score=score,
                metrics={"primary_score": score} if score is not None else {},
                steps=steps,
                wall_seconds=60.0 * (index + 1),
                started_at=start,
                finished_at=start + timedelta(minutes=index + 1),
                error=error,
                curve=curve(steps, lr, rewards=True),
                accelerator_hours=0.01 * (index + 1),
            )
        )
    return trials


def write_mixed(store: Store) -> None:
    files = SweepFiles(store, SweepLayout.of("team-a", "mixed"))
    files.write_spec(SweepSpec.model_validate(MIXED_SPEC))
    trials = mixed_trials()
    for trial in trials:
        files.write_trial(trial)
    files.write_log("driver: 4 trials\n")
    files.write_summary(
        SweepResult(
            sweep="mixed",
            namespace="team-a",
            message="best trial t_00001: primary_score=0.75",
            trials_planned=4,
            trials=trials,
            best_trial_id="t_00001",
            best_params=trials[1].params,
            primary_score=0.75,
            started_at=T0,
            finished_at=T0 + timedelta(minutes=30),
            reason="Succeeded",
            accelerator_hours_used=0.1,
            wall_seconds_used=1800.0,
        )
    )
    store.write_text("team-a/mixed/ray/t_00000/result.json", "{}\n")  # not evidence: never served


def write_rehearsal(store: Store, namespace: str, name: str, source: dict[str, Any]) -> None:
    """An evidence folder (support.evidence's sample) whose traces carry markup."""
    layout = RehearsalLayout.of(namespace, name)
    rows = sample_rows()
    rows[0]["output"] = f"<reasoning>{XSS}</reasoning><answer>1</answer>"
    rows[0]["prompt"] = "what is <b>0+1</b>?"
    for row in rows[1:3]:  # 1 of 4 correct: a score no other run has
        row.update(
            answer="9", answer_correctness=0, output="<reasoning>…</reasoning><answer>9</answer>"
        )
    manifest = sample_manifest(run_name=name, namespace=namespace, source=source)
    store.write_json(layout.manifest_key, manifest)
    store.write_json(layout.eval_summary_key, sample_summary(rows))
    store.write_text(layout.key(EVAL_ROWS_JSONL), rows_jsonl(rows))
    store.write_text(layout.log_key, "step 0 loss 3.0\n")


def write_failed_rehearsal(store: Store, namespace: str, name: str) -> None:
    layout = RehearsalLayout.of(namespace, name)
    stamp = "20260105T100000Z"
    failure = RehearsalFailure(
        run_name=name,
        namespace=namespace,
        reason="TrainingFailed",
        message="loss became nan at step 3 <see the log>",
        step=3,
        max_steps=20,
        start_time=T0,
        end_time=T0 + timedelta(minutes=2),
        wall_seconds=120.0,
        commit_sha="0" * 40,
        config_sha256="1" * 64,
    )
    store.write_bytes(f"{layout.key(FAILED_DIR, stamp)}/{FAILURE_JSON}", failure.to_json())
    store.write_text(f"{layout.key(FAILED_DIR, stamp)}/{KAGGLE_OUTPUT_LOG_TXT}", "nan\n")


def write_growing(store: Store) -> None:
    """A sweep still running: two trials reported, one still training."""
    files = SweepFiles(store, SweepLayout.of("team-b", "growing"))
    files.write_spec(SweepSpec.model_validate({**MIXED_SPEC, "maxTrials": 3}))
    files.write_sessions(DriverSessions(sessions=[DriverSession(started_at=T0, seen_at=T0)]))
    for index, (state, score) in enumerate(
        [(TrialState.SUCCEEDED, 0.5), (TrialState.RUNNING, None)]
    ):
        files.write_trial(
            TrialResult(
                trial_id=f"g_{index:05d}",
                sweep="growing",
                namespace="team-b",
                params={"learningRate": 1e-3 * (index + 1), "batchSize": 32, "weightDecay": 0.0},
                state=state,
                primary_score=score,
                steps=20 if score else 10,
                started_at=T0,
                curve=curve(20 if score else 10, 1e-3 * (index + 1)),
            )
        )


def copy_m34(root: Path) -> None:
    shutil.copytree(M34 / "sweep", root / "local" / "sweep-smoke")
    target = root / "local" / "rehearsals" / "sweep-smoke-best"
    target.mkdir(parents=True)
    for name in M34_REHEARSAL_FILES:
        source = M34 / name
        if source.is_dir():
            shutil.copytree(source, target / name)
        else:
            shutil.copyfile(source, target / name)


def build_store(root: Path) -> Store:
    """Every run above under ``root``; the store's URI is ``file://<root>``."""
    copy_m34(root)
    store = Store(f"file://{root}")
    write_mixed(store)
    write_rehearsal(
        store,
        "team-a",
        "mixed-best",
        {
            "sweep": "mixed",
            "trial": "t_00001",
            "params": {"learningRate": 1.0e-2, "batchSize": 32, "weightDecay": 0.01},
            "trial_primary_score": 0.75,
            "summary_uri": store.uri_for("team-a/mixed/summary.json"),
        },
    )
    write_failed_rehearsal(store, "team-a", "broken")
    write_growing(store)
    return store


def eval_summary(root: Path, namespace: str, name: str) -> dict[str, Any]:
    path = root / namespace / "rehearsals" / name / EVAL_SUMMARY_JSON
    data: dict[str, Any] = json.loads(path.read_text())
    return data


__all__ = ["RUN_MANIFEST_JSON", "XSS", "build_store", "eval_summary"]
