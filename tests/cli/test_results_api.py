"""``tunix_rt.results.load`` and ``tunix-rt sweep show --json/--csv``: a sweep's trials
with params, metrics and curves, for Ray Tune users who script their analysis."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tunix_rt import results
from tunix_rt.cli import app

ROOT = Path(__file__).resolve().parents[2]
SWEEP = ROOT / "submission_runs" / "m34_v1" / "sweep"  # a real local run's folder


@pytest.fixture
def sweep_folder(tmp_path: Path) -> Path:
    """The recorded sweep, plus Ray Tune's result.json for its best trial (local runs
    keep ray/ beside the records; the committed copy leaves it out)."""
    folder = tmp_path / "sweep-smoke"
    shutil.copytree(SWEEP, folder)
    best = json.loads((folder / "summary.json").read_text())["bestTrialId"]
    # Records written since curves were kept carry their own; this one is made older, so
    # its curve comes from Ray Tune's result.json (the other source).
    record_path = folder / "trials" / f"{best}.json"
    record = json.loads(record_path.read_text())
    record.pop("curve", None)
    record_path.write_text(json.dumps(record))
    summary = json.loads((folder / "summary.json").read_text())
    for trial in summary["trials"]:
        if trial["trialId"] == best:
            trial.pop("curve", None)
    (folder / "summary.json").write_text(json.dumps(summary))
    reports = [
        {"step": 25, "loss": 2.5, "learning_rate": 0.0025, "trial_id": best, "done": False},
        {"step": 50, "loss": 0.9, "learning_rate": 0.003, "trial_id": best, "done": False},
        {"step": 300, "loss": 0.09, "primary_score": 0.69, "trial_id": best, "done": True},
    ]
    (folder / "ray" / best).mkdir(parents=True)
    lines = [json.dumps(r) for r in reports] + ['{"step": 3']  # an interrupted last line
    (folder / "ray" / best / "result.json").write_text("\n".join(lines) + "\n")
    return folder


def test_load_gives_trials_best_and_curves(sweep_folder: Path) -> None:
    sweep = results.load(str(sweep_folder))
    summary = json.loads((sweep_folder / "summary.json").read_text())
    assert sweep.summary is not None and len(sweep.trials) == len(summary["trials"])
    assert sweep.best is not None and sweep.best.trial_id == summary["bestTrialId"]
    assert sweep.best.params == summary["bestParams"]
    curve = sweep.curve(sweep.best.trial_id)
    assert [p["step"] for p in curve] == [25, 50, 300]
    assert curve[-1]["primary_score"] == 0.69 and "done" not in curve[0]  # Tune's own keys out
    other = next(t for t in sweep.trials if t.trial_id != sweep.best.trial_id)
    assert other.curve and sweep.curve(other.trial_id) == other.curve  # its record's own
    other.curve = []
    assert sweep.curve(other.trial_id) == []  # neither kept: no curve, no error


def test_rows_are_flat_and_best_first(sweep_folder: Path) -> None:
    sweep = results.load(str(sweep_folder / "summary.json"))  # a summary.json works too
    rows = sweep.rows()
    assert sweep.best is not None and rows[0]["trial_id"] == sweep.best.trial_id
    scores = [r["primary_score"] for r in rows]
    assert scores == sorted(scores, reverse=True)
    assert all("params.learningRate" in r and "metrics.loss" in r for r in rows)


def test_sweep_show_json_and_csv(sweep_folder: Path) -> None:
    runner = CliRunner()
    out = runner.invoke(app, ["sweep", "show", str(sweep_folder), "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    summary = json.loads((sweep_folder / "summary.json").read_text())
    assert data["bestTrial"] == summary["bestTrialId"] and data["phase"] == "Succeeded"
    assert {t["trialId"] for t in data["trials"]} == {t["trialId"] for t in summary["trials"]}
    out = runner.invoke(app, ["sweep", "show", str(sweep_folder), "--csv"])
    assert out.exit_code == 0, out.output
    table = list(csv.DictReader(io.StringIO(out.stdout)))
    assert len(table) == len(summary["trials"])
    assert table[0]["trial_id"] == summary["bestTrialId"]
    assert float(table[0]["params.learningRate"]) == summary["bestParams"]["learningRate"]
    both = runner.invoke(app, ["sweep", "show", str(sweep_folder), "--json", "--csv"])
    assert both.exit_code != 0


def test_load_of_nothing_says_where(tmp_path: Path) -> None:
    with pytest.raises(results.ResultsError, match="no sweep results"):
        results.load(str(tmp_path))


def test_live_view_has_ray_tunes_status_line() -> None:
    """While a sweep runs: pending / running / terminated counts and the resources the
    running trials hold, as Ray Tune's status table reports them."""
    from rich.console import Console

    from tunix_rt.api.sweep_goals import Objective
    from tunix_rt.api.trial import TrialResult, TrialState
    from tunix_rt.cli.display import progress_view

    trials = [
        TrialResult(trial_id="a", sweep="s", state=TrialState.SUCCEEDED, primary_score=0.5),
        TrialResult(trial_id="b", sweep="s", state=TrialState.FAILED, error="boom"),
        TrialResult(trial_id="c", sweep="s", state=TrialState.RUNNING, steps=10),
        TrialResult(trial_id="d", sweep="s", state=TrialState.RUNNING, steps=20),
    ]
    console = Console(width=120, record=True)
    console.print(progress_view("s", trials, 6, Objective(), 300, 12.0, {"CPU": 1.0, "GPU": 0.5}))
    text = console.export_text()
    assert "pending 2 | running 2 | terminated 2 (1 failed)" in text
    assert "using 2 CPU, 1 GPU (1 CPU, 0.5 GPU a trial)" in text
