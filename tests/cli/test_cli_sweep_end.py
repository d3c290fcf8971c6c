"""``sweep run`` says why a sweep ended, every way it ends, and shows the trials; every
hint repeats the command as the user gave it.

The driver here is a script that records an ending the way the Tune driver does (trial
records, ``summary.json`` with its reason, its session in ``sessions.json``, files moved
to ``archive/``) and exits with the driver's code: the CLI is the real one, reading only
what the driver recorded. The real driver's endings (goal, interrupt) are run in
``test_cli_sweep_runs.py``.
"""

from __future__ import annotations

import json
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import tunix_rt.cli as cli
from support.manifests import write_sweep
from support.trials import lr_trial
from tunix_rt.api.common import Phase
from tunix_rt.api.sweep import SweepSpec
from tunix_rt.api.trial import SweepResult, TrialResult, TrialState
from tunix_rt.cli import sweep as sweep_cli
from tunix_rt.contract.exits import ExitCode
from tunix_rt.storage import Store

runner = CliRunner()
NAME = "ends"
SPEC: dict[str, Any] = {
    "searchSpace": {"learningRate": {"type": "loguniform", "low": 1e-4, "high": 3e-2}},
    "maxTrials": 3,
    "objective": {"goal": 0.9},
    "budget": {"smokeSteps": 20},
}

FAKE_DRIVER = textwrap.dedent(
    """\
    import json, sys
    from datetime import UTC, datetime
    from tunix_rt.api.trial import DriverSession, DriverSessions, SweepResult, TrialResult
    from tunix_rt.storage import Store

    plan = json.loads(open(sys.argv[1]).read())
    store = Store(plan["store"])
    prefix = f"local/{plan['sweep']}"
    now = datetime.now(UTC)
    if plan.get("archive"):
        dest = f"{prefix}/archive/{now.strftime('%Y%m%dT%H%M%SZ')}"
        for key in store.list(prefix + "/"):
            if "/archive/" in key or "/logs/" in key:
                continue
            store.write_bytes(dest + key[len(prefix):], store.read_bytes(key))
            store.delete(key)
    for raw in plan.get("trials", []):
        trial = TrialResult.model_validate(raw).model_copy(update={"started_at": now})
        store.write_json(f"{prefix}/trials/{trial.trial_id}.json", trial)
    if plan.get("summary"):
        summary = SweepResult.model_validate(plan["summary"])
        store.write_json(f"{prefix}/summary.json", summary)
    code, message = plan["exit"], plan.get("message")
    ended = DriverSession(
        started_at=now, seen_at=now, ended_at=now, exit_code=code, message=message
    )
    store.write_json(f"{prefix}/sessions.json", DriverSessions(sessions=[ended]))
    sys.exit(code)
    """
)


def trial(trial_id: str, lr: float, score: float | None, state: TrialState) -> TrialResult:
    return lr_trial(NAME, trial_id, lr, score, state, steps=20, wall_seconds=2.0)


class Sweep:
    """A sweep manifest, its store, and ``sweep run`` of it with a recorded ending."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.tmp_path = tmp_path
        self.file = tmp_path / "my sweep.yaml"
        self.write_spec(SPEC)
        self.storage = f"file://{tmp_path}/store"
        self.store = Store(self.storage)
        self.folder = tmp_path / "store" / "local" / NAME
        self.driver = tmp_path / "driver.py"
        self.driver.write_text(FAKE_DRIVER)
        self.plan = tmp_path / "plan.json"
        monkeypatch.setattr(
            sweep_cli, "driver_cmd", lambda *a: [sys.executable, str(self.driver), str(self.plan)]
        )

    def write_spec(self, spec: dict[str, Any]) -> None:
        write_sweep(self.file, "x", spec)

    def earlier(self, *trials: TrialResult, summary: SweepResult | None = None) -> None:
        """What an earlier run left: its spec, trial records, maybe its summary."""
        self.store.write_json(f"local/{NAME}/spec.json", SweepSpec.model_validate(SPEC))
        for t in trials:
            self.store.write_json(f"local/{NAME}/trials/{t.trial_id}.json", t)
        if summary is not None:
            self.store.write_json(f"local/{NAME}/summary.json", summary)

    def run(self, code: int, *extra: str, **plan: Any) -> Any:
        """``sweep run FILE --name ends --storage S`` whose driver records ``plan``."""
        trials = [t.to_wire() for t in plan.pop("trials", [])]
        summary = plan.pop("summary", None)
        self.plan.write_text(
            json.dumps(
                {
                    "store": self.storage,
                    "sweep": NAME,
                    "exit": code,
                    "trials": trials,
                    "summary": summary.to_wire() if summary is not None else None,
                    **plan,
                }
            )
        )
        args = ["sweep", "run", str(self.file), "--name", NAME, "--storage", self.storage]
        return runner.invoke(cli.app, [*args, "--no-live", *extra], env={"COLUMNS": "200"})

    def again(self, *extra: str) -> str:
        """The command a hint should print: the user's, options kept, quoted."""
        return " ".join(
            [
                "tunix-rt sweep run",
                f"'{self.file}'",
                f"--name {NAME} --storage {self.storage}",
                *extra,
            ]
        )


@pytest.fixture
def sweep(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Sweep:
    return Sweep(tmp_path, monkeypatch)


def summary(reason: str, message: str, trials: list[TrialResult], **fields: Any) -> SweepResult:
    """The summary of this sweep (three trials planned, finished now): ``fields`` change
    the defaults."""
    finished = datetime.now(UTC) + timedelta(seconds=5)
    defaults = {"sweep": NAME, "namespace": "local", "trials_planned": 3, "finished_at": finished}
    return SweepResult(reason=reason, message=message, trials=trials, **(defaults | fields))


def rows(output: str) -> dict[str, str]:
    """The trial table: trial id -> state."""
    out = {}
    for line in output.splitlines():
        cells = line.split()
        if len(cells) > 3 and cells[0].isdigit() and cells[1].startswith("t"):
            out[cells[1]] = cells[3] if cells[2] == "*" else cells[2]
    return out


ENDINGS = [
    (
        "GoalReached",
        "best trial t0: primary_score=1.0 (trial t0 reached objective.goal primary_score=0.9)",
        "objective.goal reached",
    ),
    (
        "BudgetExhausted",
        "best trial t0: primary_score=1.0 (budget.acceleratorHours 0.001 reached (0.0012 used))",
        "a sweep budget was reached",
    ),
    (
        "BudgetExhausted",
        "best trial t0: primary_score=1.0 (budget.wallClockSeconds 30 reached (31 s used))",
        "a sweep budget was reached",
    ),
    ("Succeeded", "best trial t0: primary_score=1.0", "every planned trial ran"),
]


@pytest.mark.parametrize(("reason", "message", "words"), ENDINGS)
def test_a_sweep_that_ended_says_why_and_shows_its_trials(
    sweep: Sweep, reason: str, message: str, words: str
) -> None:
    trials = [trial("t0", 3e-3, 1.0, TrialState.SUCCEEDED)]
    result = sweep.run(
        ExitCode.OK, trials=trials, summary=summary(reason, message, trials), message=message
    )
    assert result.exit_code == 0, result.output
    assert f"sweep succeeded ({words}): {message}" in result.output
    assert rows(result.output) == {"t0": "Succeeded"}
    assert f"next: tunix-rt promote {sweep.storage}/local/{NAME}/summary.json" in result.output


def test_a_failed_sweep_says_why_and_how_to_start_over_with_the_same_options(
    sweep: Sweep,
) -> None:
    trials = [
        trial("t0", 0.5, None, TrialState.FAILED),
        trial("t1", 0.6, None, TrialState.FAILED),
    ]
    message = "2 trial(s) failed, more than maxFailedTrials (1); first error: diverged"
    result = sweep.run(
        ExitCode.FAILED,
        trials=trials,
        summary=summary("TooManyFailedTrials", message, trials, phase=Phase.FAILED),
        message=message,
    )
    assert result.exit_code == ExitCode.FAILED, result.output
    assert f"sweep failed (too many trials failed): {message}" in result.output
    assert rows(result.output) == {"t0": "Failed", "t1": "Failed"}
    assert f"to start over: {sweep.again('--fresh')}" in result.output


def test_an_interrupted_sweep_shows_its_cut_trials_as_interrupted(sweep: Sweep) -> None:
    message = "sweep interrupted with 1 of 3 trials finished; run the same command again"
    trials = [
        trial("t0", 3e-3, 0.8, TrialState.SUCCEEDED),
        trial("t1", 1e-3, None, TrialState.RUNNING),
    ]
    result = sweep.run(ExitCode.INTERRUPTED, trials=trials, message=message)
    assert result.exit_code == ExitCode.INTERRUPTED, result.output
    assert f"sweep interrupted: {message}" in result.output
    assert rows(result.output) == {"t0": "Succeeded", "t1": "Interrupted"}
    assert "1 of 3 trials finished" in result.output
    assert f"to resume: {sweep.again()}" in result.output
    # sweep show agrees: the driver is gone, so the cut trial is not Running.
    shown = runner.invoke(cli.app, ["sweep", "show", str(sweep.folder)], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    assert rows(shown.output) == {"t0": "Succeeded", "t1": "Interrupted"}
    assert "Running" not in shown.output


def test_a_rerun_says_it_resumes_and_from_what(sweep: Sweep) -> None:
    sweep.earlier(
        trial("t0", 3e-3, 0.8, TrialState.SUCCEEDED).model_copy(
            update={"finished_at": datetime(2026, 1, 1, tzinfo=UTC)}
        ),
        trial("t1", 1e-3, None, TrialState.RUNNING),
    )
    done = [
        trial("t1", 1e-3, 0.5, TrialState.SUCCEEDED),
        trial("t2", 2e-3, 0.6, TrialState.SUCCEEDED),
    ]
    everything = [trial("t0", 3e-3, 0.8, TrialState.SUCCEEDED), *done]
    result = sweep.run(
        ExitCode.OK,
        trials=done,
        summary=summary("Succeeded", "best trial t0: primary_score=0.8", everything),
    )
    assert result.exit_code == 0, result.output
    assert (
        f"resuming sweep {NAME} from {sweep.storage}/local/{NAME}: 1 of 3 trials finished "
        "earlier, 1 cut short (they continue)"
    ) in " ".join(result.output.split())
    # The trial that finished in the earlier run is counted, not announced again.
    assert "trial t0 succeeded" not in result.output
    assert "[2/3] trial t1 succeeded" in result.output
    assert "[3/3] trial t2 succeeded" in result.output


def test_a_finished_sweep_run_again_says_so_and_how_to_run_it_again(sweep: Sweep) -> None:
    trials = [trial("t0", 3e-3, 1.0, TrialState.SUCCEEDED)]
    earlier = summary(
        "GoalReached",
        "best trial t0: primary_score=1.0 (trial t0 reached objective.goal)",
        trials,
        finished_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    sweep.earlier(*trials, summary=earlier)
    result = sweep.run(ExitCode.OK, message=earlier.message)
    assert result.exit_code == 0, result.output
    assert "sweep succeeded (objective.goal reached)" in result.output
    text = " ".join(result.output.split())
    assert "already finished (at 2026-01-01 00:00:00 UTC); nothing was re-run" in text
    assert f"To run it again: {sweep.again('--fresh')}" in text
    assert rows(result.output) == {"t0": "Succeeded"}


def test_fresh_does_not_replay_the_archived_trials_and_says_where_they_went(
    sweep: Sweep,
) -> None:
    old = [
        trial(f"old{i}", 1e-3, 0.5, TrialState.SUCCEEDED).model_copy(
            update={
                "started_at": datetime(2026, 1, 1, tzinfo=UTC),
                "finished_at": datetime(2026, 1, 1, tzinfo=UTC),
            }
        )
        for i in range(3)
    ]
    sweep.earlier(*old, summary=summary("Succeeded", "best trial old0", old))
    new = [trial("t0", 3e-3, 1.0, TrialState.SUCCEEDED)]
    result = sweep.run(
        ExitCode.OK,
        "--fresh",
        archive=True,
        trials=new,
        summary=summary("GoalReached", "best trial t0: primary_score=1.0", new),
    )
    assert result.exit_code == 0, result.output
    assert "starting over: the earlier run's results move to" in result.output
    assert "old0" not in result.output and "/3]" in result.output
    assert "[1/3] trial t0 succeeded" in result.output
    archived = sorted((sweep.folder / "archive").iterdir())
    assert len(archived) == 1 and (archived[0] / "trials" / "old0.json").exists()
    where = f"{sweep.storage}/local/{NAME}/archive/{archived[0].name}"
    assert f"earlier results archived to {where}" in result.output


def test_a_refused_rerun_says_which_fields_changed_and_keeps_the_options(sweep: Sweep) -> None:
    sweep.earlier(trial("t0", 3e-3, 0.8, TrialState.SUCCEEDED))
    sweep.write_spec({**SPEC, "maxTrials": 4, "budget": {"smokeSteps": 30}})
    reason = "the spec of sweep 'ends' changed since its earlier run; run it with --fresh"
    result = sweep.run(ExitCode.INVALID, message=reason)
    assert result.exit_code == ExitCode.INVALID, result.output
    text = " ".join(result.output.split())
    assert f"error: {reason}" in text
    assert "changed since the earlier run: budget.smokeSteps: 20 -> 30; maxTrials: 3 -> 4" in text
    assert f"to start over (earlier results move to archive/): {sweep.again('--fresh')}" in text
    assert "resuming" not in text


def test_a_failed_driver_says_why_with_credentials_masked(sweep: Sweep) -> None:
    """No summary (the driver failed before its verdict): its recorded reason, the
    trials so far, how to resume or start over; a credential in the reason is masked."""
    reason = "StoreError: cannot write s3://AKIAEXAMPLE:wJalrXUtnFEMIK7MDENG@bucket/x"
    trials = [trial("t0", 3e-3, None, TrialState.RUNNING)]
    result = sweep.run(ExitCode.FAILED, trials=trials, message=reason)
    assert result.exit_code == ExitCode.FAILED, result.output
    assert "wJalrXUtnFEMIK7MDENG" not in result.output
    assert "error: StoreError: cannot write s3://***@bucket/x" in result.output
    assert rows(result.output) == {"t0": "Interrupted"}
    text = " ".join(result.output.split())
    assert f"to resume: {sweep.again()}; to start over: {sweep.again('--fresh')}" in text
