"""The rehearsal run with a stand-in trainer: config resolution, evidence, upload, status, CLI."""

from __future__ import annotations

import base64
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError
from typer.testing import CliRunner

from support.rehearsal import (
    EVIDENCE_FILES,
    FakeTrainer,
    tiny_trainer,
    use_trainer,
    write_rehearsal,
)
from tunix_rt.api.rehearsal import RehearsalSpec, SourceTrial
from tunix_rt.api.trainer import TrainerConfig
from tunix_rt.api.trial import SweepResult, TrialResult, TrialState
from tunix_rt.contract.layout import rehearsal_prefix, summary_key
from tunix_rt.evidence import schema_errors, verify_zip
from tunix_rt.evidence.checksums import parse_sums, sha256_file
from tunix_rt.rehearsal import (
    RehearsalError,
    plan_from_file,
    plan_from_spec,
    result_from_store,
    run_rehearsal,
)
from tunix_rt.rehearsal import __main__ as entry
from tunix_rt.rehearsal.plan_file import source_from_comments
from tunix_rt.scoring import compute_primary_score
from tunix_rt.storage import Store


def inline_spec(tmp_path: Path, **extra: Any) -> RehearsalSpec:
    return RehearsalSpec.model_validate(
        {"trainer": tiny_trainer(), "storage": f"file://{tmp_path}/store", **extra}
    )


def write_sweep(store: Store, name: str = "smoke") -> SweepResult:
    base = TrainerConfig.model_validate(tiny_trainer(maxSteps=300))
    trials = [
        TrialResult(
            trial_id=f"{name}-t{i}",
            sweep=name,
            namespace="local",
            params={"learning_rate": lr, "batch_size": 8},
            state=TrialState.SUCCEEDED,
            primary_score=score,
            steps=20,
        )
        for i, (lr, score) in enumerate([(0.001, 0.25), (0.01, 0.5), (0.02, 0.375)])
    ]
    summary = SweepResult(
        sweep=name,
        namespace="local",
        trials=trials,
        best_trial_id=f"{name}-t1",
        best_params={"learning_rate": 0.01, "batch_size": 8},
        primary_score=0.5,
        base_config=base.to_wire(),
    )
    store.write_json(summary_key("local", name), summary)
    return summary


def read_rows(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (folder / "eval_rows.jsonl").read_text().splitlines()]


def test_inline_run_writes_every_file_and_uploads(
    tmp_path: Path, fake_trainer: FakeTrainer
) -> None:
    plan = plan_from_spec(inline_spec(tmp_path), name="inline-demo")
    result = run_rehearsal(plan, trainer=fake_trainer, out_dir=tmp_path / "out", echo=None)
    out = tmp_path / "out"
    assert {p.name for p in out.iterdir() if p.is_file()} == EVIDENCE_FILES
    manifest = json.loads((out / "run_manifest.json").read_text())
    summary = json.loads((out / "eval_summary.json").read_text())
    assert schema_errors("run_manifest", manifest) == []
    assert schema_errors("eval_summary", summary) == []
    rows = read_rows(out)
    assert len(rows) == 6
    assert summary["primary_score"] == compute_primary_score(rows) == 0.5
    assert result.primary_score == 0.5
    assert manifest["source"] is None
    assert manifest["config"] == fake_trainer.configs[0].to_wire()
    assert manifest["seed"] == 0
    assert manifest["steps"] == 20
    assert manifest["devices"] == ["TFRT_CPU_0"]
    assert manifest["dataset"]["sha256"] == "ab" * 32
    # the log holds the trainer's lines, with timestamps
    log = (out / "kaggle_output_log.txt").read_text().splitlines()
    assert any(line.endswith("step 20 loss 0.1429") for line in log)
    assert all(line[:4].isdigit() and "T" in line[:24] for line in log)
    # SHA256SUMS covers every other file
    sums = parse_sums((out / "SHA256SUMS").read_text())
    assert set(sums) == EVIDENCE_FILES - {"SHA256SUMS"}
    assert all(sha256_file(out / name) == digest for name, digest in sums.items())
    # the zip is there, verifies, and the same folder lives in the store
    bundle = out / "submission" / result.bundle_name  # type: ignore[operator]
    assert verify_zip(bundle).ok
    assert result.bundle_name is not None and result.bundle_name.startswith("tunix_rt_inline-demo_")
    stored = tmp_path / "store" / rehearsal_prefix("local", "inline-demo")
    for name in EVIDENCE_FILES:
        assert (stored / name).read_bytes() == (out / name).read_bytes()
    assert (stored / "submission" / result.bundle_name).read_bytes() == bundle.read_bytes()
    assert result.evidence_uri == f"file://{stored}"
    assert result.bundle_uri == f"file://{stored}/submission/{result.bundle_name}"
    assert sorted(result.evidence_files) == sorted(
        [f"file://{stored}/{n}" for n in EVIDENCE_FILES]
        + [f"file://{stored}/submission/{result.bundle_name}"]
    )
    status = result.to_status()
    assert status.phase.value == "Succeeded"
    assert status.primary_score == 0.5
    assert status.bundle_uri == result.bundle_uri
    assert status.evidence_files == result.evidence_files


def test_result_from_store_matches_the_run(tmp_path: Path, fake_trainer: FakeTrainer) -> None:
    plan = plan_from_spec(inline_spec(tmp_path), name="again")
    result = run_rehearsal(plan, trainer=fake_trainer, echo=None)
    again = result_from_store(f"file://{tmp_path}/store", "local", "again")
    assert again is not None
    assert again.primary_score == result.primary_score
    assert again.bundle_uri == result.bundle_uri
    assert again.evidence_files == result.evidence_files
    assert again.config_sha256 == result.config_sha256
    assert result_from_store(f"file://{tmp_path}/store", "local", "never-ran") is None


def test_from_sweep_uses_base_config_best_params_and_overrides(
    tmp_path: Path, fake_trainer: FakeTrainer
) -> None:
    store = Store(f"file://{tmp_path}/store")
    sweep = write_sweep(store)
    spec = RehearsalSpec.model_validate(
        {
            "fromSweep": "smoke",
            "overrides": {"maxSteps": 40, "eval": {"maxTraceTokens": 32}},
            "storage": store.uri,
        }
    )
    plan = plan_from_spec(spec, name="smoke-best")
    assert plan.source_sweep == "smoke"
    assert plan.source_trial == "smoke-t1"
    assert plan.config.learning_rate == 0.01
    assert plan.config.batch_size == 8
    assert plan.config.max_steps == 40  # the override, not the base's 300 or the smoke cap
    assert plan.config.eval.max_trace_tokens == 32
    result = run_rehearsal(plan, trainer=fake_trainer, out_dir=tmp_path / "out", echo=None)
    out = tmp_path / "out"
    manifest = json.loads((out / "run_manifest.json").read_text())
    assert manifest["source"] == {
        "sweep": "smoke",
        "trial": "smoke-t1",
        "params": {"learning_rate": 0.01, "batch_size": 8},
        "trial_primary_score": 0.5,
        "summary_uri": store.uri_for(summary_key("local", "smoke")),
    }
    assert manifest["overrides"] == {"maxSteps": 40, "eval": {"maxTraceTokens": 32}}
    copied = (out / "sweep_summary.json").read_bytes()
    assert copied == store.read_bytes(summary_key("local", "smoke"))  # verbatim copy
    assert SweepResult.model_validate_json(copied) == sweep
    html = (out / "report.html").read_text()
    assert "primary_score per trial" in html
    # loss, lr, primary_score per trial, and the score against each searched parameter
    assert html.count("<svg") == 5
    for param in ("batch_size", "learning_rate"):
        assert html.count(f'aria-label="primary_score vs {param}"') == 1
    assert html.count('aria-label="primary_score per trial') == 1
    for trial in sweep.trials:
        assert trial.trial_id in html
    assert result.source_trial == "smoke-t1"
    assert result.to_status().params == {"learning_rate": 0.01, "batch_size": 8}
    with zipfile.ZipFile(out / "submission" / str(result.bundle_name)) as archive:
        assert "sweep_summary.json" in archive.namelist()


def test_from_sweep_without_summary_is_a_clear_error(tmp_path: Path) -> None:
    spec = RehearsalSpec.model_validate({"fromSweep": "nope", "storage": f"file://{tmp_path}"})
    with pytest.raises(
        RehearsalError, match=r"sweep 'nope' has no summary at file://.*/local/nope/summary.json"
    ):
        plan_from_spec(spec, name="x")


def test_promoted_manifest_with_annotations(tmp_path: Path, fake_trainer: FakeTrainer) -> None:
    store = Store(f"file://{tmp_path}/store")
    write_sweep(store)
    manifest_file = tmp_path / "smoke-best.rehearsal.yaml"
    manifest_file.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "tunixrt.io/v1alpha1",
                "kind": "Rehearsal",
                "metadata": {
                    "name": "smoke-best",
                    "annotations": {
                        "tunixrt.io/source-sweep": "smoke",
                        "tunixrt.io/source-trial": "smoke-t1",
                    },
                },
                "spec": {"trainer": tiny_trainer(learningRate=0.01), "storage": store.uri},
            }
        )
    )
    plan = plan_from_file(manifest_file, max_steps=30)
    assert (plan.name, plan.source_sweep, plan.source_trial) == ("smoke-best", "smoke", "smoke-t1")
    assert plan.config.max_steps == 30
    assert plan.sweep_summary is not None
    assert plan.config_path == str(manifest_file)
    assert plan.config_source_sha256 == sha256_file(manifest_file)
    run_rehearsal(plan, trainer=fake_trainer, out_dir=tmp_path / "out", echo=None)
    assert (tmp_path / "out" / "sweep_summary.json").is_file()


def test_promoted_config_file_with_source_comment(tmp_path: Path) -> None:
    config_file = tmp_path / "smoke-best.yaml"
    config_file.write_text(
        "# Promoted by tunix-rt promote: sweep smoke, trial smoke-t1 (primary_score 0.5)\n"
        + yaml.safe_dump(tiny_trainer())
    )
    plan = plan_from_file(config_file, storage=f"file://{tmp_path}/store")
    assert plan.name == "smoke-best"
    assert (plan.source_sweep, plan.source_trial) == ("smoke", "smoke-t1")
    assert any("sweep summary unavailable" in note for note in plan.notes)
    assert source_from_comments(
        "# tunixrt.io/source-sweep: s1\n# tunixrt.io/source-trial: t9\n"
    ) == SourceTrial("s1", "t9")
    assert source_from_comments("learningRate: 0.1\n") == SourceTrial(None, None)
    promote_header = (
        "# Trainer config promoted from sweep local/sweep-smoke, best trial 3f2a1_00002\n"
        "# (primary_score=0.8750; learning_rate=0.01).\n"
    )
    assert source_from_comments(promote_header) == SourceTrial("sweep-smoke", "3f2a1_00002")


def test_bad_inputs_are_clear(tmp_path: Path) -> None:
    bad = write_rehearsal(
        tmp_path / "bad.yaml", "x", {"trainer": {"learningRate": -1}}, api_version=False
    )
    with pytest.raises(RehearsalError, match=r"spec.trainer.learningRate"):
        plan_from_file(bad)
    # overrides apply as in admission (TrainerConfig.with_overrides): errors name the field.
    # Admission refuses them already; the run refuses them too (a spec built unvalidated).
    for bad_overrides, field in [
        ({"noSuchParam": 1}, r"spec.overrides.noSuchParam: unknown trainer field"),
        ({"model": {"depth": 3}}, r"spec.overrides.model.depth: unknown trainer field"),
        ({"learningRate": -1}, r"spec.overrides.learningRate"),
    ]:
        with pytest.raises(ValidationError, match=field.removeprefix("spec.").split(":")[0]):
            inline_spec(tmp_path, overrides=bad_overrides)
        unchecked = inline_spec(tmp_path).model_copy(update={"overrides": bad_overrides})
        with pytest.raises(RehearsalError, match=field):
            plan_from_spec(unchecked, name="x")
    overridden = {"model": {"layers": 2}, "learning_rate": 0.1}
    plan = plan_from_spec(inline_spec(tmp_path, overrides=overridden), name="x")
    assert plan.config.model.layers == 2 and plan.config.learning_rate == 0.1


def test_failed_training_is_a_clear_error(tmp_path: Path) -> None:
    def broken(config: TrainerConfig, **_: Any) -> Any:
        raise FloatingPointError("loss is NaN at step 7")

    plan = plan_from_spec(inline_spec(tmp_path), name="broken")
    with pytest.raises(RehearsalError, match="training failed: FloatingPointError: loss is NaN"):
        run_rehearsal(plan, trainer=broken, out_dir=tmp_path / "out", echo=None)
    log = (tmp_path / "out" / "kaggle_output_log.txt").read_text()
    assert "FAILED: training raised FloatingPointError" in log
    # no evidence, only the failed attempt's log and failure.json (tests/rehearsal/
    # test_rehearsal_failures.py has the details)
    stored = sorted(p.name for p in (tmp_path / "store").rglob("*") if p.is_file())
    assert stored == ["failure.json", "kaggle_output_log.txt"]


def test_out_dir_with_other_files_is_refused(tmp_path: Path, fake_trainer: FakeTrainer) -> None:
    precious = tmp_path / "home"
    precious.mkdir()
    (precious / "thesis.tex").write_text("do not delete")
    plan = plan_from_spec(inline_spec(tmp_path), name="x")
    with pytest.raises(RehearsalError, match="holds other files"):
        run_rehearsal(plan, trainer=fake_trainer, out_dir=precious, echo=None)
    assert (precious / "thesis.tex").read_text() == "do not delete"


def test_rerun_replaces_the_evidence_and_archives_the_earlier_run(
    tmp_path: Path, fake_trainer: FakeTrainer
) -> None:
    store = Store(f"file://{tmp_path}/store")
    write_sweep(store)
    promoted = plan_from_spec(
        RehearsalSpec.model_validate({"fromSweep": "smoke", "storage": store.uri}), name="r"
    )
    run_rehearsal(promoted, trainer=fake_trainer, echo=None)
    prefix = rehearsal_prefix("local", "r")
    first = {k: store.read_bytes(k) for k in store.list(prefix)}
    assert f"{prefix}/sweep_summary.json" in first
    inline = plan_from_spec(inline_spec(tmp_path), name="r")
    result = run_rehearsal(inline, trainer=fake_trainer, echo=None)
    keys = store.list(prefix)
    live = [k for k in keys if not k.startswith(f"{prefix}/archive/")]
    assert f"{prefix}/sweep_summary.json" not in live  # not part of the new bundle
    assert len([k for k in live if k.endswith(".zip")]) == 1
    local = store.local_path(prefix)
    assert local is not None
    assert verify_zip(local / "submission" / str(result.bundle_name)).ok
    # The first run's evidence is archived whole, byte for byte, under its end time.
    manifest = json.loads(first[f"{prefix}/run_manifest.json"])
    stamp = manifest["end_time"][:19].replace("-", "").replace(":", "") + "Z"
    archived = f"{prefix}/archive/{stamp}"
    assert {k: store.read_bytes(k) for k in keys if k.startswith(archived)} == {
        f"{archived}/{k[len(prefix) + 1 :]}": v for k, v in first.items()
    }
    assert sorted(result.evidence_files) == sorted(store.uri_for(k) for k in live)
    again = result_from_store(store, "local", "r")
    assert again is not None and again.bundle_uri == result.bundle_uri
    assert not [u for u in again.evidence_files if "/archive/" in u]


def test_secrets_never_reach_evidence_or_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"
    token = "ghp_0123456789abcdefTOKENVALUE"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    monkeypatch.setenv("GITHUB_TOKEN", token)
    trainer = FakeTrainer(log_lines=(f"library dumped its env: {secret} {token}",))
    plan = plan_from_spec(inline_spec(tmp_path), name="secret-check")
    result = run_rehearsal(
        plan,
        trainer=trainer,
        out_dir=tmp_path / "out",
        command=["tunix-rt", "rehearsal", "run", f"--x={secret}"],
    )
    files = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    files += [p for p in (tmp_path / "store").rglob("*") if p.is_file()]
    assert len(files) >= 14
    for path in files:
        data = path.read_bytes()
        if path.suffix == ".zip":
            with zipfile.ZipFile(path) as archive:
                data = b"".join(archive.read(n) for n in archive.namelist())
        assert secret.encode() not in data, path
        assert token.encode() not in data, path
    captured = capsys.readouterr()
    assert secret not in captured.err + captured.out
    assert "***" in (tmp_path / "out" / "kaggle_output_log.txt").read_text()
    assert secret not in result.model_dump_json()


def test_cli_run_and_show(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tunix_rt.cli.rehearsal import app

    monkeypatch.chdir(tmp_path)
    fake = FakeTrainer()
    use_trainer(monkeypatch, fake)
    manifest = write_rehearsal(tmp_path / "r.yaml", "cli-demo", {"trainer": tiny_trainer()})
    runner = CliRunner()
    ran = runner.invoke(app, ["run", str(manifest), "--max-steps", "12"])
    assert ran.exit_code == 0, ran.output
    assert "rehearsal cli-demo: primary_score 0.5000 after 12 steps" in ran.output
    folder = tmp_path / "runs" / "local" / "rehearsals" / "cli-demo"  # default file://./runs
    assert {p.name for p in folder.iterdir()} >= EVIDENCE_FILES
    shown = runner.invoke(app, ["show", "cli-demo", "--json"])
    assert shown.exit_code == 0, shown.output
    status = json.loads(shown.output)
    assert status["primaryScore"] == 0.5
    assert status["bundleUri"].endswith(".zip")
    missing = runner.invoke(app, ["show", "nope"])
    assert missing.exit_code == 1
    assert "no evidence for rehearsal 'nope'" in missing.output


def test_module_entrypoint_with_spec_b64(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakeTrainer()
    use_trainer(monkeypatch, fake)
    spec = {"trainer": tiny_trainer(learningRate=0.02)}
    b64 = base64.b64encode(json.dumps(spec).encode()).decode()
    code = entry.main(
        [
            "--spec-b64",
            b64,
            "--storage",
            f"file://{tmp_path}/store",
            "--namespace",
            "ml",
            "--name",
            "from-operator",
            "--source-sweep",
            "sw",
            "--source-trial",
            "sw-t3",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out.strip().splitlines()[-1]
    result = json.loads(out)
    assert result["primaryScore"] == 0.5
    assert result["sourceSweep"] == "sw"
    assert result["evidenceUri"] == f"file://{tmp_path}/store/ml/rehearsals/from-operator"
    manifest = json.loads(
        (tmp_path / "store/ml/rehearsals/from-operator/run_manifest.json").read_text()
    )
    assert manifest["command"][:3] == ["python", "-m", "tunix_rt.rehearsal"]
    assert b64 not in json.dumps(manifest)
    assert manifest["config_path"] == "<--spec-b64>"
    assert manifest["config"]["learningRate"] == 0.02
    assert entry.main(["--spec-b64", "!!!notbase64", "--name", "x"]) == 2
    assert entry.main(["--spec-b64", b64]) == 2  # no name
