"""``tunix-rt promote RESULT -o FILE``: a sweep's best trial as files to commit, and
``tunix-rt promote RESULT --git REPO``: those files committed for you (GitOps).

Writes the best trial's trainer config (TrainerConfig, wire YAML) and a ready Rehearsal
manifest that runs it inline, annotated with where it came from. Both paths take the
files' text from :func:`tunix_rt.promotion.promoted_files`; ``--git`` goes through
:func:`tunix_rt.gitops.promote_to_git` (a new branch, one commit, a push, and a pull /
merge request when a GitHub or GitLab token is set).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.text import Text

from tunix_rt.cli.common import storage_flag
from tunix_rt.cli.display import make_console
from tunix_rt.contract.exits import ExitCode
from tunix_rt.promotion import PromotionError, RehearsalOptions, load_finished, promoted_files
from tunix_rt.scoring import PRIMARY_SCORE
from tunix_rt.storage.redact import scrub

GIT_HELP = "With --git"
"""The help panel of the options that only --git takes."""


def _git_flag(flag: str, help: str, default: bool | None = None) -> Any:
    """An option that only --git takes: listed in its own help panel."""
    return typer.Option(default, flag, help=help, rich_help_panel=GIT_HELP)


def promote(
    result: str = typer.Argument(
        ...,
        help="The sweep's summary.json (path or URI) or its results folder "
        "(e.g. runs/local/sweep-smoke).",
    ),
    output: Path | None = typer.Option(
        None, "-o", "--output", help="Trainer config file to write (without --git: needed)."
    ),
    rehearsal_out: Path | None = typer.Option(
        None,
        "--rehearsal",
        help="Rehearsal manifest to write (default: next to -o, named <stem>-rehearsal.yaml).",
    ),
    steps: int | None = typer.Option(
        None, "--steps", min=1, help="maxSteps of the rehearsal (longer than the smoke cap)."
    ),
    name: str | None = typer.Option(None, "--name", help="Rehearsal name (default: <sweep>-best)."),
    storage: str | None = storage_flag("Rehearsal evidence store (default: the sweep's storage)."),
    git: str | None = _git_flag(
        "--git",
        "Commit both files to this git repository (a path or URL; no credentials in it: "
        "tokens come from GITHUB_TOKEN, GITLAB_TOKEN or TUNIX_RT_GIT_TOKEN_FILE) on a new "
        "branch, push it, and open a pull / merge request when a token is set.",
    ),
    branch: str | None = _git_flag(
        "--branch", "New branch (default: tunix-rt/promote-<sweep>-<trial>)."
    ),
    base: str | None = _git_flag(
        "--base", "Branch to start from and to propose into (default: the remote's default)."
    ),
    path: str | None = _git_flag(
        "--path", "Folder in the repository (default: rehearsals/<sweep>)."
    ),
    forge: str | None = _git_flag(
        "--forge", "github, gitlab or none (default: told from the host, github.com or gitlab.com)."
    ),
    forge_project: str | None = _git_flag(
        "--forge-project", "OWNER/NAME on the forge (default: from the repository URL)."
    ),
    api_url: str | None = _git_flag(
        "--api-url",
        "The forge's API (default: GITHUB_API_URL / GITLAB_API_URL, else the public one).",
    ),
    no_push: bool = _git_flag(
        "--no-push",
        "Commit in a throwaway clone and print what would be pushed; push nothing.",
        default=False,
    ),
) -> None:
    """Turn a finished sweep's best params into a trainer config and a Rehearsal manifest
    (-o FILE), or commit both to a git repository and propose them (--git REPO)."""
    err = make_console(stderr=True)
    if git is None:
        given = {
            "--branch": branch,
            "--base": base,
            "--path": path,
            "--forge": forge,
            "--forge-project": forge_project,
            "--api-url": api_url,
            "--no-push": no_push or None,
        }
        used = [flag for flag, value in given.items() if value is not None]
        if used:
            _fail(err, [f"{', '.join(used)}: only with --git REPO"], ExitCode.INVALID)
        if output is None:
            _fail(
                err,
                ["-o/--output: give the trainer config file to write, or --git REPO to commit "
                 "both files to a repository"],
                ExitCode.INVALID,
            )  # fmt: skip
        options = RehearsalOptions(steps=steps, name=name, storage=storage)
        _to_files(result, output, rehearsal_out, options, err)
        return
    if output is not None or rehearsal_out is not None:
        _fail(
            err,
            ["-o/--rehearsal: with --git the files go to the repository (--path names their "
             "folder there); leave -o and --rehearsal out"],
            ExitCode.INVALID,
        )  # fmt: skip
    from tunix_rt.cli.promote_git import to_git  # git and HTTP only when asked for

    to_git(
        result,
        git,
        err,
        branch=branch,
        base=base,
        path=path,
        forge=forge,
        forge_project=forge_project,
        api=api_url,
        steps=steps,
        name=name,
        storage=storage,
        push=not no_push,
    )


def _to_files(
    result: str,
    output: Path,
    rehearsal_out: Path | None,
    options: RehearsalOptions,
    err: Console,
) -> None:
    """Both files written next to each other (or where -o and --rehearsal say)."""
    console = make_console()
    target = rehearsal_out or output.with_name(f"{output.stem}-rehearsal.yaml")
    try:
        sweep = load_finished(result)
        files = promoted_files(
            sweep,
            trainer_path=str(output),
            rehearsal_path=str(target),
            options=options,
        )
    except PromotionError as exc:
        _fail(err, exc.lines, exc.exit_code)
    _write(output, files.trainer_text, err)
    _write(target, files.rehearsal_text, err)
    say = [
        f"best trial {sweep.trial_id} of sweep {sweep.source}: {PRIMARY_SCORE}={sweep.score} "
        f"({sweep.params})",
        f"wrote {output} (trainer config)",
        f"wrote {target} (Rehearsal {files.rehearsal_name})",
        f"next: tunix-rt rehearsal run {target}   (on a cluster: kubectl apply -f {target})",
    ]
    for line in say:
        console.print(Text(line), soft_wrap=True)


def _fail(err: Console, lines: list[str], code: ExitCode) -> NoReturn:
    """Each line as ``error: …`` (credentials masked); exits with ``code``."""
    for line in lines:
        err.print(Text(scrub(f"error: {line}"), style="red"), soft_wrap=True)
    raise typer.Exit(code)


def _write(path: Path, text: str, err: Console) -> None:
    """Write a file (its folder made); exits (1) with one line when it cannot."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    except OSError as exc:
        _fail(err, [f"cannot write {path}: {exc.strerror or exc}"], ExitCode.FAILED)
