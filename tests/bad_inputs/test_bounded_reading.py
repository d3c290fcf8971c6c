"""Every reader within limits (issue 23, "Parsers that can be bombed", "Results that hide
damage"): each bad input is refused with a clear error, quickly and with little memory.

The bounds are generous (5 s, tens of MiB) so that they hold on a loaded machine; the
figures measured on an idle one are far below (tens of milliseconds, under 1 MiB). Inputs
too large to keep in the corpus (a 50 MB string, an oversized file, a 20 MiB record) are
made here.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tunix_rt import results
from tunix_rt.api.errors import ManifestError
from tunix_rt.api.manifests import check_document, load_documents
from tunix_rt.contract.layout import SweepFiles, SweepLayout
from tunix_rt.controller.sweep import read_snapshot
from tunix_rt.controller.sweep_status import progress_message, unreadable_fields
from tunix_rt.evidence.package import verify_zip
from tunix_rt.reading import RECORD, ReadError, load_json
from tunix_rt.storage import Store

CORPUS = Path(__file__).resolve().parent
SECONDS = 5.0
"""Far above the measured times (well under a second): a loaded machine still passes."""
MIB = 1024 * 1024


@contextmanager
def bounded(seconds: float = SECONDS, memory: int = 32 * MIB) -> Iterator[None]:
    """Fails when the block takes longer than ``seconds`` or allocates more than
    ``memory`` at its peak (tracemalloc: Python's own allocations)."""
    tracemalloc.start()
    started = time.perf_counter()
    try:
        yield
    finally:
        took = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert took < seconds, f"took {took:.2f} s"
    assert peak < memory, f"peak {peak / MIB:.1f} MiB"


def refused(read: Callable[[], Any]) -> str:
    with pytest.raises((ManifestError, ReadError)) as caught:
        docs = read()
        for doc in docs if isinstance(docs, list) else [docs]:  # the model's turn
            errors = check_document(doc).errors
            if errors:
                raise ManifestError.of("doc", errors)
    message = str(caught.value)
    assert "Traceback" not in message and len(message) < 2000, message[:3000]
    return message


SWEEP_HEAD = """apiVersion: tunixrt.io/v1alpha1
kind: Sweep
metadata: {name: x}
spec:
  searchSpace:
    learningRate: {type: loguniform, low: 1e-4, high: 1e-2}
"""


@pytest.mark.reliability("input", "a YAML alias bomb in trainer.userParams", result="refused")
def test_an_alias_bomb_is_refused_before_it_expands() -> None:
    path = CORPUS / "manifests" / "yaml-alias-bomb-userparams.yaml"
    with bounded(memory=8 * MIB):
        message = refused(lambda: load_documents(path))
    assert "spec.trainer.userParams.lol" in message and "with its aliases" in message


@pytest.mark.reliability("input", "500 levels of YAML nesting", result="refused, no traceback")
@pytest.mark.parametrize("levels", [65, 500, 100_000])
def test_deep_nesting_is_refused_without_recursion(levels: int, tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text(SWEEP_HEAD + "  x: " + "{a: " * levels + "1" + "}" * levels + "\n")
    with bounded():
        message = refused(lambda: load_documents(path))
    assert "nesting depth" in message or "nested deeper than 64 levels" in message


def test_block_nesting_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("a:\n" + "".join("  " * i + "b:\n" for i in range(1, 500)))
    with bounded():
        message = refused(lambda: load_documents(path))
    assert "line 65: nested deeper than 64 levels" in message


@pytest.mark.reliability("input", "a 50 MB string in a manifest", result="refused unread")
def test_a_50_mb_string_is_refused_by_size_and_never_echoed(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    with path.open("w") as handle:
        handle.write(SWEEP_HEAD + "  storage: s3://b/")
        handle.write("a" * (50 * MIB))
    with bounded(memory=4 * MIB):  # the cap plus a byte is read, not 50 MB
        message = refused(lambda: load_documents(path))
    assert "50 MiB, over the 1 MiB a manifest may be" in message
    assert "aaaaaaaaaa" not in message


def test_a_long_value_under_the_cap_is_quoted_by_its_prefix(tmp_path: Path) -> None:
    path = tmp_path / "long.yaml"
    path.write_text(SWEEP_HEAD.replace("name: x", "name: " + "n" * 900_000))
    with bounded():
        message = refused(lambda: load_documents(path))
    assert "'" + "n" * 80 + "'… (900000 bytes)" in message


def test_the_cli_refuses_an_oversized_file_quickly_without_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    path.write_text(SWEEP_HEAD + ("# filler\n" * (300 * 1024)))  # 2.7 MiB of comments
    cli = Path(sys.executable).with_name("tunix-rt")
    out = subprocess.run(
        [str(cli), "validate", str(path)], capture_output=True, text=True, timeout=120
    )
    text = out.stdout + out.stderr
    assert out.returncode == 2 and "Traceback" not in text, text
    assert "over the 1 MiB a manifest may be" in text and len(text) < 1000, text


def test_a_fifo_is_read_to_the_cap_not_forever(tmp_path: Path) -> None:
    """``validate /dev/zero`` (or a FIFO someone keeps writing): the cap, then refused."""
    with bounded(memory=4 * MIB):
        message = refused(lambda: load_documents("/dev/zero"))
    assert "over the 1 MiB a manifest may be" in message


# ----------------------------------------------------------------------------- JSON


@pytest.mark.parametrize(
    ("raw", "said"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "nested deeper than 64 levels"),
        (b'{"a": ' * 70 + b"1" + b"}" * 70, "nested deeper than 64 levels"),
        (b'{"trialId": "t", "state": "Succ', "cut short"),
        (b'{"trialId": "t",, }', "not JSON: malformed at line 1 column 17"),
        (b"", "not JSON: empty (0 bytes)"),
    ],
)
def test_json_records_are_read_within_limits(raw: bytes, said: str) -> None:
    with bounded(), pytest.raises(ReadError) as caught:
        load_json(raw, "trial.json", RECORD)
    assert said in str(caught.value)


def test_a_record_over_the_cap_is_refused_after_a_range_read(tmp_path: Path) -> None:
    folder = tmp_path / "sweep"
    shutil.copytree(CORPUS / "sweeps" / "one-truncated", folder)
    (folder / "trials" / "309ef_00004.json").write_bytes(b" " * (RECORD.max_bytes + 5 * MIB))
    files = SweepFiles(Store(f"file://{folder}"), SweepLayout(""))
    with bounded(memory=RECORD.max_bytes + 8 * MIB):
        trials = files.trials()
    assert len(trials) == 2  # of five: one cut short, one malformed, one too large
    why = files.damaged_trials["trials/309ef_00004.json"]
    assert "over the 16 MiB a record may be" in why


# ----------------------------------------------------------------------------- zips


@pytest.mark.reliability("input", "zip bombs given to package --verify", result="refused unread")
@pytest.mark.parametrize(
    ("name", "said"),
    [
        ("declared-huge", "inflates to 4 GiB, over the 256 MiB an entry may be; refused unread"),
        ("ratio-bomb", "inflates 1028:1 (63.7 KiB to 64 MiB), over 200:1: a zip bomb"),
        ("lying-size", "'zeros.bin' fails its CRC check"),
    ],
)
def test_zip_bombs_are_refused_before_inflating(name: str, said: str) -> None:
    with bounded(memory=4 * MIB):
        report = verify_zip(CORPUS / "evidence" / "zips" / f"{name}.zip")
    assert not report.ok and any(said in e for e in report.errors), report.errors


# ----------------------------------------------------------------------------- damage


@pytest.mark.reliability(
    "fault",
    "trial records truncated, malformed or invalid in the store",
    result="counted and named",
)
def test_results_load_lists_every_unreadable_record() -> None:
    loaded = results.load(str(CORPUS / "sweeps" / "one-truncated"))
    assert [t.trial_id for t in loaded.trials] == ["309ef_00002", "309ef_00003", "309ef_00004"]
    shown = {uri.rsplit("/", 1)[-1]: why[:40] for uri, why in loaded.unreadable.items()}
    assert shown == {
        "309ef_00000.json": "not JSON: cut short (the document ends m",
        "309ef_00001.json": "not JSON: malformed at line 23 column 3 ",
    }
    assert loaded.to_json()["unreadable"][0]["problem"].startswith("not JSON: cut short")


def test_every_record_corrupt_is_said_so_not_that_none_exist() -> None:
    with pytest.raises(results.ResultsError) as caught:
        results.load(str(CORPUS / "sweeps" / "all-corrupt"))
    assert "every trial record" in str(caught.value) and "5 of 5" in str(caught.value)


def test_a_malformed_summary_is_described_in_words() -> None:
    with pytest.raises(results.ResultsError) as caught:
        results.load(str(CORPUS / "sweeps" / "summary-malformed"))
    text = str(caught.value)
    assert "not a valid sweep summary: sweep: Field required" in text
    assert "validation error" not in text and "type=" not in text


@pytest.mark.reliability(
    "fault", "unreadable trial records seen by the operator", result="status counts and names them"
)
def test_the_operator_status_counts_and_names_unreadable_records() -> None:
    files = SweepFiles(Store(f"file://{CORPUS / 'sweeps' / 'record-invalid'}"), SweepLayout(""))
    snap = read_snapshot(files, {}, with_summary=False)
    fields = unreadable_fields(snap.damaged)
    assert fields["trialsUnreadable"] == 1
    assert fields["unreadableTrials"][0].startswith(
        "trials/309ef_00002.json: not a valid trial record: "
    )
    progress = {"trialsCompleted": 4, "trialsFailed": 0, "trialsRunning": 0, "trialsTotal": 5}
    assert "1 trial records unreadable" in progress_message(progress | fields)
