"""The controller writes status in one place: the patch holds only what changes, the
Events follow the rules, and every reason the controller gives is a named constant."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import kopf
import pytest

from tunix_rt.api.common import Phase
from tunix_rt.contract import reasons
from tunix_rt.contract.phases import Verdict
from tunix_rt.controller import status_writer
from tunix_rt.controller.status import Notice, set_condition, store_conditions, store_notice
from tunix_rt.controller.status_writer import (
    changes,
    write,
    write_failed,
    write_spec_ignored,
    write_store_health,
    write_verdict,
    write_waiting,
)

PACKAGE = Path(__file__).resolve().parents[2] / "operator" / "tunix_rt"


class Target:
    """A handler call as the writer sees it: a body, kopf's patch, the status."""

    def __init__(self, status: dict[str, Any] | None = None) -> None:
        self.body = kopf.Body(kopf.RawBody(metadata={"name": "s", "namespace": "ml"}))
        self.patch = kopf.Patch()
        self.status: dict[str, Any] = dict(status or {})


@pytest.fixture
def posted(monkeypatch: pytest.MonkeyPatch) -> list[Notice]:
    """The Events the writer posts (kopf's poster needs a running operator)."""
    notices: list[Notice] = []
    monkeypatch.setattr(status_writer, "post", lambda body, notice: notices.append(notice))
    return notices


def test_changes_are_the_keys_that_differ() -> None:
    current = {"phase": "Running", "message": "m", "trials": [1]}
    assert changes(current, {"phase": "Running", "message": "n", "bestTrial": None}) == {
        "message": "n"
    }


def test_write_patches_changes_and_keeps_the_status_in_step(posted: list[Notice]) -> None:
    target = Target({"phase": "Running", "message": "m"})
    notice = Notice("R", "said")
    assert write(target, {"phase": "Running", "message": "n"}, [notice, None])
    assert dict(target.patch["status"]) == {"message": "n"}
    assert target.status == {"phase": "Running", "message": "n"}
    assert posted == [notice]
    assert not write(target, {"message": "n"}, [notice], news_only=True)
    assert posted == [notice]  # nothing changed: no news


def test_failed_twice_warns_again_without_a_transition(posted: list[Notice]) -> None:
    target = Target({"phase": "Running"})
    write_failed(target, "Boom", "it broke", 3)
    assert target.status["phase"] == "Failed" and target.status["observedGeneration"] == 3
    assert posted[-1] == Notice("Boom", "Running -> Failed: it broke", warning=True)
    write_failed(target, "Boom", "it broke", 3)
    assert posted[-1] == Notice("Boom", "it broke", warning=True)


def test_verdict_event_carries_a_failure_reason_only(posted: list[Notice]) -> None:
    target = Target({"phase": "Pending"})
    write_verdict(target, Verdict(Phase.RUNNING, "TrialsRunning", "go"), {"phase": "Running"})
    write_verdict(target, Verdict(Phase.FAILED, "NoSummary", "gone"), {"phase": "Failed"})
    write_verdict(target, Verdict(Phase.FAILED, "NoSummary", "gone"), {"phase": "Failed"})
    assert posted == [
        Notice("Running", "Pending -> Running: go"),
        Notice("NoSummary", "Running -> Failed: gone", warning=True),
    ]


def test_waiting_says_a_new_reason_once(posted: list[Notice]) -> None:
    target = Target({"phase": "Pending", "message": "Sweep s is Running"})
    write_waiting(target, "Sweep s is Running", 1, "s")
    assert posted == []  # the same message: not news
    write_waiting(target, "Sweep s is Succeeded", 1, "s")
    assert posted == [Notice(reasons.WAITING_FOR_SWEEP, "Sweep s is Succeeded")]
    assert target.status["sourceSweep"] == "s"


def test_spec_ignored_condition_and_warning(posted: list[Notice]) -> None:
    target = Target({"phase": "Running"})
    write_spec_ignored(target, "Sweep", 2)
    (cond,) = target.status["conditions"]
    assert (cond["type"], cond["reason"], cond["status"]) == (
        reasons.SPEC_CHANGE_IGNORED,
        reasons.SPEC_CHANGE_IGNORED,
        "True",
    )
    assert posted == [Notice(reasons.SPEC_CHANGE_IGNORED, cond["message"], warning=True)]


def test_store_health_flips_degraded_with_one_event_each_way(posted: list[Notice]) -> None:
    target = Target({"phase": "Running"})
    write_store_health(target, "s3://b", None)
    assert posted == [] and "conditions" not in target.status  # never failed: no condition
    write_store_health(target, "s3://b", "timeout")
    write_store_health(target, "s3://b", "timeout")
    write_store_health(target, "s3://b", None)
    assert [(n.reason, n.warning) for n in posted] == [
        (reasons.STORE_UNAVAILABLE, True),
        (reasons.STORE_AVAILABLE, False),
    ]


def test_store_notice_only_on_a_flip() -> None:
    down = store_conditions([], "u", "e", 1)
    assert down is not None
    assert store_notice(down, down) is None
    up = set_condition(down, "Degraded", False, reasons.STORE_AVAILABLE, "back")
    assert store_notice(down, up) == Notice(reasons.STORE_AVAILABLE, "back")


def _reason_literals(path: Path) -> list[str]:
    """``reason="..."`` arguments and ``Notice("...")`` reasons written as literals."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Call):
            continue
        args = [k.value for k in node.keywords if k.arg == "reason"]
        if isinstance(node.func, ast.Name) and node.func.id == "Notice" and node.args:
            args.append(node.args[0])
        found += [
            f"{path.name}:{arg.lineno}"
            for arg in args
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str)
        ]
    return found


def test_controller_reasons_are_named_in_one_place() -> None:
    files = sorted((PACKAGE / "controller").glob("*.py")) + sorted(
        (PACKAGE / "kuberay").glob("*.py")
    )
    assert [hit for path in files for hit in _reason_literals(path)] == []
