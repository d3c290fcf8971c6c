"""The tunix-rt CLI without Ray: help, validate, crds, sweep show, promote, plugins."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from typer.testing import CliRunner

import tunix_rt.cli as cli
from support.cli import invoke, validate_text
from support.imports import loaded_by
from support.sweeps import GOOD_SWEEP_YAML as GOOD
from support.trials import lr_trial
from tunix_rt.api import crd
from tunix_rt.api.manifests import parse_documents
from tunix_rt.api.rehearsal import Rehearsal
from tunix_rt.api.sweep import SweepSpec
from tunix_rt.api.trainer import TrainerConfig
from tunix_rt.api.trial import SweepResult, TrialResult, TrialState
from tunix_rt.storage import Store

runner = CliRunner()

BAD = GOOD.replace("low: 1.0e-4", "low: 0.5")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ((), ["sweep", "promote", "validate", "crds"]),
        (("sweep",), ["run", "show"]),
        (("sweep", "run"), ["--storage", "--fresh", "resume"]),
        (("sweep", "show"), ["summary.json"]),
        (("promote",), ["--output", "--steps", "Rehearsal"]),
        (("validate",), ["field"]),
        (("crds",), ["--write"]),
    ],
)
def test_help(args: tuple[str, ...], words: list[str]) -> None:
    result = invoke(*args, "--help")
    assert result.exit_code == 0, result.output
    for word in words:
        assert word in result.output


def test_cli_import_is_light() -> None:
    assert loaded_by(["tunix_rt.cli"], ["ray", "jax", "optuna", "flax"]) == []


def test_validate_good_and_bad(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    result = validate_text(good, GOOD)
    assert result.exit_code == 0 and "Sweep/good is valid" in result.output

    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: ConfigMap\nmetadata: {name: c}\n---\n" + BAD)
    result = invoke("validate", str(good), str(bad))
    assert result.exit_code == 2
    assert "spec.searchSpace.learningRate.low" in result.output
    assert "low (0.5) must be less than high (0.03)" in result.output
    assert "ConfigMap/c skipped" in result.output

    result = validate_text(tmp_path / "broken.yaml", "kind: Sweep\nspec: [1, 2\n")
    assert result.exit_code == 2 and "not valid YAML" in result.output
    assert invoke("validate", str(tmp_path / "missing.yaml")).exit_code == 2


def test_validate_console_script_exits_non_zero(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD)
    exe = Path(sys.executable).with_name("tunix-rt")
    out = subprocess.run([str(exe), "validate", str(bad)], capture_output=True, text=True)
    assert out.returncode == 2
    assert "spec.searchSpace.learningRate.low" in out.stdout + out.stderr


def test_sweep_run_rejects_an_invalid_manifest_before_starting_anything(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD.replace("high: 3.0e-2", "high: 3.0e-2, step: 2"))
    result = invoke("sweep", "run", str(bad), "--storage", f"file://{tmp_path}/runs")
    assert result.exit_code == 2
    assert "spec.searchSpace.learningRate.step: Extra inputs are not permitted" in result.output
    assert not (tmp_path / "runs").exists()


def test_crds_prints_and_writes(tmp_path: Path, repo_root: Path) -> None:
    result = invoke("crds")
    assert result.exit_code == 0
    assert result.output == crd.render_all()
    assert invoke("crds", "--write", str(tmp_path)).exit_code == 0
    for name in ("tunixrt.io_sweeps.yaml", "tunixrt.io_rehearsals.yaml"):
        assert (tmp_path / name).read_text() == (repo_root / "crds" / name).read_text()


# ----------------------------------------------------------------------------- results


def trial(
    trial_id: str, lr: float, score: float | None, state: TrialState = TrialState.SUCCEEDED
) -> TrialResult:
    return lr_trial(
        "demo",
        trial_id,
        lr,
        score,
        state,
        steps=40,
        wall_seconds=3.0,
        started_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


TRIALS = [
    trial("t0", 0.001, 0.25),
    trial("t1", 0.003, 0.75),
    trial("t2", 0.5, None, TrialState.FAILED),
    trial("t3", 0.01, 0.5, TrialState.STOPPED),
]


def write_sweep(root: Path, *, summary: bool = True) -> Path:
    store = Store(f"file://{root}")
    spec = SweepSpec.model_validate(
        {
            "searchSpace": {"learningRate": {"type": "loguniform", "low": 1e-4, "high": 0.6}},
            "maxTrials": 4,
            "budget": {"smokeSteps": 40},
        }
    )
    store.write_json("local/demo/spec.json", spec)
    for t in TRIALS:
        store.write_json(f"local/demo/trials/{t.trial_id}.json", t)
    if summary:
        result = SweepResult(
            sweep="demo",
            namespace="local",
            trials=TRIALS,
            best_trial_id="t1",
            best_params={"learningRate": 0.003},
            primary_score=0.75,
            trials_planned=4,
            base_config=spec.trial_config({}).to_wire(),
            message="best trial t1",
        )
        store.write_json("local/demo/summary.json", result)
    return root / "local" / "demo"


def row_order(output: str, ids: list[str]) -> list[str]:
    lines = [
        line
        for line in output.splitlines()
        if any(f" {i} " in line or f" {i} *" in line for i in ids)
    ]
    return [next(i for i in ids if f" {i} " in line or f" {i} *" in line) for line in lines]


@pytest.mark.parametrize("form", ["dir", "summary", "uri"])
def test_sweep_show_sorts_by_primary_score(tmp_path: Path, form: str) -> None:
    folder = write_sweep(tmp_path)
    location = {
        "dir": str(folder),
        "summary": str(folder / "summary.json"),
        "uri": f"file://{folder}",
    }[form]
    result = invoke("sweep", "show", location)
    assert result.exit_code == 0, result.output
    assert row_order(result.output, ["t0", "t1", "t2", "t3"]) == ["t1", "t3", "t0", "t2"]
    assert "best trial t1" in result.output and "t1 *" in result.output
    assert "4/4 finished" in result.output


def test_sweep_show_while_running_and_when_empty(tmp_path: Path) -> None:
    folder = write_sweep(tmp_path, summary=False)
    result = invoke("sweep", "show", str(folder))
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())  # the title wraps where the tmp path is long
    assert "running, or interrupted" in said and "best trial t1" in said
    empty = invoke("sweep", "show", str(tmp_path / "nothing"))
    assert empty.exit_code == 1 and "no sweep results" in " ".join(empty.output.split())


def test_promote_writes_config_and_rehearsal(tmp_path: Path) -> None:
    folder = write_sweep(tmp_path)
    out = tmp_path / "best.yaml"
    result = invoke("promote", str(folder / "summary.json"), "-o", str(out), "--steps", "900")
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert text.startswith("# Trainer config promoted from sweep local/demo, best trial t1")
    config = TrainerConfig.model_validate(yaml.safe_load(text))
    assert config.learning_rate == 0.003 and config.max_steps == 900
    manifest = yaml.safe_load((tmp_path / "best-rehearsal.yaml").read_text())
    rehearsal = Rehearsal.model_validate(manifest)
    assert rehearsal.metadata.name == "demo-best"
    assert rehearsal.metadata.annotations == {
        "tunixrt.io/source-sweep": "demo",
        "tunixrt.io/source-trial": "t1",
        "tunixrt.io/source-primary-score": "0.7500",
    }
    assert rehearsal.spec.trainer == config
    # The next step, as typed; both files pass validate (a trainer config file too).
    assert f"next: tunix-rt rehearsal run {tmp_path / 'best-rehearsal.yaml'}" in result.output
    checked = invoke("validate", str(out), str(tmp_path / "best-rehearsal.yaml"))
    assert checked.exit_code == 0, checked.output
    assert "TrainerConfig/builtin is valid" in checked.output
    # Without --steps the config is exactly what the best trial ran (the smoke cap).
    assert (
        invoke(
            "promote",
            str(folder),
            "-o",
            str(tmp_path / "same.yaml"),
            "--rehearsal",
            str(tmp_path / "r.yaml"),
        ).exit_code
        == 0
    )
    same = TrainerConfig.model_validate(yaml.safe_load((tmp_path / "same.yaml").read_text()))
    assert same.max_steps == 40 and same.learning_rate == 0.003


def test_promoted_files_read_back_as_written_whatever_the_trial_id(tmp_path: Path) -> None:
    """Ray Tune's trial ids are hex: ``1234e_00001`` is plain to PyYAML but the number
    12340 to kubectl (go-yaml), and the Rehearsal would be refused for its annotation."""
    folder = write_sweep(tmp_path)
    summary = SweepResult.model_validate_json((folder / "summary.json").read_text())
    renamed = summary.model_copy(update={"best_trial_id": "1234e_00001"})
    (folder / "summary.json").write_text(renamed.model_dump_json(by_alias=True))
    out = tmp_path / "best.yaml"
    assert invoke("promote", str(folder), "-o", str(out)).exit_code == 0
    (doc,) = parse_documents((tmp_path / "best-rehearsal.yaml").read_text())
    rehearsal = Rehearsal.model_validate(doc)
    assert rehearsal.metadata.annotations["tunixrt.io/source-trial"] == "1234e_00001"
    checked = invoke("validate", str(tmp_path / "best-rehearsal.yaml"))
    assert checked.exit_code == 0, checked.output


def test_promote_needs_a_finished_sweep_with_a_best_trial(tmp_path: Path) -> None:
    folder = write_sweep(tmp_path, summary=False)
    result = invoke("promote", str(folder), "-o", str(tmp_path / "x.yaml"))
    assert result.exit_code == 1 and "not finished" in result.output
    store = Store(f"file://{tmp_path}")
    store.write_json(
        "local/demo/summary.json",
        SweepResult(sweep="demo", namespace="local", message="no trial reported primary_score"),
    )
    result = invoke("promote", str(folder), "-o", str(tmp_path / "x.yaml"))
    assert result.exit_code == 1 and "no best trial" in result.output
    assert not (tmp_path / "x.yaml").exists()


# ----------------------------------------------------------------------------- plugins


@pytest.fixture
def plugin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    pkg = tmp_path / "tunix_rt_test_plugins"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    head = "import typer\napp = typer.Typer()\n\n@app.command()\n"
    body = "(path: str) -> None:\n    print('{0}', path)\n"
    (pkg / "single.py").write_text(head + "def single" + body.format("single"))
    (pkg / "group.py").write_text(head + "def run" + body.format("run"))
    (pkg / "broken.py").write_text("import not_a_module_anywhere\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return pkg


def test_plugins_register_without_edits(plugin_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plugins = {
        "single": "tunix_rt_test_plugins.single",
        "group": "tunix_rt_test_plugins.group",
        "broken": "tunix_rt_test_plugins.broken",
        "absent": "tunix_rt_test_plugins.absent",
    }
    monkeypatch.setattr(cli, "PLUGINS", plugins)
    app = typer.Typer(cls=cli.TunixGroup)
    app.command("validate")(cli.validate_cmd.validate)
    app.command("crds")(cli.crds_cmd.crds)

    def run(*args: str) -> Any:
        return runner.invoke(app, list(args), env={"COLUMNS": "200"})

    listed = run("--help")
    assert listed.exit_code == 0
    for name in ("validate", "single", "group", "broken"):
        assert name in listed.output
    assert "absent" not in listed.output
    assert run("single", "x").output.strip() == "single x"  # one command named like the plugin
    assert run("group", "run", "y").output.strip() == "run y"  # otherwise a group
    broken = run("broken")
    assert broken.exit_code == 2 and "not_a_module_anywhere" in broken.output
    assert run("absent").exit_code != 0


def test_real_plugins_show_up_when_present() -> None:
    result = invoke("--help")
    for name, module in cli.PLUGINS.items():
        if cli._module_exists(module):
            assert name in result.output


def test_progress_view_and_lines() -> None:
    from rich.console import Console

    from tunix_rt.api.sweep_goals import Objective
    from tunix_rt.cli.display import ProgressLines, progress_view

    running = trial("t9", 0.002, None, TrialState.RUNNING).model_copy(
        update={"steps": 20, "metrics": {"loss": 1.25}}
    )
    console = Console(record=True, width=160)
    console.print(progress_view("demo", [*TRIALS, running], 5, Objective(), 40, 12.0))
    text = console.export_text()
    assert "trials 4/5 done, 1 failed" in text
    assert "running t9: step 20/40, loss 1.2500" in text
    assert "best so far t1: primary_score=0.7500" in text

    out = Console(record=True, width=160)
    lines = ProgressLines(
        out,
        SweepSpec.model_validate(
            {"searchSpace": {"learningRate": {"type": "uniform", "low": 0.001, "high": 0.01}}}
        ),
    )
    lines.update([running], 2)
    lines.update([running], 2)  # no change, no line
    lines.update(
        [running.model_copy(update={"state": TrialState.SUCCEEDED, "primary_score": 0.5})], 2
    )
    assert out.export_text().splitlines() == [
        "[0/2] trial t9 running (learningRate=0.002)",
        "[1/2] trial t9 succeeded, primary_score=0.5000",
    ]


def test_missing_train_extra_hint_prints_what_to_type(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The hint survives the console's markup: ``[train]`` is printed, not eaten as a tag."""
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a)
    )
    manifest = tmp_path / "sweep.yaml"
    manifest.write_text(GOOD)
    result = invoke("sweep", "run", str(manifest))
    text = " ".join(result.output.split())
    assert result.exit_code != 0
    assert "pip install 'tunix-rt[train]'" in text, text
    assert "uv sync --frozen --all-extras" in text, text
