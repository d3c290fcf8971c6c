"""Reading manifest files safely: any encoding a person's editor may save, no traceback,
and YAML's silent "last duplicate key wins" refused (issue 14, admission)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tunix_rt.api.errors import ManifestError
from tunix_rt.api.manifests import load_documents, parse_documents

SWEEP = "apiVersion: tunixrt.io/v1alpha1\nkind: Sweep\nmetadata: {name: s}\n"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"\xef\xbb\xbf" + SWEEP.encode(), "Sweep"),  # UTF-8 with a BOM
        (SWEEP.encode("utf-16"), "Sweep"),  # UTF-16 with its BOM (Windows editors)
        (SWEEP.encode("utf-32"), "Sweep"),
    ],
)
def test_unicode_encodings_with_a_bom_read(tmp_path: Path, raw: bytes, expected: str) -> None:
    path = tmp_path / "m.yaml"
    path.write_bytes(raw)
    assert load_documents(path)[0]["kind"] == expected


@pytest.mark.parametrize(
    "raw",
    [
        b"# caf\xe9 (Latin-1)\n" + SWEEP.encode(),
        bytes(range(256)),
        b"\xff\xfe\x00",  # a UTF-16 BOM, then half a character
    ],
)
def test_text_that_is_not_unicode_is_refused_by_name(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "m.yaml"
    path.write_bytes(raw)
    with pytest.raises(ManifestError) as info:
        load_documents(path)
    assert str(path) in str(info.value)
    assert "UTF-8" in str(info.value)


def test_duplicate_keys_are_refused_with_both_lines() -> None:
    text = "spec:\n  maxTrials: 4\n  seed: 1\n  maxTrials: 8\n"
    with pytest.raises(ManifestError) as info:
        parse_documents(text, "dup.yaml")
    message = str(info.value)
    assert "duplicate key 'maxTrials'" in message
    assert "line 4" in message and "first on line 2" in message


def test_same_key_in_different_mappings_is_fine() -> None:
    docs = parse_documents("a: {x: 1}\nb: {x: 2}\n---\na: 3\n")
    assert docs == [{"a": {"x": 1}, "b": {"x": 2}}, {"a": 3}]


def test_validate_cli_reports_instead_of_crashing(tmp_path: Path) -> None:
    bad = tmp_path / "latin.yaml"
    bad.write_bytes(b"# \xe9\n" + SWEEP.encode())
    exe = Path(sys.executable).with_name("tunix-rt")
    out = subprocess.run([str(exe), "validate", str(bad)], capture_output=True, text=True)
    assert out.returncode != 0
    assert "Traceback" not in out.stderr + out.stdout
    assert "UTF-8" in out.stderr + out.stdout


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"# caf\xe9\nlearningRate: 0.003\n", "not UTF-8 text"),
        (b"learningRate: 0.003\nlearningRate: 0.004\n", "duplicate key 'learningRate'"),
    ],
)
def test_rehearsal_run_reads_its_file_as_validate_does(
    tmp_path: Path, raw: bytes, expected: str
) -> None:
    """One reader for a single manifest or config file (``read_document``): the
    rehearsal CLI and entrypoint refuse what validate refuses, with no traceback."""
    path = tmp_path / "config.yaml"
    path.write_bytes(raw)
    exe = Path(sys.executable).with_name("tunix-rt")
    out = subprocess.run(
        [str(exe), "rehearsal", "run", str(path), "--storage", f"file://{tmp_path}/runs"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2, out.stderr  # invalid input: nothing ran
    assert "Traceback" not in out.stderr + out.stdout
    assert expected in out.stderr
    entry = subprocess.run(
        [sys.executable, "-m", "tunix_rt.rehearsal", "--spec", str(path), "--name", "r"],
        capture_output=True,
        text=True,
    )
    assert entry.returncode == 2 and expected in entry.stderr and "Traceback" not in entry.stderr
