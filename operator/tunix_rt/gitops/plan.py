"""What a promotion to git will do, decided before git runs: the files (paths inside the
repository and their text, :func:`tunix_rt.promotion.promoted_files`'s), the branch,
the commit message and the pull / merge request. Pure: the same sweep and options give
the same plan, so it can be shown (``--no-push``) and tested without a repository.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from pydantic import BaseModel

from tunix_rt.gitops.errors import RepoRefused
from tunix_rt.promotion import FinishedSweep, RehearsalOptions, promoted_files, rehearsal_name
from tunix_rt.scoring import PRIMARY_SCORE

DEFAULT_FOLDER = "rehearsals"
"""Files go to ``rehearsals/<sweep>/`` unless ``--path`` says where."""
BRANCH_PREFIX = "tunix-rt/promote-"

_BAD_REF = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//|/\.|\.lock(?:/|$)")
"""What ``git check-ref-format`` refuses inside a branch name."""
_UNSAFE = re.compile(r"[^A-Za-z0-9._/-]+")


class PromoteOptions(RehearsalOptions):
    """What a person chose (the CLI's flags, the web view's form): the Rehearsal's options
    and where in the repository it goes; None: the default."""

    branch: str | None = None
    base: str | None = None
    path: str | None = None


class PlannedFile(BaseModel):
    path: str
    """Inside the repository, ``/``-separated."""
    text: str


class PromotionPlan(BaseModel):
    branch: str
    rehearsal_name: str
    rehearsal_path: str
    trainer_path: str
    files: list[PlannedFile]
    commit_title: str
    commit_body: str
    request_title: str
    request_body: str
    """The pull / merge request's description (Markdown)."""

    @property
    def commit_message(self) -> str:
        return f"{self.commit_title}\n\n{self.commit_body}\n"


def plan_promotion(sweep: FinishedSweep, options: PromoteOptions) -> PromotionPlan:
    """The plan for ``sweep``; RepoRefused (exit 2) for a bad ``--branch`` or ``--path``,
    PromotionError for a config or manifest that would be invalid."""
    branch = check_branch(options.branch) if options.branch else default_branch(sweep)
    if options.base is not None:
        check_branch(options.base, "--base")
    folder = check_folder(options.path if options.path is not None else default_folder(sweep))
    stem = rehearsal_name(sweep, options.name)
    rehearsal_path = _join(folder, f"{stem}-rehearsal.yaml")
    trainer_path = _join(folder, f"{stem}-trainer.yaml")
    files = promoted_files(
        sweep,
        trainer_path=trainer_path,
        rehearsal_path=rehearsal_path,
        options=options,
    )
    title = (
        f"Promote sweep {sweep.source} best trial {sweep.trial_id} ({PRIMARY_SCORE}={sweep.score})"
    )
    return PromotionPlan(
        branch=branch,
        rehearsal_name=files.rehearsal_name,
        rehearsal_path=rehearsal_path,
        trainer_path=trainer_path,
        files=[
            PlannedFile(path=rehearsal_path, text=files.rehearsal_text),
            PlannedFile(path=trainer_path, text=files.trainer_text),
        ],
        commit_title=title,
        commit_body=commit_body(sweep, files.rehearsal_name, rehearsal_path, trainer_path),
        request_title=title,
        request_body=request_body(sweep, files.rehearsal_name, rehearsal_path, trainer_path),
    )


def default_branch(sweep: FinishedSweep) -> str:
    """``tunix-rt/promote-<sweep>-<trial>``, made a valid branch name."""
    raw = f"{BRANCH_PREFIX}{sweep.summary.sweep}-{sweep.trial_id}"
    safe = re.sub(r"\.{2,}", ".", _UNSAFE.sub("-", raw)).replace("/.", "/")
    return check_branch(safe.removesuffix(".lock").strip("./-")[:200])


def default_folder(sweep: FinishedSweep) -> str:
    return f"{DEFAULT_FOLDER}/{sweep.summary.sweep}"


def check_branch(branch: str, flag: str = "--branch") -> str:
    """``branch`` when git would take it as a branch's name; else RepoRefused naming
    ``flag``."""
    name = branch.strip()
    if (
        not name
        or _BAD_REF.search(name)
        or name.startswith(("-", "/", "."))
        or name.endswith(("/", ".", ".lock"))
        or name == "@"
    ):
        raise RepoRefused(
            f"{flag}: {branch!r} is not a valid branch name (no spaces, '..', '~^:?*[\\', "
            "'@{', leading '-' or '.', trailing '/', '.' or '.lock'); e.g. "
            "tunix-rt/promote-my-sweep"
        )
    return name


def check_folder(path: str) -> str:
    """``path`` as a folder inside the repository (``""``: its root); RepoRefused for an
    absolute path, ``..``, or a path into ``.git``."""
    raw = path.strip().replace("\\", "/")
    parts = [p for p in PurePosixPath(raw).parts if p not in {".", ""}]
    if raw.startswith("/") or ".." in parts or ".git" in parts or "\x00" in raw:
        raise RepoRefused(
            f"--path: {path!r} must be a folder inside the repository (relative, without "
            "'..' or '.git'), e.g. rehearsals/my-sweep"
        )
    return "/".join(parts)


def _join(folder: str, name: str) -> str:
    return f"{folder}/{name}" if folder else name


def commit_body(sweep: FinishedSweep, name: str, rehearsal: str, trainer: str) -> str:
    """Params, evidence, files, and the command that runs the rehearsal."""
    summary = sweep.summary
    lines = [
        f"Best params: {sweep.params}",
        f"Objective: {summary.objective_metric} ({summary.objective_mode}); "
        f"trials: {len(summary.trials)}",
        "",
        "Evidence:",
        *(f"  {line}" for line in sweep.evidence.lines()),
        "",
        "Files:",
        f"  {rehearsal} (Rehearsal {name})",
        f"  {trainer} (trainer config)",
        "",
        "Run it:",
        f"  tunix-rt rehearsal run {rehearsal}",
        f"  kubectl apply -f {rehearsal}",
        "",
        "Promoted by tunix-rt promote.",
    ]
    return "\n".join(lines)


def request_body(sweep: FinishedSweep, name: str, rehearsal: str, trainer: str) -> str:
    """The pull / merge request's description: the commit's body in Markdown."""
    summary = sweep.summary
    lines = [
        f"Sweep `{sweep.source}`'s best trial `{sweep.trial_id}` "
        f"({PRIMARY_SCORE}={sweep.score}), as Rehearsal `{name}`.",
        "",
        f"**Best params:** `{sweep.params}`  ",
        f"**Objective:** {summary.objective_metric} ({summary.objective_mode}), "
        f"{len(summary.trials)} trials",
        "",
        "### Evidence",
        *(f"- {line}" for line in sweep.evidence.lines()),
        "",
        "### Files",
        f"- `{rehearsal}` (Rehearsal `{name}`)",
        f"- `{trainer}` (trainer config)",
        "",
        "### Run it",
        "```",
        f"tunix-rt rehearsal run {rehearsal}",
        f"kubectl apply -f {rehearsal}",
        "```",
        "",
        "_Opened by tunix-rt promote._",
    ]
    return "\n".join(lines)
