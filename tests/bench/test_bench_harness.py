"""``make bench``'s harness (benchmarks/bench.py) in quick mode: it writes well-formed
results (every figure with its runs, median, spread, goal and definition; the README
table with a row per figure of issue 15) to the folder it is given, and never over the
recorded figures. No timing is asserted: quick sizes are too small to mean anything."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = ROOT / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import bench  # noqa: E402
import recording  # noqa: E402

FIGURE_FIELDS = {"median", "min", "max", "runs", "goal", "definition", "run"}
RUN_FIELDS = {"args", "date", "load_before", "load_after", "repeats"}


def run_quick(out: Path, sections: str, env: dict[str, str], repeats: int) -> dict[str, Any]:
    recorded = (BENCHMARKS / "results.json").read_bytes()
    readme = (BENCHMARKS / "README.md").read_bytes()
    cmd = [sys.executable, str(BENCHMARKS / "bench.py"), "--quick", "--repeats", str(repeats)]
    cmd += ["--only", sections, "--out-dir", str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (BENCHMARKS / "results.json").read_bytes() == recorded
    assert (BENCHMARKS / "README.md").read_bytes() == readme
    results: dict[str, Any] = json.loads((out / "results.json").read_text())
    return results


def check_figures(results: dict[str, Any], keys: list[str], out: Path, repeats: int) -> None:
    record = results["bench"]
    assert record["quick"] is True and record["repeats"] == repeats
    assert isinstance(record["load_before"], float) and record["machine"]
    for key in keys:
        figure = record["figures"][key]
        assert set(figure) == FIGURE_FIELDS, key
        assert len(figure["runs"]) == repeats and all(math.isfinite(v) for v in figure["runs"])
        assert figure["min"] <= figure["median"] <= figure["max"]
        assert results[key] == figure["median"]
        run = figure["run"]  # where the figure comes from: the command, when, the load
        assert set(run) == RUN_FIELDS and "--quick" in run["args"] and run["repeats"] == repeats
    table = (out / "README.md").read_text()
    assert bench.BEGIN in table and bench.END in table and "QUICK MODE" in table
    for key in bench.GOALS:
        assert f"`{key}`" in table
    for key in keys:  # each measured row names its run, and the run is told above the table
        row = next(line for line in table.splitlines() if f"`{key}`" in line)
        letter = row.split("|")[6].strip()
        assert letter and f"* {letter}: `bench.py " in table, row


@pytest.mark.slow
def test_quick_trainer_and_compile_figures(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    results = run_quick(tmp_path, "trainer,compile", subprocess_env, repeats=1)
    keys = ["trainer_vs_bare_ratio", "trainer_mfu_cpu", "compile_cache_ratio"]
    check_figures(results, keys, tmp_path, repeats=1)
    compile_runs = results["bench"]["details"]["compile"]["compile_seconds_per_trial"]
    assert len(compile_runs) == 1
    fresh, sweep = compile_runs[0]["fresh_processes"], compile_runs[0]["sweep"]
    assert len(fresh) == 2 and all(seconds > 0 for seconds in fresh)  # trial 1, a cache hit
    # In one sweep the second trial runs in the first one's worker: nothing to compile.
    assert len(sweep) == 2 and sweep[0] > 0 and sweep[1] < sweep[0] / 2, sweep


@pytest.mark.slow
def test_quick_sweep_figures(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    """Overhead, ASHA vs FIFO, the three new samplers vs random and the demo, each through
    the real driver and Ray Tune with the stand-in workload; one repeat (8 sweeps of 2 trials)."""
    results = run_quick(tmp_path, "overhead,search,demo", subprocess_env, repeats=1)
    keys = ["tune_overhead_fraction", "asha_step_fraction", "asha_score_gap"]
    keys += [f"search_{alg}_vs_random" for alg in bench.SEARCHERS]
    check_figures(results, [*keys, "demo_parallel_efficiency"], tmp_path, repeats=1)
    assert 0 < results["asha_step_fraction"] <= 1  # ASHA never runs more steps than FIFO
    for row in results["bench"]["details"]["search"]["per_seed"]:
        assert row["fifo_steps"] > 0 and row["random_best"] is not None


@pytest.mark.slow
def test_quick_warm_start_figure(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    """``warm_start_trials_ratio``: one ratio per seed (5 in quick mode), the searches in
    process, and the same sweeps through the real driver giving the same trials."""
    results = run_quick(tmp_path, "warmstart", subprocess_env, repeats=1)
    figure = results["bench"]["figures"]["warm_start_trials_ratio"]
    assert set(figure) == FIGURE_FIELDS and figure["goal"] == "<= 0.6"
    assert len(figure["runs"]) == 5 and all(r > 0 for r in figure["runs"])
    assert results["warm_start_trials_ratio"] == figure["median"]
    detail = results["bench"]["details"]["warmstart"]
    assert detail["driver_check"]["same_as_simulation"] == {
        "earlier": True,
        "cold": True,
        "warm": True,
    }
    for row in detail["per_seed"]:
        assert 1 <= row["cold_n"] <= 12 and row["reused"] > 0
    assert "`warm_start_trials_ratio`" in (tmp_path / "README.md").read_text()


def test_external_scripts_merge_their_figures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """benchmarks/tunix_backend.py (another owner's) runs when present, in quick mode, and the
    figure it merges shows in the table; an absent script is reported as such."""
    folder = tmp_path / "benchmarks"
    folder.mkdir()
    (folder / "tunix_backend.py").write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(BENCHMARKS)!r})\n"
        "from recording import merge_results, quick\n"
        "merge_results({'tunix_vs_bare_ratio': 0.97, 'tunix_quick': quick()})\n"
    )
    monkeypatch.setattr(bench, "HERE", folder)
    out = tmp_path / "out"
    out.mkdir()
    settings = bench.Settings(quick=True, repeats=1, out=out, readme=out / "README.md")
    figures, ran = bench.external_section(settings)
    assert figures == []
    assert ran["operator_load.py"] == "absent"
    assert ran["tunix_backend.py"]["exit"] == 0
    results = recording.read_results(out / "results.json")
    assert results["tunix_vs_bare_ratio"] == 0.97 and results["tunix_quick"] is True
    record = {"date": "d", "machine": "m", "load_before": 0.1, "load_after": 0.2}
    record |= {"repeats": 1, "seconds": 1.0, "quick": True, "figures": {}}
    assert "| **0.970** |" in bench.table(record, results)
