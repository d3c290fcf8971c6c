"""The CLI never crashes and never misreports: user text printed as written (not rich
markup), validate's kinds, unwritable stores and folders in one line, the real reason of
an exit 2, what ``sweep show`` says about unfinished sweeps, 80 columns, store retries."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from support.cli import invoke, validate_text
from support.evidence import write_evidence
from support.sweeps import GOOD_SWEEP_YAML as GOOD
from tunix_rt.api.sweep import SweepSpec
from tunix_rt.api.trial import (
    DriverSession,
    DriverSessions,
    SweepResult,
    TrialResult,
    TrialState,
)
from tunix_rt.cli import sweep as sweep_cli
from tunix_rt.cli.display import ProgressLines
from tunix_rt.cli.sweep_process import CLI_MARK
from tunix_rt.contract.exits import ExitCode
from tunix_rt.storage import Store

EXE = Path(sys.executable).with_name("tunix-rt")
ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "examples" / "sweep-smoke.yaml"
TRAINER = ROOT / "examples" / "trainer-smoke.yaml"


def console(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "COLUMNS": "200", **env}
    return subprocess.run([str(EXE), *args], capture_output=True, text=True, env=full, timeout=120)


def unwritable(tmp_path: Path) -> Path:
    """A folder no one can create, root included: its parent is a regular file."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n")
    return blocker / "x"


# ----------------------------------------------------------------------------- 1. markup

MARKUP = ["[/x]", "[red]lr", "[bold]"]


def test_validate_prints_names_and_values_as_written(tmp_path: Path) -> None:
    manifest = tmp_path / "m.yaml"
    manifest.write_text(
        textwrap.dedent(
            """\
            apiVersion: tunixrt.io/v1alpha1
            kind: Sweep
            metadata: {name: "[/x]"}
            spec:
              algorithm: "[bold]"
              searchSpace:
                "[red]lr": {type: uniform, low: 0.001, high: 0.01}
            """
        )
    )
    result = invoke("validate", str(manifest))
    assert result.exit_code == ExitCode.INVALID, result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    assert "Sweep/[/x]: invalid" in result.output
    assert "spec.searchSpace.[red]lr (key)" in result.output
    assert "metadata.name: '[/x]' is not a lowercase DNS-1123 name" in result.output
    assert "spec.algorithm" in result.output
    out = console("validate", str(manifest))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "[/x]" in out.stderr and "[red]lr" in out.stderr


def test_validate_file_names_with_markup(tmp_path: Path) -> None:
    folder = tmp_path / "[red]dir"
    folder.mkdir()
    path = folder / "[bold]x.yaml"
    path.write_text(GOOD)
    result = invoke("validate", str(path), str(folder / "[/x]missing.yaml"))
    assert result.exit_code == 2, result.output
    assert "[red]dir/[bold]x.yaml: Sweep/good is valid" in result.output
    assert "[red]dir/[/x]missing.yaml: invalid" in result.output
    assert isinstance(result.exception, SystemExit)


def markup_sweep(root: Path, *, summary: bool = True) -> Path:
    store = Store(f"file://{root}")
    trials = [
        TrialResult(
            trial_id=f"t{i}",
            sweep="demo",
            namespace="local",
            params={"[red]lr": "[/x]", "[bold]": i},
            state=TrialState.SUCCEEDED,
            primary_score=0.1 * i,
            steps=10,
        )
        for i in range(2)
    ]
    for t in trials:
        store.write_json(f"local/demo/trials/{t.trial_id}.json", t)
    if summary:
        store.write_json(
            "local/demo/summary.json",
            SweepResult(
                sweep="demo",
                namespace="local",
                trials=trials,
                best_trial_id="t1",
                best_params=trials[1].params,
                primary_score=0.1,
                trials_planned=2,
                message="[bold]done [/x]",
            ),
        )
    return root / "local" / "demo"


def test_sweep_show_prints_params_and_messages_as_written(tmp_path: Path) -> None:
    folder = markup_sweep(tmp_path)
    result = invoke("sweep", "show", str(folder))
    assert result.exit_code == 0, result.output
    assert "[red]lr=[/x]" in result.output
    assert "[bold]done [/x]" in result.output
    missing = invoke("sweep", "show", str(tmp_path / "[/x]"))
    assert missing.exit_code == ExitCode.FAILED
    assert "error: no sweep results at" in missing.output and "[/x]" in missing.output
    assert isinstance(missing.exception, SystemExit)


def test_progress_lines_print_params_as_written() -> None:
    from rich.console import Console

    out = Console(record=True, width=160)
    spec = {"searchSpace": {"learningRate": {"type": "uniform", "low": 0.001, "high": 0.01}}}
    lines = ProgressLines(out, SweepSpec.model_validate(spec))
    running = TrialResult(
        trial_id="t[/x]", sweep="d", namespace="local", params={"[red]lr": "[/x]"}
    ).model_copy(update={"state": TrialState.RUNNING})
    failed = running.model_copy(update={"state": TrialState.FAILED, "error": "boom [/x]"})
    lines.update([running], 1)
    lines.update([failed], 1)
    assert out.export_text().splitlines() == [
        "[0/1] trial t[/x] running ([red]lr=[/x])",
        "[1/1] trial t[/x] failed: boom [/x]",
    ]


def test_promote_prints_params_as_written(tmp_path: Path) -> None:
    folder = markup_sweep(tmp_path)
    result = invoke("promote", str(folder), "-o", str(tmp_path / "best.yaml"))
    # The params are no trainer fields: refused, and said as written.
    assert result.exit_code == ExitCode.FAILED
    assert isinstance(result.exception, SystemExit)
    assert "'[bold]' is not a searchable trainer parameter" in result.output


# ----------------------------------------------------------------------------- 2. kinds


@pytest.mark.parametrize(
    ("text", "got"),
    [
        ("apiVersion: tunixrt.io/v1alpha1\nkind: sweep\nmetadata: {name: a}\n", "got 'sweep'"),
        ("apiVersion: tunixrt.io/v1alpha1\nkind: Trial\nmetadata: {name: a}\n", "got 'Trial'"),
        ("apiVersion: tunixrt.io/v1alpha1\nmetadata: {name: a}\n", "it is missing"),
        ("kind: REHEARSAL\nmetadata: {name: a}\n", "did you mean Rehearsal?"),
    ],
)
def test_validate_refuses_unknown_tunix_kinds(tmp_path: Path, text: str, got: str) -> None:
    result = validate_text(
        tmp_path / "k.yaml", text + "---\nkind: ConfigMap\nmetadata: {name: c}\n"
    )
    assert result.exit_code == ExitCode.INVALID, result.output
    assert "kind must be Sweep or Rehearsal" in result.output and got in result.output
    assert "ConfigMap/c skipped (not a tunix-rt kind)" in result.output


def test_validate_checks_a_trainer_config_file_as_spec_trainer(tmp_path: Path) -> None:
    """What ``promote -o`` writes and ``python -m tunix_rt.train --config`` reads: trainer
    fields at the top level. Checked as a Sweep's spec.trainer is, misspelt names hinted;
    a mapping of other keys is not taken for one."""
    smoke = Path(__file__).resolve().parents[2] / "examples" / "trainer-smoke.yaml"
    good = invoke("validate", str(smoke))
    assert good.exit_code == 0, good.output
    assert "TrainerConfig/builtin is valid" in good.output
    bad = validate_text(tmp_path / "trainer.yaml", "learningRate: 3.0e-3\nmaxStep: 300\n")
    assert bad.exit_code == ExitCode.INVALID, bad.output
    assert "maxStep: Extra inputs are not permitted; did you mean `maxSteps`?" in bad.output
    refused = validate_text(tmp_path / "negative.yaml", "learningRate: -1\n")
    assert refused.exit_code == ExitCode.INVALID and "learningRate:" in refused.output
    skipped = validate_text(tmp_path / "values.yaml", "replicaCount: 2\nimage: {tag: x}\n")
    assert skipped.exit_code == ExitCode.INVALID, skipped.output
    assert "nothing to validate" in skipped.output


def test_validate_skips_other_groups_and_says_when_nothing_was_checked(tmp_path: Path) -> None:
    others = tmp_path / "others.yaml"
    alone = validate_text(
        others,
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
    )
    assert alone.exit_code == ExitCode.INVALID, alone.output
    assert "Kustomization/? skipped (not a tunix-rt kind)" in alone.output
    assert "no Sweep, Rehearsal or trainer config in this file" in alone.output
    assert "nothing to validate" in alone.output

    good = tmp_path / "good.yaml"
    good.write_text(GOOD)
    both = invoke("validate", str(others), str(good))
    assert both.exit_code == 0, both.output
    assert "no Sweep, Rehearsal or trainer config in this file" in both.output
    assert "Sweep/good is valid" in both.output
    assert "nothing to validate" not in both.output


# ----------------------------------------------------------------------------- 3. unwritable


def one_error_line(text: str, start: str) -> None:
    assert "Traceback" not in text, text
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(start), text


def test_sweep_run_unwritable_file_store(tmp_path: Path) -> None:
    target = unwritable(tmp_path)
    result = invoke("sweep", "run", str(SMOKE), "--storage", f"file://{target}")
    assert result.exit_code == ExitCode.FAILED, result.output
    one_error_line(result.output, f"error: cannot write to file://{target}: Not a directory")
    assert result.output.rstrip().endswith("choose a writable --storage")
    assert isinstance(result.exception, SystemExit)


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="needs /proc")
def test_sweep_run_proc_store_through_the_console_script() -> None:
    out = console("sweep", "run", str(SMOKE), "--storage", "file:///proc/x")
    assert out.returncode == ExitCode.FAILED, out.stdout + out.stderr
    one_error_line(out.stderr, "error: cannot write to file:///proc/x: ")
    assert "choose a writable --storage" in out.stderr and out.stdout == ""


def test_sweep_run_bad_store_uri(tmp_path: Path) -> None:
    result = invoke("sweep", "run", str(SMOKE), "--storage", "ftp://host/x")
    assert result.exit_code == ExitCode.INVALID  # refused as the flag, before anything runs
    assert "--storage" in result.output and "'ftp://host/x' is not a store URI" in result.output
    assert "Traceback" not in result.output


def test_rehearsal_run_unwritable_store_fails_before_training(tmp_path: Path) -> None:
    target = unwritable(tmp_path)
    result = invoke("rehearsal", "run", str(TRAINER), "--storage", f"file://{target}")
    assert result.exit_code == ExitCode.FAILED, result.output
    one_error_line(result.output, f"error: cannot write to file://{target}: Not a directory")
    out = invoke(
        "rehearsal", "run", str(TRAINER), "--storage", f"file://{tmp_path}/ok",
        "--out", str(target / "evidence"),
    )  # fmt: skip
    assert out.exit_code == ExitCode.FAILED, out.output
    one_error_line(out.output, f"error: cannot write to {target / 'evidence'}: Not a directory")


def test_crds_write_unwritable_folder(tmp_path: Path) -> None:
    target = unwritable(tmp_path)
    result = invoke("crds", "--write", str(target))
    assert result.exit_code == ExitCode.FAILED
    one_error_line(result.output, "error: cannot write to ")
    assert "choose a writable --write" in result.output
    if Path("/proc/self").exists():
        out = console("crds", "--write", "/proc/x")
        assert out.returncode == ExitCode.FAILED and out.stdout == ""
        one_error_line(out.stderr, "error: cannot write to /proc/x: ")


def test_package_to_an_unwritable_folder(tmp_path: Path) -> None:
    run_dir = write_evidence(tmp_path / "run")
    target = unwritable(tmp_path)
    result = invoke("package", str(run_dir), "-o", str(target))
    assert result.exit_code == ExitCode.FAILED, result.output
    one_error_line(result.output, f"error: cannot write to {target}: Not a directory")
    assert result.output.rstrip().endswith("choose a writable -o")


# ----------------------------------------------------------------------------- 4. exit 2

FAKE_DRIVER = """\
import sys
from datetime import UTC, datetime
from tunix_rt.api.trial import DriverSession, DriverSessions
from tunix_rt.storage import Store
REASON = ("the spec of sweep 'sweep-smoke' changed since its earlier run at X; run it "
          "with --fresh to start over (earlier results are kept in archive/), or give it "
          "another name")
print("[tunix-rt] code: commit abc1234", flush=True)
print(f"[tunix-rt] {REASON}", file=sys.stderr, flush=True)
now = datetime.now(UTC)
ended = DriverSession(started_at=now, seen_at=now, ended_at=now, exit_code=2, message=REASON)
Store(sys.argv[1]).write_json("local/sweep-smoke/sessions.json", DriverSessions(sessions=[ended]))
sys.exit(2)
"""


def test_rerun_with_a_changed_spec_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store_root = tmp_path / "runs"
    store = Store(f"file://{store_root}")
    store.write_json(
        "local/sweep-smoke/summary.json",
        SweepResult(sweep="sweep-smoke", namespace="local", message="best trial t1"),
    )
    driver = tmp_path / "driver.py"
    driver.write_text(FAKE_DRIVER)
    monkeypatch.setattr(
        sweep_cli, "driver_cmd", lambda *a: [sys.executable, str(driver), store.uri]
    )
    result = invoke("sweep", "run", str(SMOKE), "--storage", f"file://{store_root}", "--no-live")
    assert result.exit_code == ExitCode.INVALID, result.output
    assert "error: the spec of sweep 'sweep-smoke' changed" in result.output
    assert "--fresh" in result.output
    assert "exit 2 (invalid: nothing ran)" in result.output
    assert "nothing was re-run" not in result.output and "succeeded" not in result.output
    assert isinstance(result.exception, SystemExit)


# ----------------------------------------------------------------------------- 5. sweep show


def driver_log(folder: Path, *lines: str) -> Path:
    logs = folder / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    path = logs / "driver-20260101T000000Z.log"
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


def driver_ended(folder: Path, code: int, message: str, at: datetime | None = None) -> None:
    """How the driver ended, as it records it in the sweep's ``sessions.json``."""
    now = at or datetime.now(UTC)
    ended = DriverSession(
        started_at=now, seen_at=now, ended_at=now, exit_code=code, message=message
    )
    Store(f"file://{folder}").write_json("sessions.json", DriverSessions(sessions=[ended]))


def show_title(folder: Path) -> str:
    result = invoke("sweep", "show", str(folder), columns=400)
    assert result.exit_code == 0, result.output
    head = result.output.split("─", 1)[0]  # the title, wrapped to the table's width
    return " ".join(head.split())


def test_sweep_show_interrupted_and_running(tmp_path: Path) -> None:
    folder = markup_sweep(tmp_path, summary=False)
    host = socket.gethostname()
    driver_log(folder, f"{CLI_MARK} driver pid 1 on {host}", "[tunix-rt] trial t0")
    # pid 1 is no driver of ours: the driver is gone without a word: interrupted.
    assert "(interrupted: run the same command again to resume)" in show_title(folder)

    driver_ended(folder, ExitCode.INTERRUPTED, "sweep interrupted with 1 of 2 trials finished")
    driver_log(
        folder,
        "[tunix-rt] sweep interrupted with 1 of 2 trials finished; rerun to resume",
        f"{CLI_MARK} driver exited: exit 130 (interrupted: …)",
    )
    assert "(interrupted: run the same command again to resume)" in show_title(folder)

    driver_log(folder, "[tunix-rt] sweep interrupted with 1 of 2 trials finished")
    assert "(interrupted: run the same command again to resume)" in show_title(folder)

    (folder / "sessions.json").unlink()  # a new driver, that has recorded no end yet
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "tunix_rt.tune"])
    try:
        driver_log(folder, f"{CLI_MARK} driver pid {live.pid} on {host}")
        assert "(running)" in show_title(folder)
    finally:
        live.kill()
        live.wait()
    assert "(interrupted" in show_title(folder)


def test_sweep_show_not_run(tmp_path: Path) -> None:
    folder = markup_sweep(tmp_path, summary=False)
    driver_log(
        folder,
        "[tunix-rt] the spec changed; use --fresh",
        f"{CLI_MARK} driver exited: exit 2 (invalid: nothing ran)",
    )
    driver_ended(folder, ExitCode.INVALID, "the spec changed; use --fresh")
    assert "(not run: the spec changed; use --fresh)" in show_title(folder)
    # An end recorded before this log's driver started is an earlier driver's.
    driver_ended(folder, ExitCode.INVALID, "the spec changed", at=datetime(2025, 1, 1, tzinfo=UTC))
    assert "not run" not in show_title(folder)


def test_sweep_show_an_evidence_folder_as_finished(tmp_path: Path) -> None:
    folder = markup_sweep(tmp_path)
    evidence = folder / "evidence"
    (evidence / "trials").mkdir(parents=True)
    for name in ("t0", "t1"):
        (evidence / "trials" / f"{name}.json").write_bytes(
            (folder / "trials" / f"{name}.json").read_bytes()
        )
    (evidence / "sweep_summary.json").write_bytes((folder / "summary.json").read_bytes())
    result = invoke("sweep", "show", str(evidence))
    assert result.exit_code == 0, result.output
    assert "running" not in result.output and "interrupted" not in result.output
    assert result.output.splitlines()[0].startswith("sweep demo")
    assert "Succeeded" in result.output and "2/2 finished" in result.output


def test_sweep_show_table_fits_80_columns(tmp_path: Path) -> None:
    store = Store(f"file://{tmp_path}")
    spec = SweepSpec.model_validate(
        {
            "searchSpace": {"learningRate": {"type": "loguniform", "low": 1e-4, "high": 0.1}},
            "objective": {"metric": "loss", "mode": "min"},
        }
    )
    store.write_json("local/wide/spec.json", spec)
    for i in range(3):
        store.write_json(
            f"local/wide/trials/a2b4c_{i:05d}.json",
            TrialResult(
                trial_id=f"a2b4c_{i:05d}",
                sweep="wide",
                namespace="local",
                params={
                    "learningRate": 0.00123 * (i + 1),
                    "warmupSteps": 10 * i,
                    "batchSize": 8,
                    "weightDecay": 0.01,
                },
                state=TrialState.SUCCEEDED,
                primary_score=0.1 * i,
                metrics={"loss": 1.5 - i * 0.1},
                steps=400,
                wall_seconds=1234.0,
            ),
        )
    result = invoke("sweep", "show", str(tmp_path / "local" / "wide"), columns=80)
    assert result.exit_code == 0, result.output
    table = result.output.split("trials: ", 1)[0].splitlines()
    assert max(len(line) for line in table) <= 80, result.output
    header = next(line for line in table if "primary_score" in line)
    for word in ("#", "trial", "state", "loss", "primary_score", "params", "steps", "time"):
        assert word in header.split(), (word, header)
    assert "1234s" in result.output and "…" not in result.output


def test_unreachable_s3_one_line_per_retry_burst() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    out = console(
        "sweep",
        "show",
        "s3://bucket/local/x",
        TUNIX_RT_S3_ENDPOINT_URL=f"http://127.0.0.1:{port}",
        AWS_ACCESS_KEY_ID="testing-key",
        AWS_SECRET_ACCESS_KEY="testing-secret",
        TUNIX_RT_STORE_BACKOFF_S="0.01",
        TUNIX_RT_STORE_ATTEMPTS="5",
    )
    assert out.returncode == ExitCode.FAILED, out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    retries = [line for line in out.stderr.splitlines() if "retrying" in line]
    assert len(retries) == 1, out.stderr
    assert retries[0].startswith("warning: reading s3://bucket/local/x/summary.json")
    assert "error: reading s3://bucket/local/x/summary.json failed after 5 attempts" in out.stderr
