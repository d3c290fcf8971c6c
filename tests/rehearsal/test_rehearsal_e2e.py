"""End to end with the real trainer (JAX on CPU): a tiny config, every evidence file, the zip."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from support.rehearsal import EVIDENCE_FILES, tiny_trainer, write_rehearsal
from tunix_rt.evidence import schema_errors, verify_zip
from tunix_rt.evidence.checksums import parse_sums, sha256_file
from tunix_rt.scoring import compute_primary_score

train = pytest.importorskip("tunix_rt.train", reason="the trainer (tunix_rt.train) is not here")
if not hasattr(train, "run_trial"):  # pragma: no cover - while the trainer is being written
    pytest.skip("tunix_rt.train has no run_trial yet", allow_module_level=True)

pytestmark = pytest.mark.slow

SECRET = "e2e-SECRET-access-key-0123456789abcdef"
REPO = Path(__file__).resolve().parents[2]


def test_rehearsal_end_to_end_with_the_real_trainer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``python -m tunix_rt.rehearsal`` in a subprocess, as the RayJob runs it."""
    spec_file = write_rehearsal(tmp_path / "tiny.yaml", "tiny-e2e", {"trainer": tiny_trainer()})
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PYTHONPATH": str(REPO / "operator"),
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "JAX_PLATFORMS": "cpu",
        "TUNIX_RT_IMAGE": "test-image:e2e",
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tunix_rt.rehearsal",
            "--spec",
            str(spec_file),
            "--storage",
            f"file://{tmp_path}/store",
            "--out",
            str(tmp_path / "out"),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    out = tmp_path / "out"
    files = {p.name for p in out.iterdir() if p.is_file()}
    assert files == EVIDENCE_FILES
    manifest = json.loads((out / "run_manifest.json").read_text())
    summary = json.loads((out / "eval_summary.json").read_text())
    assert schema_errors("run_manifest", manifest) == []
    assert schema_errors("eval_summary", summary) == []
    rows = [json.loads(line) for line in (out / "eval_rows.jsonl").read_text().splitlines()]
    assert len(rows) == summary["rows"]["eval_rows"] == 16
    assert summary["primary_score"] == compute_primary_score(rows)
    assert summary["primary_score"] == result["primaryScore"]
    assert summary["trainer_primary_score"] == summary["primary_score"]
    assert {"format_valid_rate", "cap_hit_rate"} <= set(summary["metrics"])
    assert summary["learning_curve"], "the learning curve is empty"
    assert manifest["steps"] == 20
    assert manifest["image"] == "test-image:e2e"
    assert manifest["commit_sha"] != "unknown"  # the repo's HEAD
    assert manifest["versions"]["jax"] and manifest["versions"]["flax"]
    assert manifest["devices"]
    assert len(manifest["dataset"]["sha256"]) == 64
    log = (out / "kaggle_output_log.txt").read_text()
    assert "eval:" in log and len(log.splitlines()) > 5
    sums = parse_sums((out / "SHA256SUMS").read_text())
    assert all(sha256_file(out / n) == d for n, d in sums.items())
    bundle = out / "submission" / result["bundleName"]
    report = verify_zip(bundle)
    assert report.ok, report.errors
    assert report.primary_score == summary["primary_score"]
    stored = tmp_path / "store" / "local" / "rehearsals" / "tiny-e2e"
    assert (stored / "submission" / result["bundleName"]).read_bytes() == bundle.read_bytes()
    for path in [*out.rglob("*"), *stored.rglob("*")]:
        if path.is_file():
            data = path.read_bytes()
            if path.suffix == ".zip":
                with zipfile.ZipFile(path) as archive:
                    data = b"".join(archive.read(n) for n in archive.namelist())
            assert SECRET.encode() not in data, path
    assert SECRET not in done.stderr + done.stdout


def test_timeout_with_the_real_trainer(tmp_path: Path) -> None:
    """spec.timeoutSeconds reaches run_trial as its deadline; TrainingTimeout fails the run
    with the field named, and the log goes to failed/ (in-process, a long tiny config)."""
    from tunix_rt.api.rehearsal import RehearsalSpec
    from tunix_rt.rehearsal import RehearsalError, failure_from_store, plan_from_spec
    from tunix_rt.rehearsal import run_rehearsal as run

    spec = RehearsalSpec.model_validate(
        {
            "trainer": tiny_trainer(maxSteps=1_000_000),
            "storage": f"file://{tmp_path}/store",
            "timeoutSeconds": 60,
        }
    )
    plan = plan_from_spec(spec, name="real-timeout")
    plan.timeout_seconds = 4.0
    with pytest.raises(
        RehearsalError, match=r"spec\.timeoutSeconds \(4\) reached at step"
    ) as caught:
        run(plan, echo=None)
    assert caught.value.reason == "TrainingTimeout"
    assert caught.value.step is not None and 0 <= caught.value.step < 1_000_000
    assert isinstance(caught.value.__cause__.__cause__, train.TrainingTimeout)  # type: ignore[union-attr]
    failure = failure_from_store(spec.storage, "local", "real-timeout")
    assert failure is not None and failure.step == caught.value.step
    assert failure.error_type == "TrainingTimeout" and failure.wall_seconds < 120
