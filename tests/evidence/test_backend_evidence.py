"""Evidence of trainer backends: the run manifest records the backend and where the model
came from (model_source), trial records carry both, the report draws GRPO reward curves;
evidence written before backends existed still validates."""

from __future__ import annotations

import json
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from support.rehearsal import FakeTrainer, tiny_trainer
from tunix_rt.api.rehearsal import RehearsalSpec
from tunix_rt.api.trial import TrialResult, TrialState
from tunix_rt.evidence import schema_errors, verify_zip
from tunix_rt.evidence.manifest import CommitInfo, build_run_manifest
from tunix_rt.evidence.report import render_report
from tunix_rt.evidence.validation import EvidenceError
from tunix_rt.rehearsal import plan_from_spec, run_rehearsal
from tunix_rt.train.result import ModelSource
from tunix_rt.tune.trainable import final_record

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "submission_runs" / "m34_v1"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def manifest(**extra: Any) -> dict[str, Any]:
    return build_run_manifest(
        run_name="r",
        namespace="local",
        commit=CommitInfo("a" * 40, False, "git"),
        model_id="m",
        dataset={"name": "dev-reasoning-v2", "sha256": "b" * 64},
        config={"maxSteps": 1},
        config_path="inline",
        config_source_sha256=None,
        overrides=None,
        command=["tunix-rt"],
        seed=0,
        start_time=T0,
        end_time=T0,
        wall_seconds=1.0,
        steps=1,
        devices=["cpu"],
        source=None,
        storage_uri="file:///tmp/x",
        storage_prefix="local/rehearsals/r",
        environ={"AWS_SECRET_ACCESS_KEY": "hunter2hunter2"},
        **extra,
    )


def test_a_tunix_manifest_records_checkpoint_digest_and_versions() -> None:
    source = ModelSource(
        name="gemma3-1b",
        config={"num_layers": 26, "nan": float("nan")},
        checkpoint="gs://user:hunter2hunter2@bucket/gemma3-1b/ckpt",
        checkpoint_sha256="c" * 64,
        random_init=False,
        versions={"google-tunix": "0.1.7", "qwix": "0.1.8"},
    )
    written = manifest(backend="tunix-grpo", model_source=source.model_dump())
    assert written["backend"] == "tunix-grpo"
    recorded = written["model_source"]
    assert recorded["name"] == "gemma3-1b" and recorded["random_init"] is False
    assert recorded["checkpoint_sha256"] == "c" * 64
    assert "hunter2" not in json.dumps(written)
    assert recorded["checkpoint"].startswith("gs://***@bucket/")
    assert recorded["config"]["nan"] is None  # JSON has no NaN
    # The backend's libraries are in versions, installed or not (None).
    assert {"google-tunix", "qwix"} <= set(written["versions"])
    assert schema_errors("run_manifest", written) == []


def test_random_init_is_said_plainly_and_required() -> None:
    written = manifest(
        backend="tunix-sft",
        model_source={"name": "gemma3-tiny", "config": {}, "random_init": True},
    )
    assert written["model_source"]["random_init"] is True
    with pytest.raises(EvidenceError, match="random_init"):
        manifest(backend="tunix-sft", model_source={"name": "gemma3-tiny", "config": {}})
    with pytest.raises(EvidenceError, match="checkpoint_sha256"):
        manifest(
            backend="tunix-sft",
            model_source={"name": "g", "random_init": False, "checkpoint_sha256": "xyz"},
        )


def test_manifests_from_before_backends_still_validate() -> None:
    old = manifest()
    assert "backend" not in old and "model_source" not in old
    assert "google-tunix" not in old["versions"]
    committed = json.loads((COMMITTED / "run_manifest.json").read_text())
    assert schema_errors("run_manifest", committed) == []
    # The committed run was re-recorded after backends existed: without their fields it is
    # what a manifest from before them looked like.
    legacy = {k: v for k, v in committed.items() if k not in ("backend", "model_source")}
    assert schema_errors("run_manifest", legacy) == []
    sweep = json.loads((COMMITTED / "sweep" / "evidence" / "run_manifest.json").read_text())
    assert schema_errors("run_manifest", sweep) == []


def test_trial_records_carry_the_backend_and_model_source() -> None:
    running = TrialResult(
        trial_id="t1", sweep="s", namespace="local", params={"step_size": 0.3}, backend="python"
    )
    result = SimpleNamespace(
        metrics={"loss": 1.0},
        primary_score=0.5,
        steps=10,
        wall_seconds=1.0,
        backend="python",
        model_source=ModelSource(name="linear-arith", config={"w": float("inf")}, random_init=True),
    )
    final, _ = final_record(running, result)
    assert final.state is TrialState.SUCCEEDED and final.backend == "python"
    assert final.model_source is not None and final.model_source["name"] == "linear-arith"
    assert final.model_source["config"] == {"w": None}
    wire = final.to_wire()
    assert wire["backend"] == "python" and wire["modelSource"]["random_init"] is True
    assert TrialResult.model_validate(wire) == final
    # A record from before backends reads as it was.
    for path in sorted((COMMITTED / "sweep" / "trials").glob("*.json")):
        record = json.loads(path.read_text())
        assert TrialResult.model_validate(record).backend == "builtin"
        legacy = {k: v for k, v in record.items() if k not in ("backend", "modelSource")}
        old = TrialResult.model_validate(legacy)
        assert old.backend is None and old.model_source is None


def history(*points: dict[str, float]) -> list[dict[str, float]]:
    return [dict(p) for p in points]


def test_the_report_draws_reward_curves_when_the_history_has_them() -> None:
    curve = history(
        {"step": 1, "loss": 2.0, "reward_mean": 0.1, "reward_format": 0.2, "reward_answer": 0.0},
        {"step": 2, "loss": 1.5, "reward_mean": 0.4, "reward_format": 0.6, "reward_answer": 0.3},
        {"step": 3, "loss": 1.0, "reward_mean": 0.7, "reward_format": 0.9, "reward_answer": 0.5},
    )
    written = manifest(
        backend="tunix-grpo",
        model_source={"name": "gemma3-tiny", "config": {}, "random_init": True},
    )
    html = render_report(manifest=written, summary={"learning_curve": curve})
    assert 'aria-label="reward"' in html
    for name in ("reward_mean", "reward_format", "reward_answer"):
        assert f">{name}</text>" in html  # each reward function is a line of its own
    assert "<th>backend</th><td>tunix-grpo</td>" in html
    assert "random init (no checkpoint loaded)" in html
    plain = render_report(
        manifest=manifest(),
        summary={"learning_curve": history(*[{"step": s, "loss": 1.0 / s} for s in (1, 2, 3)])},
    )
    assert 'aria-label="reward"' not in plain
    assert "<th>backend</th>" not in plain


def test_the_report_names_a_checkpoint_and_its_digest() -> None:
    written = manifest(
        backend="tunix-sft",
        model_source={
            "name": "gemma3-1b",
            "random_init": False,
            "checkpoint": "gs://bucket/ckpt",
            "checkpoint_sha256": "d" * 64,
            "versions": {"google-tunix": "0.1.7"},
        },
    )
    html = render_report(manifest=written, summary={})
    assert f"gs://bucket/ckpt (sha256 {'d' * 64})" in html
    assert "google-tunix 0.1.7" in html


def test_a_builtin_rehearsal_records_its_random_init(tmp_path: Path) -> None:
    spec = RehearsalSpec.model_validate(
        {"trainer": tiny_trainer(), "storage": f"file://{tmp_path}/store"}
    )
    out = tmp_path / "out"
    run_rehearsal(plan_from_spec(spec, name="b"), trainer=FakeTrainer(), out_dir=out, echo=None)
    written = json.loads((out / "run_manifest.json").read_text())
    assert written["backend"] == "builtin"
    source = written["model_source"]
    assert source["random_init"] is True and source["checkpoint"] is None
    assert source["name"] == written["model_id"]
    assert source["config"] == written["config"]["model"]


def test_a_python_backend_rehearsal_leaves_verifiable_evidence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real backend (no stub): the user's module trains, tunix-rt scores its rows."""
    (tmp_path / "evidence_user_trainer.py").write_text(
        textwrap.dedent(
            """
            def train(trial):
                for step in range(1, trial.max_steps + 1):
                    trial.report(step=step, loss=1.0 / step,
                                 reward_mean=step * trial.params["gain"])
                trial.describe_model("oracle", config={"gain": trial.params["gain"]})
                trial.eval_rows(
                    {"prompt": ex.prompt, "expected_answer": ex.answer,
                     "output": f"<reasoning>x</reasoning><answer>{ex.answer}</answer>"}
                    for ex in trial.dataset.eval
                )
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = RehearsalSpec.model_validate(
        {
            "trainer": {
                "backend": "python",
                "entrypoint": "evidence_user_trainer:train",
                "parameters": {"gain": "float"},
                "userParams": {"gain": 0.5},
                "maxSteps": 4,
                "dataset": {"trainSize": 16, "evalSize": 6},
            },
            "storage": f"file://{tmp_path}/store",
        }
    )
    out = tmp_path / "out"
    result = run_rehearsal(plan_from_spec(spec, name="py"), out_dir=out, echo=None)
    assert result.primary_score == 1.0
    written = json.loads((out / "run_manifest.json").read_text())
    assert written["backend"] == "python" and written["model_id"] == "python/oracle"
    source = written["model_source"]
    assert source["name"] == "oracle" and source["random_init"] is True
    assert source["config"]["gain"] == 0.5
    assert source["config"]["code"]["entrypoint"] == "evidence_user_trainer:train"
    summary = json.loads((out / "eval_summary.json").read_text())
    assert summary["rows"]["eval_rows"] == 6
    assert [p["reward_mean"] for p in summary["learning_curve"][:4]] == [0.5, 1.0, 1.5, 2.0]
    assert 'aria-label="reward"' in (out / "report.html").read_text()
    (bundle,) = sorted((out / "submission").glob("*.zip"))
    check = verify_zip(bundle)
    assert check.ok, check.errors


@pytest.mark.parametrize(
    ("trainer", "expected"),
    [
        ({}, "tunix-rt/char-transformer-L2-W128"),
        ({"backend": "python", "entrypoint": "pkg.mod:fit"}, "python/pkg.mod:fit"),
        ({"backend": "tunix-sft", "model": {"name": "Gemma3_1B_pt"}}, "tunix-rt/gemma3-1b-lora8"),
        (
            {"backend": "tunix-sft", "loraRank": 0, "model": {"name": "gemma3-tiny"}},
            "tunix-rt/gemma3-tiny-full",
        ),
        (
            {"backend": "tunix-grpo", "loraRank": 4, "model": {"name": "gemma3-tiny"}},
            "tunix-rt/gemma3-tiny-lora4-grpo",
        ),
        (
            {"backend": "tunix-dpo", "loraRank": 0, "model": {"name": "gemma3-tiny"}},
            "tunix-rt/gemma3-tiny-full-dpo",
        ),
    ],
)
def test_a_sweeps_manifest_names_the_model_its_backend_trains(
    trainer: dict[str, Any], expected: str
) -> None:
    """The driver names the model from the config alone (it never runs a trial itself):
    a python sweep by its entrypoint, a Tunix sweep by its Gemma config and LoRA rank."""
    from tunix_rt.api.trainer import TrainerConfig
    from tunix_rt.train.backends import model_id

    assert model_id(TrainerConfig.model_validate(trainer)) == expected
