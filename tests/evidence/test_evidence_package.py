"""Packaging: every file, reproducible bytes, refusals (symlinks, traversal), verification."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tunix_rt.cli.package import app as package_app
from tunix_rt.contract.file_names import SHA256SUMS
from tunix_rt.evidence import (
    PackageError,
    build_zip,
    bundle_name,
    collect_files,
    parse_sums,
    verify_zip,
)
from tunix_rt.evidence.package import zip_bytes

EXPECTED_NAME = "tunix_rt_demo-run_20250304_0123456.zip"


def test_zip_holds_every_file_and_the_checksums(evidence_dir: Path, tmp_path: Path) -> None:
    (evidence_dir / "extra").mkdir()
    (evidence_dir / "extra" / "notes.txt").write_text("nested files count too\n")
    names = sorted(p.relative_to(evidence_dir).as_posix() for p in evidence_dir.rglob("*"))
    names = [n for n in names if (evidence_dir / n).is_file() and n != SHA256SUMS]
    # SHA256SUMS was written before extra/ existed: packaging must refuse the unlisted file.
    with pytest.raises(PackageError, match=r"not listed in SHA256SUMS: extra/notes.txt"):
        build_zip(evidence_dir, tmp_path / "out")
    (evidence_dir / SHA256SUMS).unlink()
    path = build_zip(evidence_dir, tmp_path / "out")
    assert path.name == EXPECTED_NAME
    with zipfile.ZipFile(path) as archive:
        entries = archive.namelist()
        sums = parse_sums(archive.read(SHA256SUMS).decode())
    assert sorted(entries) == sorted([*names, SHA256SUMS])
    assert sorted(sums) == sorted(names)
    assert "extra/notes.txt" in entries
    assert verify_zip(path).ok


def test_zip_matches_folder_checksums(evidence_dir: Path, tmp_path: Path) -> None:
    path = build_zip(evidence_dir, tmp_path)
    with zipfile.ZipFile(path) as archive:
        assert archive.read(SHA256SUMS) == (evidence_dir / SHA256SUMS).read_bytes()
        for name in collect_files(evidence_dir):
            assert archive.read(name) == (evidence_dir / name).read_bytes()


def test_zip_is_byte_identical_on_rerun(evidence_dir: Path, tmp_path: Path) -> None:
    first = build_zip(evidence_dir, tmp_path / "a").read_bytes()
    # Different mtimes, permissions and location must not matter.
    for path in evidence_dir.iterdir():
        os.utime(path, (1_900_000_000, 1_900_000_000))
        path.chmod(0o600)
    moved = tmp_path / "elsewhere" / "run"
    shutil.copytree(evidence_dir, moved)
    second = build_zip(evidence_dir, tmp_path / "b").read_bytes()
    third = build_zip(moved, tmp_path / "c").read_bytes()
    assert first == second == third
    with zipfile.ZipFile(tmp_path / "a" / EXPECTED_NAME) as archive:
        infos = archive.infolist()
    assert [i.filename for i in infos] == sorted(i.filename for i in infos)
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {i.external_attr >> 16 for i in infos} == {0o100644}
    assert {i.compress_type for i in infos} == {zipfile.ZIP_DEFLATED}


def test_source_date_epoch_sets_the_timestamps(
    evidence_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1741082400")  # 2025-03-04 10:00:00 UTC
    data = zip_bytes(evidence_dir)
    assert data == zip_bytes(evidence_dir)
    with zipfile.ZipFile(__import__("io").BytesIO(data)) as archive:
        assert {i.date_time for i in archive.infolist()} == {(2025, 3, 4, 10, 0, 0)}


def test_bundle_name_comes_from_the_manifest(evidence_dir: Path) -> None:
    manifest = json.loads((evidence_dir / "run_manifest.json").read_text())
    assert bundle_name(manifest) == EXPECTED_NAME
    manifest["commit_dirty"] = True
    assert bundle_name(manifest) == "tunix_rt_demo-run_20250304_0123456-dirty.zip"
    manifest["commit_sha"] = "unknown"
    assert bundle_name(manifest).endswith("_unknown.zip")
    manifest["run_name"] = "../../etc/passwd"
    assert "/" not in bundle_name(manifest)


def test_submission_subfolder_is_not_packaged(evidence_dir: Path) -> None:
    first = zip_bytes(evidence_dir)
    (evidence_dir / "submission").mkdir()
    (evidence_dir / "submission" / "old.zip").write_bytes(b"previous bundle")
    assert zip_bytes(evidence_dir) == first


def test_symlinked_file_is_refused(evidence_dir: Path, tmp_path: Path) -> None:
    secret = tmp_path / "outside.txt"
    secret.write_text("not evidence")
    (evidence_dir / "link.txt").symlink_to(secret)
    with pytest.raises(PackageError, match=r"refusing symlink .*link\.txt"):
        build_zip(evidence_dir, tmp_path / "out")
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_symlinked_folder_is_refused(evidence_dir: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "x.txt").write_text("x")
    (evidence_dir / "sub").symlink_to(outside, target_is_directory=True)
    with pytest.raises(PackageError, match=r"refusing symlink .*sub"):
        build_zip(evidence_dir, tmp_path / "out")


def test_symlinked_run_folder_is_refused(evidence_dir: Path, tmp_path: Path) -> None:
    link = tmp_path / "link-run"
    link.symlink_to(evidence_dir, target_is_directory=True)
    with pytest.raises(PackageError, match="refusing symlink"):
        build_zip(link, tmp_path / "out")


@pytest.mark.parametrize(
    "listed", ["../outside.txt", "/etc/passwd", "a/../../outside.txt", "..\\outside.txt"]
)
def test_traversal_in_checksums_is_refused(evidence_dir: Path, tmp_path: Path, listed: str) -> None:
    (tmp_path / "outside.txt").write_text("outside the run folder")
    sums = evidence_dir / SHA256SUMS
    sums.write_text(sums.read_text() + f"{'0' * 64}  {listed}\n")
    with pytest.raises(PackageError, match=r"unsafe path|escapes"):
        build_zip(evidence_dir, tmp_path / "out")


def test_changed_file_after_checksums_is_refused(evidence_dir: Path, tmp_path: Path) -> None:
    (evidence_dir / "eval_rows.jsonl").write_text("{}\n")
    with pytest.raises(PackageError, match="changed since SHA256SUMS was written: eval_rows"):
        build_zip(evidence_dir, tmp_path)


def _rewrite(src: Path, dst: Path, change: dict[str, bytes | None]) -> None:
    """Copy a zip, replacing (bytes) or dropping (None) entries, adding new names."""
    with zipfile.ZipFile(src) as old, zipfile.ZipFile(dst, "w") as new:
        for info in old.infolist():
            if info.filename in change:
                data = change.pop(info.filename)
                if data is None:
                    continue
                new.writestr(info.filename, data)
            else:
                new.writestr(info, old.read(info.filename))
        for name, data in change.items():
            if data is not None:
                new.writestr(name, data)


def test_verify_detects_a_tampered_file(evidence_dir: Path, tmp_path: Path) -> None:
    good = build_zip(evidence_dir, tmp_path)
    bad = tmp_path / "tampered.zip"
    manifest = json.loads((evidence_dir / "run_manifest.json").read_text())
    manifest["model_id"] = "something-else"
    _rewrite(good, bad, {"run_manifest.json": json.dumps(manifest).encode()})
    report = verify_zip(bad)
    assert not report.ok
    assert "run_manifest.json: sha256 does not match SHA256SUMS" in report.errors


def test_verify_detects_unlisted_and_missing_entries(evidence_dir: Path, tmp_path: Path) -> None:
    good = build_zip(evidence_dir, tmp_path)
    extra = tmp_path / "extra.zip"
    _rewrite(good, extra, {"smuggled.txt": b"hi"})
    assert "smuggled.txt is in the zip but not listed in SHA256SUMS" in verify_zip(extra).errors
    missing = tmp_path / "missing.zip"
    _rewrite(good, missing, {"report.html": None})
    assert "report.html is listed in SHA256SUMS but not in the zip" in verify_zip(missing).errors


def test_verify_refuses_traversal_entries(evidence_dir: Path, tmp_path: Path) -> None:
    good = build_zip(evidence_dir, tmp_path)
    evil = tmp_path / "evil.zip"
    _rewrite(good, evil, {"../evil.txt": b"boom"})
    report = verify_zip(evil)
    assert any("unsafe entry '../evil.txt'" in e for e in report.errors)


def test_verify_detects_a_score_that_does_not_follow_from_the_rows(
    evidence_dir: Path, tmp_path: Path
) -> None:
    summary = json.loads((evidence_dir / "eval_summary.json").read_text())
    summary["primary_score"] = 1.0
    (evidence_dir / "eval_summary.json").write_text(json.dumps(summary))
    (evidence_dir / SHA256SUMS).unlink()
    report = verify_zip(build_zip(evidence_dir, tmp_path))
    assert any("!= compute_primary_score over eval_rows.jsonl" in e for e in report.errors)


def test_verify_checks_schemas(evidence_dir: Path, tmp_path: Path) -> None:
    manifest = json.loads((evidence_dir / "run_manifest.json").read_text())
    del manifest["commit_sha"]
    (evidence_dir / "run_manifest.json").write_text(json.dumps(manifest))
    (evidence_dir / SHA256SUMS).unlink()
    report = verify_zip(build_zip(evidence_dir, tmp_path))
    assert any("'commit_sha' is a required property" in e for e in report.errors)


@pytest.mark.skipif(shutil.which("sha256sum") is None, reason="coreutils sha256sum not installed")
def test_checksums_are_coreutils_compatible(evidence_dir: Path, tmp_path: Path) -> None:
    path = build_zip(evidence_dir, tmp_path / "z")
    out = tmp_path / "x"
    with zipfile.ZipFile(path) as archive:
        archive.extractall(out)
    done = subprocess.run(
        ["sha256sum", "-c", "--strict", SHA256SUMS], cwd=out, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_cli_package_and_verify(evidence_dir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    built = runner.invoke(package_app, [str(evidence_dir), "-o", str(tmp_path / "sub")])
    assert built.exit_code == 0, built.output
    zip_path = Path(built.output.strip())
    assert zip_path == tmp_path / "sub" / EXPECTED_NAME
    again = runner.invoke(package_app, [str(evidence_dir), "--out", str(tmp_path / "sub2")])
    assert again.exit_code == 0, again.output
    assert (tmp_path / "sub2" / EXPECTED_NAME).read_bytes() == zip_path.read_bytes()
    ok = runner.invoke(package_app, ["--verify", str(zip_path)])
    assert ok.exit_code == 0, ok.output
    assert "checksums match, primary_score 0.7500" in ok.output
    bad = tmp_path / "bad.zip"
    _rewrite(zip_path, bad, {"kaggle_output_log.txt": b"edited\n"})
    failed = runner.invoke(package_app, ["--verify", str(bad)])
    assert failed.exit_code == 1
    assert "kaggle_output_log.txt: sha256 does not match" in failed.output
    (evidence_dir / "link").symlink_to(tmp_path)
    refused = runner.invoke(package_app, [str(evidence_dir), "-o", str(tmp_path / "sub3")])
    assert refused.exit_code == 1
    assert "refusing symlink" in refused.output


def test_cli_default_output_folder_is_submission(
    evidence_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(package_app, [str(evidence_dir)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "submission" / EXPECTED_NAME).is_file()


def test_ignore_file_leaves_out_what_sits_beside_the_evidence(
    evidence_dir: Path, tmp_path: Path
) -> None:
    """A folder a person assembled (README, commands, a sweep's folder) still packages to
    the run's own zip: what .tunix-rt-ignore names is not evidence; anything else
    unlisted is still refused."""
    plain = build_zip(evidence_dir, tmp_path / "plain").read_bytes()
    (evidence_dir / "README.md").write_text("how this was made\n")
    (evidence_dir / "sweep" / "logs").mkdir(parents=True)
    (evidence_dir / "sweep" / "summary.json").write_text("{}\n")
    (evidence_dir / "sweep" / "logs" / "latest").symlink_to(evidence_dir / "README.md")
    with pytest.raises(PackageError):
        build_zip(evidence_dir, tmp_path / "refused")
    (evidence_dir / ".tunix-rt-ignore").write_text("# beside the evidence\nREADME.md\nsweep/\n")
    assert build_zip(evidence_dir, tmp_path / "beside").read_bytes() == plain
    (evidence_dir / "smuggled.txt").write_text("not listed, not ignored\n")
    with pytest.raises(PackageError, match=r"not listed in SHA256SUMS: smuggled.txt"):
        build_zip(evidence_dir, tmp_path / "smuggled")
