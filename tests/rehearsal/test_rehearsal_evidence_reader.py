"""One reader of a rehearsal's evidence, one error policy: a file that is there but is not
a JSON object is named with its problem; the CLI reports it, the operator logs it and
does not take it as a summary."""

from __future__ import annotations

from pathlib import Path

import pytest

from tunix_rt.contract.layout import RehearsalFiles, RehearsalLayout
from tunix_rt.contract.rehearsal_evidence import UnreadableEvidence, read_rehearsal_evidence
from tunix_rt.controller.rehearsal import read_evidence
from tunix_rt.rehearsal import result_from_store
from tunix_rt.storage import Store


def files_with(tmp_path: Path, summary: bytes) -> RehearsalFiles:
    store = Store(f"file://{tmp_path}/store")
    layout = RehearsalLayout.of("local", "r")
    store.write_bytes(layout.eval_summary_key, summary)
    store.write_text(layout.log_key, "a log\n")
    return RehearsalFiles(store, layout)


@pytest.mark.parametrize(
    ("summary", "problem"), [(b"{not json", "not JSON"), (b"[1, 2]", "not a JSON object")]
)
def test_an_unreadable_summary_is_named_by_both_callers(
    tmp_path: Path, summary: bytes, problem: str
) -> None:
    files = files_with(tmp_path, summary)
    found = read_rehearsal_evidence(files)
    assert found.eval_summary is None and found.log_uri is not None
    assert len(found.problems) == 1
    assert "eval_summary.json" in found.problems[0] and problem in found.problems[0]
    with pytest.raises(UnreadableEvidence, match=rf"eval_summary\.json: {problem}"):
        result_from_store(files.store, "local", "r")
    operator_files = RehearsalFiles(files.store, files.layout)
    evidence = read_evidence(operator_files)
    assert not evidence.has_summary and evidence.primary_score is None
    assert operator_files.problems == found.problems


def test_readable_evidence_has_no_problems(tmp_path: Path) -> None:
    files = files_with(tmp_path, b'{"primary_score": 0.5, "steps": 3}')
    result = result_from_store(files.store, "local", "r")
    assert result is not None and result.primary_score == 0.5 and result.steps == 3
    evidence = read_evidence(RehearsalFiles(files.store, files.layout))
    assert evidence.has_summary and evidence.primary_score == 0.5
