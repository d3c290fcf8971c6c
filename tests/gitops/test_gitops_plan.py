"""The promotion plan, without git: the files' paths and text, the branch, the commit
message and the request, and the options it refuses."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from support.gitops import BEST, SWEEP, finished_sweep, git, git_env
from tunix_rt.api.rehearsal import Rehearsal
from tunix_rt.api.trainer import TrainerConfig
from tunix_rt.contract.exits import ExitCode
from tunix_rt.gitops import PromoteOptions, RepoRefused, plan_promotion
from tunix_rt.promotion import load_finished, promoted_files


def test_default_plan(sweep: Path) -> None:
    finished = load_finished(str(sweep))
    plan = plan_promotion(finished, PromoteOptions())
    assert plan.branch == f"tunix-rt/promote-{SWEEP}-{BEST}"
    assert plan.rehearsal_path == f"rehearsals/{SWEEP}/{SWEEP}-best-rehearsal.yaml"
    assert plan.trainer_path == f"rehearsals/{SWEEP}/{SWEEP}-best-trainer.yaml"
    assert [f.path for f in plan.files] == [plan.rehearsal_path, plan.trainer_path]
    assert plan.commit_title == (
        f"Promote sweep local/{SWEEP} best trial {BEST} (primary_score=0.7500)"
    )
    body = plan.commit_body
    assert "Best params: learningRate=0.004" in body
    assert f"summary: file://{sweep}/summary.json" in body
    assert f"report: file://{sweep}/evidence/report.html" in body
    assert f"bundle: file://{sweep}/evidence/submission/tunix_rt_{SWEEP}.zip" in body
    assert f"tunix-rt rehearsal run {plan.rehearsal_path}" in body
    assert plan.request_title == plan.commit_title
    assert f"- summary: file://{sweep}/summary.json" in plan.request_body
    # The text is promoted_files' for these paths: one definition for folder and git.
    same = promoted_files(
        finished, trainer_path=plan.trainer_path, rehearsal_path=plan.rehearsal_path
    )
    assert [f.text for f in plan.files] == [same.rehearsal_text, same.trainer_text]
    manifest = Rehearsal.model_validate(yaml.safe_load(plan.files[0].text))
    config = TrainerConfig.model_validate(yaml.safe_load(plan.files[1].text))
    assert manifest.spec.trainer == config and config.learning_rate == 0.004
    assert f"# Run it: tunix-rt rehearsal run {plan.rehearsal_path}" in plan.files[0].text


def test_options_name_the_files_and_branch(sweep: Path) -> None:
    options = PromoteOptions(
        branch="exp/nightly", path="./deploy//rehearsals/", name="nightly", steps=50
    )
    plan = plan_promotion(load_finished(str(sweep)), options)
    assert plan.branch == "exp/nightly"
    assert plan.rehearsal_path == "deploy/rehearsals/nightly-rehearsal.yaml"
    assert Rehearsal.model_validate(yaml.safe_load(plan.files[0].text)).metadata.name == "nightly"
    assert TrainerConfig.model_validate(yaml.safe_load(plan.files[1].text)).max_steps == 50
    root = plan_promotion(load_finished(str(sweep)), PromoteOptions(path=""))
    assert root.trainer_path == f"{SWEEP}-best-trainer.yaml"


def test_default_branch_is_a_valid_ref(tmp_path: Path) -> None:
    folder = finished_sweep(tmp_path)
    summary = folder / "summary.json"
    summary.write_text(summary.read_text().replace(BEST, "t[1]: a...b~.lock"))
    plan = plan_promotion(load_finished(str(folder)), PromoteOptions())
    assert plan.branch == f"tunix-rt/promote-{SWEEP}-t-1-a.b"
    assert git("check-ref-format", "--branch", plan.branch, env=git_env()).strip() == plan.branch


def test_no_evidence_folder_links_the_summary_only(tmp_path: Path) -> None:
    folder = finished_sweep(tmp_path, evidence=False)
    links = load_finished(str(folder)).evidence
    assert links.lines() == [f"summary: file://{folder}/summary.json"]


@pytest.mark.parametrize(
    ("options", "flag"),
    [
        (PromoteOptions(branch="has space"), "--branch"),
        (PromoteOptions(branch="a..b"), "--branch"),
        (PromoteOptions(branch="-rf"), "--branch"),
        (PromoteOptions(branch="x.lock"), "--branch"),
        (PromoteOptions(branch="a@{1}"), "--branch"),
        (PromoteOptions(path="/etc"), "--path"),
        (PromoteOptions(path="a/../../b"), "--path"),
        (PromoteOptions(path=".git/hooks"), "--path"),
    ],
)
def test_bad_branch_or_path_is_refused(sweep: Path, options: PromoteOptions, flag: str) -> None:
    with pytest.raises(RepoRefused) as refused:
        plan_promotion(load_finished(str(sweep)), options)
    assert str(refused.value).startswith(f"{flag}: ")
    assert refused.value.exit_code == ExitCode.INVALID
