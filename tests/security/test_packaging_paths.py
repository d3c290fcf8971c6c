"""Packaging refuses path traversal and symlinks (issue 14, item 7), in both directions.

``tests/evidence/test_evidence_package.py`` covers: a symlinked file, folder and run
folder when packaging; ``../``, absolute, nested ``a/../..`` and backslash names listed in
SHA256SUMS; a ``../`` member in a zip being verified. Added here: every other unsafe
member name in a zip being verified (absolute, nested traversal, backslash, drive
letter), a symlink member, and a symlink in a folder being uploaded to the store.
"""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path

import pytest

from support.evidence import write_evidence
from tunix_rt.evidence import build_zip, verify_zip
from tunix_rt.storage import Store, StoreError


def _with_member(good: Path, out: Path, info: zipfile.ZipInfo, data: bytes) -> Path:
    with zipfile.ZipFile(good) as old, zipfile.ZipFile(out, "w") as new:
        for item in old.infolist():
            new.writestr(item, old.read(item.filename))
        new.writestr(info, data)
    return out


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    return build_zip(write_evidence(tmp_path / "run"), tmp_path)


@pytest.mark.reliability(
    "security",
    "verifying a zip with unsafe member names",
    result="verify_zip error 'unsafe entry' for /abs, a/../.., backslash, C:, ./",
)
@pytest.mark.parametrize(
    "name", ["/etc/passwd", "a/../../outside.txt", "..\\outside.txt", "C:/outside.txt", "./x"]
)
def test_verify_refuses_unsafe_member_names(bundle: Path, tmp_path: Path, name: str) -> None:
    evil = _with_member(bundle, tmp_path / "evil.zip", zipfile.ZipInfo(name), b"boom")
    report = verify_zip(evil)
    assert not report.ok
    assert any(f"unsafe entry {name!r}" in e for e in report.errors), report.errors


@pytest.mark.reliability(
    "security",
    "verifying a zip with a symlink member",
    result="verify_zip error: entry is a symlink",
)
def test_verify_refuses_a_symlink_member(bundle: Path, tmp_path: Path) -> None:
    info = zipfile.ZipInfo("link.txt")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    evil = _with_member(bundle, tmp_path / "link.zip", info, b"/etc/passwd")
    report = verify_zip(evil)
    assert "entry 'link.txt' is a symlink" in report.errors


@pytest.mark.reliability(
    "security",
    "uploading a folder that holds a symlink",
    result="StoreError 'refusing to upload symlink'; nothing uploaded",
)
def test_upload_refuses_a_symlink(tmp_path: Path) -> None:
    folder = write_evidence(tmp_path / "run")
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the store\n")
    (folder / "link.txt").symlink_to(secret)
    store = Store(f"file://{tmp_path / 'store'}")
    with pytest.raises(StoreError, match="refusing to upload symlink"):
        store.upload_dir(folder, "ns/run")
    assert not (tmp_path / "store" / "ns" / "run" / "link.txt").exists()
