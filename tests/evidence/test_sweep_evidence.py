"""A finished Sweep's evidence: folder, zip, verification, upload (hand-made trials, no Ray)."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from support.trials import lr_trial
from tunix_rt.api.common import Phase
from tunix_rt.api.trainer import TrainerConfig
from tunix_rt.api.trial import SweepResult, TrialResult, TrialState
from tunix_rt.cli.package import app as package_app
from tunix_rt.contract.file_names import (
    BEST_CONFIG_JSON,
    REPORT_HTML,
    RUN_MANIFEST_JSON,
    SHA256SUMS,
    SUBMISSION_DIR,
    SWEEP_LOG_TXT,
    SWEEP_SUMMARY_JSON,
)
from tunix_rt.evidence import (
    PackageError,
    SweepRunFacts,
    build_zip,
    parse_sums,
    publish_folder,
    verify_zip,
    write_sweep_evidence,
)
from tunix_rt.evidence.manifest import CommitInfo
from tunix_rt.evidence.sweep import summary_bytes
from tunix_rt.evidence.upload import latest_bundle
from tunix_rt.storage import Store

T0 = datetime(2026, 11, 2, 9, 0, 0, tzinfo=UTC)
SHA = "0123456789abcdef0123456789abcdef01234567"


def _trial(trial_id: str, lr: float, score: float | None, state: TrialState) -> TrialResult:
    return lr_trial(
        "smoke",
        trial_id,
        lr,
        score,
        state,
        metrics={"primary_score": score} if score is not None else {},
        steps=300 if state is not TrialState.FAILED else 40,
        wall_seconds=47.5,
        started_at=T0,
        finished_at=T0 + timedelta(seconds=48),
        error="boom" if state is TrialState.FAILED else None,
    )


TRIALS = [
    _trial("t_00001", 3e-3, 0.7246, TrialState.SUCCEEDED),
    _trial("t_00000", 3e-5, 0.0039, TrialState.SUCCEEDED),
    _trial("t_00002", 1e-1, None, TrialState.FAILED),
]


def _summary() -> SweepResult:
    return SweepResult(
        sweep="smoke",
        namespace="local",
        phase=Phase.SUCCEEDED,
        message="best trial t_00001: primary_score=0.7246",
        trials_planned=3,
        trials=TRIALS,
        best_trial_id="t_00001",
        best_params={"learningRate": 3e-3},
        primary_score=0.7246,
        base_config=TrainerConfig().to_wire(),
        started_at=T0,
        finished_at=T0 + timedelta(minutes=3),
    )


def _facts() -> SweepRunFacts:
    return SweepRunFacts(
        spec={"maxTrials": 3, "searchSpace": {"learningRate": {"type": "loguniform"}}},
        config_path="examples/sweep-smoke.yaml",
        command=["tunix-rt", "sweep", "run", "examples/sweep-smoke.yaml"],
        commit=CommitInfo(SHA, False, "git"),
        model_id="tunix-rt/char-transformer-L2-W128",
        dataset={"name": "arith-traces", "sha256": "ab" * 32, "train_rows": 8, "eval_rows": 4},
        seed=0,
        devices=["ray cluster: 2 CPU"],
        start_time=T0,
        end_time=T0 + timedelta(minutes=3),
        wall_seconds=180.0,
        storage_uri="file:///tmp/runs",
        storage_prefix="local/smoke/evidence",
    )


def _trial_files() -> dict[str, bytes]:
    return {t.trial_id: (json.dumps(t.to_wire(), indent=2) + "\n").encode() for t in TRIALS}


def _write(folder: Path) -> Path:
    return write_sweep_evidence(
        folder,
        summary=_summary(),
        trial_files=_trial_files(),
        log_text="2026-11-02T09:00:00.000Z trial t_00000 started\n",
        facts=_facts(),
    )


def test_folder_holds_the_whole_story_and_the_zip_verifies(tmp_path: Path) -> None:
    bundle = _write(tmp_path / "ev")
    folder = tmp_path / "ev"
    assert bundle == folder / SUBMISSION_DIR / f"tunix_rt_smoke_20261102_{SHA[:7]}.zip"
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert files == sorted(
        [
            RUN_MANIFEST_JSON,
            SWEEP_SUMMARY_JSON,
            BEST_CONFIG_JSON,
            SWEEP_LOG_TXT,
            REPORT_HTML,
            SHA256SUMS,
            "trials/t_00000.json",
            "trials/t_00001.json",
            "trials/t_00002.json",
            f"{SUBMISSION_DIR}/{bundle.name}",
        ]
    )
    manifest = json.loads((folder / RUN_MANIFEST_JSON).read_text())
    assert manifest["kind"] == "sweep"
    assert manifest["run_name"] == "smoke" and manifest["commit_sha"] == SHA
    assert manifest["config_path"] == "examples/sweep-smoke.yaml"
    assert manifest["config"]["maxTrials"] == 3
    assert manifest["steps"] == 300 + 300 + 40
    # The bundled summary is byte for byte what the store's summary.json holds.
    assert (folder / SWEEP_SUMMARY_JSON).read_bytes() == summary_bytes(_summary())
    assert (folder / "trials/t_00001.json").read_bytes() == _trial_files()["t_00001"]
    best = json.loads((folder / BEST_CONFIG_JSON).read_text())
    assert best["learningRate"] == 3e-3
    assert TrainerConfig.model_validate(best).learning_rate == 3e-3
    sums = parse_sums((folder / SHA256SUMS).read_text())
    assert set(sums) == set(files) - {SHA256SUMS, f"{SUBMISSION_DIR}/{bundle.name}"}

    report = verify_zip(bundle)
    assert report.ok, report.errors
    assert report.primary_score == 0.7246 and report.run_name == "smoke"
    html = (folder / REPORT_HTML).read_text()
    for text in ("t_00000", "t_00001", "t_00002", "0.7246", "Best params", "<svg"):
        assert text in html


def test_zip_is_reproducible(tmp_path: Path) -> None:
    first = _write(tmp_path / "a")
    second = _write(tmp_path / "b")
    assert first.name == second.name
    assert first.read_bytes() == second.read_bytes()
    again = build_zip(tmp_path / "a", tmp_path / "again")
    assert again.read_bytes() == first.read_bytes()


def test_refuses_a_folder_with_other_files(tmp_path: Path) -> None:
    folder = tmp_path / "ev"
    folder.mkdir()
    (folder / "keep-me.txt").write_text("mine")
    with pytest.raises(PackageError, match="not empty"):
        _write(folder)
    assert (folder / "keep-me.txt").read_text() == "mine"


def test_a_trial_record_the_readers_reject_is_refused(tmp_path: Path) -> None:
    files = _trial_files() | {"t_00001": b'{"trialId": "t_00001"}'}  # no sweep name
    with pytest.raises(ValueError, match="sweep"):
        write_sweep_evidence(
            tmp_path / "ev", summary=_summary(), trial_files=files, log_text="", facts=_facts()
        )


def _rewrite(src: Path, dst: Path, change: dict[str, bytes | None]) -> None:
    with zipfile.ZipFile(src) as old, zipfile.ZipFile(dst, "w") as new:
        for info in old.infolist():
            if info.filename in change:
                continue
            new.writestr(info, old.read(info.filename))
        for name, data in change.items():
            if data is not None:
                new.writestr(name, data)


def _resummed(src: Path, dst: Path, change: dict[str, bytes | None]) -> None:
    """Change entries and rewrite SHA256SUMS to match: only the sweep checks can object."""
    import hashlib

    with zipfile.ZipFile(src) as old:
        entries = {i.filename: old.read(i.filename) for i in old.infolist()}
    for name, data in change.items():
        if data is None:
            entries.pop(name, None)
        else:
            entries[name] = data
    entries.pop(SHA256SUMS)
    sums = "".join(
        f"{hashlib.sha256(d).hexdigest()}  {n}\n" for n, d in sorted(entries.items())
    ).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as new:
        for name, data in sorted(entries.items()):
            new.writestr(name, data)
        new.writestr(SHA256SUMS, sums)
    dst.write_bytes(buffer.getvalue())


def test_verify_catches_sweep_inconsistencies(tmp_path: Path) -> None:
    bundle = _write(tmp_path / "ev")
    missing_trial = tmp_path / "missing.zip"
    _resummed(bundle, missing_trial, {"trials/t_00000.json": None})
    report = verify_zip(missing_trial)
    assert any("t_00000 is in sweep_summary.json" in e for e in report.errors), report.errors

    lying = _summary().model_copy(update={"primary_score": 0.99})
    wrong_best = tmp_path / "best.zip"
    _resummed(bundle, wrong_best, {SWEEP_SUMMARY_JSON: summary_bytes(lying)})
    report = verify_zip(wrong_best)
    assert any("its best trial's (0.7246)" in e for e in report.errors), report.errors

    no_log = tmp_path / "nolog.zip"
    _resummed(bundle, no_log, {SWEEP_LOG_TXT: None})
    report = verify_zip(no_log)
    assert any("sweep_log.txt is missing" in e for e in report.errors), report.errors

    edited = tmp_path / "edited.zip"
    _rewrite(bundle, edited, {"trials/t_00001.json": b"{}"})
    assert not verify_zip(edited).ok


def test_cli_verifies_a_sweep_bundle(tmp_path: Path) -> None:
    bundle = _write(tmp_path / "ev")
    ok = CliRunner().invoke(package_app, ["--verify", str(bundle)])
    assert ok.exit_code == 0, ok.output
    assert "primary_score 0.7246" in ok.output


def test_publish_to_a_store_then_find_the_bundle(tmp_path: Path) -> None:
    bundle = _write(tmp_path / "ev")
    store = Store(f"file://{tmp_path / 'store'}")
    prefix = "local/smoke/evidence"
    store.write_text(f"{prefix}/stale.txt", "from an earlier run")
    assert latest_bundle(store, prefix) is None
    published = publish_folder(store, tmp_path / "ev", prefix)
    assert published.bundle_uri == store.uri_for(f"{prefix}/{SUBMISSION_DIR}/{bundle.name}")
    assert latest_bundle(store, prefix) == published.bundle_uri
    assert not store.exists(f"{prefix}/stale.txt")
    assert store.read_bytes(f"{prefix}/{SUBMISSION_DIR}/{bundle.name}") == bundle.read_bytes()
    assert len(published.uris) == 10


def test_unreadable_trial_records_are_named_in_the_summary_and_the_report(
    tmp_path: Path,
) -> None:
    """Issue 23: a record the driver could not read is counted in summary.json (and its
    message) and listed in report.html, never silently left out."""
    from tunix_rt.tune.publish import with_damage

    damaged = ["t_00003.json: not JSON: cut short (the document ends mid-way, after 40 bytes)"]
    summary = _summary().model_copy(
        update={"unreadable_trials": damaged, "message": with_damage("best t_00001", damaged)}
    )
    folder = tmp_path / "ev"
    bundle = write_sweep_evidence(
        folder, summary=summary, trial_files=_trial_files(), log_text="", facts=_facts()
    )
    stored = SweepResult.model_validate_json((folder / SWEEP_SUMMARY_JSON).read_bytes())
    assert stored.unreadable_trials == damaged
    assert stored.message == "best t_00001; 1 trial record(s) unreadable and left out"
    html = (folder / REPORT_HTML).read_text()
    assert "1 trial record(s) unreadable, left out" in html and "t_00003.json" in html
    assert verify_zip(bundle).ok
