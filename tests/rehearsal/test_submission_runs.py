"""submission_runs/*: the committed evidence of real runs packages and verifies.

Each folder is a verbatim copy of what the commands in its README.md wrote (a sweep, its
best trial promoted, a rehearsal of that config): m34_v1 the smoke sweep on the built-in
trainer, grpo_v1 a Tunix GRPO sweep from a flawed SFT start (issue 25). Rebuilding a zip
from the committed evidence folder must give the committed zip byte for byte.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tunix_rt.api.trainer import TrainerConfig
from tunix_rt.api.trial import SweepResult
from tunix_rt.evidence import VerifyReport, build_zip, schema_errors, verify_zip
from tunix_rt.evidence.checksums import parse_sums, sha256_file
from tunix_rt.scoring import compute_primary_score

RUNS = Path(__file__).resolve().parents[2] / "submission_runs"
BACKENDS = {"m34_v1": "builtin", "grpo_v1": "tunix-grpo"}
"""The committed runs and the trainer backend each rehearsed."""
CANDIDATE = os.environ.get("TUNIX_RT_SUBMISSION_RUN")
"""A folder to check before committing it, named as the run it stands for (a key of
BACKENDS)."""


def run_folders() -> list[Path]:
    if CANDIDATE:
        return [Path(CANDIDATE)]
    return [RUNS / name for name in BACKENDS]


@pytest.fixture(params=run_folders(), ids=lambda p: p.name)
def run(request: pytest.FixtureRequest) -> Path:
    """A run's folder. The rehearsal's evidence sits at its top (run_manifest.json,
    eval_summary.json, kaggle_output_log.txt, as the M34 milestone names them); the sweep's
    in ``sweep/``; ``.tunix-rt-ignore`` names what sits beside it."""
    folder: Path = request.param
    if not (folder / "run_manifest.json").is_file():
        pytest.skip(f"{folder} has not been recorded in this checkout")
    return folder


def rebuilds_and_verifies(evidence: Path, tmp_path: Path) -> VerifyReport:
    """The one committed bundle of ``evidence`` rebuilds byte for byte and verifies."""
    committed = sorted((evidence / "submission").glob("tunix_rt_*.zip"))
    assert len(committed) == 1, committed
    rebuilt = build_zip(evidence, tmp_path)
    assert rebuilt.name == committed[0].name
    assert rebuilt.read_bytes() == committed[0].read_bytes()
    report = verify_zip(committed[0])
    assert report.ok, report.errors
    return report


def test_zip_rebuilds_byte_identical_and_verifies(run: Path, tmp_path: Path) -> None:
    report = rebuilds_and_verifies(run, tmp_path)
    sums = parse_sums((run / "SHA256SUMS").read_text())
    assert sorted(report.files) == sorted([*sums, "SHA256SUMS"])
    for name in ("run_manifest.json", "eval_summary.json", "kaggle_output_log.txt"):
        assert name in sums, f"{name} is not at the top of {run}"


def test_package_command_builds_the_committed_zip_from_the_folder(
    run: Path, tmp_path: Path
) -> None:
    """What a reviewer types: ``tunix-rt package submission_runs/m34_v1``."""
    exe = Path(sys.executable).with_name("tunix-rt")
    out = subprocess.run(
        [str(exe), "package", str(run), "-o", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    built = Path(out.stdout.strip().splitlines()[-1])
    committed = sorted((run / "submission").glob("tunix_rt_*.zip"))
    assert built.read_bytes() == committed[0].read_bytes()


def test_evidence_is_consistent_with_its_sweep_and_promoted_config(run: Path) -> None:
    manifest = json.loads((run / "run_manifest.json").read_text())
    summary = json.loads((run / "eval_summary.json").read_text())
    assert schema_errors("run_manifest", manifest) == []
    assert schema_errors("eval_summary", summary) == []
    for name, digest in parse_sums((run / "SHA256SUMS").read_text()).items():
        assert sha256_file(run / name) == digest, name
    rows = [json.loads(line) for line in (run / "eval_rows.jsonl").read_text().splitlines()]
    assert summary["primary_score"] == compute_primary_score(rows)
    sweep = SweepResult.model_validate_json((run / "sweep" / "summary.json").read_text())
    assert manifest["source"]["sweep"] == sweep.sweep
    assert manifest["source"]["trial"] == sweep.best_trial_id
    assert json.loads((run / "sweep_summary.json").read_text()) == json.loads(
        (run / "sweep" / "summary.json").read_text()
    )
    trial_files = sorted((run / "sweep" / "trials").glob("*.json"))
    assert {p.stem for p in trial_files} == {t.trial_id for t in sweep.trials}
    promoted = sorted((run / "promoted").glob("*-rehearsal.yaml"))
    assert len(promoted) == 1
    rehearsal = yaml.safe_load(promoted[0].read_text())
    config = TrainerConfig.model_validate(rehearsal["spec"]["trainer"])
    # Read with today's model: a manifest from before a field existed (trainer.backend)
    # lacks its default, and still names the promoted config.
    assert TrainerConfig.model_validate(manifest["config"]).to_wire() == config.to_wire()
    assert manifest["backend"] == BACKENDS[run.name]
    # Recorded with the numerics pins (issue 23): what was pinned and on which CPU.
    numerics = manifest["numerics"]
    assert numerics["applied"] and numerics["bit_identical"] and numerics["scope"] == "trainer"
    assert numerics["pinned"]["--xla_cpu_max_isa"] == "AVX2" and numerics["cpu"]["flags"]
    assert manifest["config_source_sha256"] == sha256_file(promoted[0])


def test_the_sweeps_own_bundle_rebuilds_and_names_every_trial(run: Path, tmp_path: Path) -> None:
    evidence = run / "sweep" / "evidence"
    rebuilds_and_verifies(evidence, tmp_path)
    # The bundled summary and trial records are the store's, byte for byte.
    assert (evidence / "sweep_summary.json").read_bytes() == (
        run / "sweep" / "summary.json"
    ).read_bytes()
    for trial in sorted((run / "sweep" / "trials").glob("*.json")):
        assert (evidence / "trials" / trial.name).read_bytes() == trial.read_bytes()
    manifest = json.loads((evidence / "run_manifest.json").read_text())
    rehearsal = json.loads((run / "run_manifest.json").read_text())
    assert manifest["kind"] == "sweep" and manifest["commit_sha"] == rehearsal["commit_sha"]
    best = json.loads((evidence / "best_config.json").read_text())
    assert {**best, "maxSteps": rehearsal["config"]["maxSteps"]} == rehearsal["config"]


def test_the_grpo_rehearsal_beats_its_sft_start_as_reward_and_score_rise() -> None:
    """Issue 25: the rehearsed best trial of the GRPO sweep scores at least 0.05 above the
    SFT checkpoint it started from, on the same eval rows (the start is scored by the run
    itself), and its answer reward rose while it trained: reward and score agree."""
    run = RUNS / "grpo_v1"
    summary = json.loads((run / "eval_summary.json").read_text())
    manifest = json.loads((run / "run_manifest.json").read_text())
    start = summary["metrics"]["start_primary_score"]
    assert summary["primary_score"] >= start + 0.05, (start, summary["primary_score"])
    checkpoint = Path(manifest["config"]["model"]["checkpoint"])
    assert (
        checkpoint.as_posix() == "examples/checkpoints/gemma3-tiny-sft-fullstop/model.safetensors"
    )
    digest = sha256_file(RUNS.parent / checkpoint)
    assert manifest["model_source"]["checkpoint_sha256"] == digest
    rewards = [
        p["reward_answer_correct"]
        for p in summary["learning_curve"]
        if "reward_answer_correct" in p
    ]
    assert len(rewards) >= 2 and rewards[-1] > rewards[0], rewards
