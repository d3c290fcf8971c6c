"""Helpers for the promote-to-git tests: a finished sweep's results folder written without
Ray, a local bare repository seeded with a first commit on main, and a stand-in for the
GitHub / GitLab REST APIs (aiohttp on loopback, in a thread of its own, recording every
request and answering what the test says)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from support.rehearsal import tiny_trainer
from support.trials import lr_trial
from tunix_rt.api.sweep import SweepSpec
from tunix_rt.api.trial import SweepResult, TrialState
from tunix_rt.storage import Store

SWEEP = "lr-demo"
BEST = "lr-demo-00001"
SCORE = 0.75
GITHUB_TOKEN = "ghp_" + "S3cr3tT0kenValue" * 3
"""Shaped like a GitHub token: redaction must hide it by value, not by shape alone."""
GITLAB_TOKEN = "glpat-" + "Zq9" * 8
"""A GitLab token: no shape the redactor knows; only its value hides it."""

_FORGE_VARIABLES = (
    "GITHUB_TOKEN",
    "GITLAB_TOKEN",
    "TUNIX_RT_GIT_TOKEN_FILE",
    "GITHUB_API_URL",
    "GITLAB_API_URL",
    "GIT_AUTHOR_NAME",
    "GIT_AUTHOR_EMAIL",
    "GIT_COMMITTER_NAME",
    "GIT_COMMITTER_EMAIL",
)


def git_env(**extra: str) -> dict[str, str]:
    """This process's environment without the machine's git config or any forge token,
    plus ``extra``: what a promotion and the test's own git commands run with."""
    env = {k: v for k, v in os.environ.items() if k not in _FORGE_VARIABLES}
    env |= {"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    return env | extra


def cli_env(**extra: str) -> dict[str, str | None]:
    """:func:`git_env` for typer's CliRunner, which only sets what it is given: the forge
    variables this process may have are unset (None) unless ``extra`` sets them."""
    unset: dict[str, str | None] = dict.fromkeys(_FORGE_VARIABLES)
    return unset | dict(git_env(**extra))


def git(*args: str, env: Mapping[str, str], cwd: Path | None = None) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=dict(env), capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done.stdout


def bare_repo(root: Path, env: Mapping[str, str]) -> Path:
    """``root/models.git``: a bare repository whose main holds one commit (a README)."""
    bare = root / "models.git"
    git("init", "--quiet", "--bare", "--initial-branch=main", str(bare), env=env)
    seed = root / "seed"
    git("clone", "--quiet", str(bare), str(seed), env=env)
    (seed / "README.md").write_text("models\n")
    git("add", "README.md", env=env, cwd=seed)
    who = ["-c", "user.name=seed", "-c", "user.email=seed@localhost"]
    git(*who, "commit", "--quiet", "-m", "first commit", env=env, cwd=seed)
    git("push", "--quiet", "origin", "main", env=env, cwd=seed)
    return bare


def branches(bare: Path, env: Mapping[str, str]) -> set[str]:
    out = git("--git-dir", str(bare), "for-each-ref", "--format=%(refname:short)", env=env)
    return set(out.split())


def show(bare: Path, *args: str, env: Mapping[str, str]) -> str:
    """``git show ARGS`` (``branch:path`` for a file) in the bare repository."""
    return git("--git-dir", str(bare), "show", *args, env=env)


def new_commits(bare: Path, base: str, branch: str, env: Mapping[str, str]) -> list[str]:
    out = git("--git-dir", str(bare), "rev-list", f"{base}..{branch}", env=env)
    return out.split()


def finished_sweep(root: Path, *, evidence: bool = True) -> Path:
    """A finished learning-rate sweep of the tiny trainer under ``root/local/lr-demo``:
    spec, trial records, summary.json (best trial ``lr-demo-00001``, primary_score 0.75)
    and, with ``evidence``, its evidence folder's report.html and zip."""
    store = Store(f"file://{root}")
    spec = SweepSpec.model_validate(
        {
            "trainer": {k: v for k, v in tiny_trainer().items() if k != "maxSteps"},
            "searchSpace": {"learningRate": {"type": "loguniform", "low": 1e-4, "high": 0.1}},
            "maxTrials": 2,
            "budget": {"smokeSteps": 8},
            "storage": f"file://{root}",
        }
    )
    prefix = f"local/{SWEEP}"
    trials = [
        lr_trial(SWEEP, f"{SWEEP}-00000", 0.0005, 0.25, TrialState.SUCCEEDED),
        lr_trial(SWEEP, BEST, 0.004, SCORE, TrialState.SUCCEEDED),
    ]
    store.write_json(f"{prefix}/spec.json", spec)
    for trial in trials:
        store.write_json(f"{prefix}/trials/{trial.trial_id}.json", trial)
    if evidence:
        store.write_text(f"{prefix}/evidence/report.html", "<html>trials</html>")
        store.write_bytes(f"{prefix}/evidence/submission/tunix_rt_{SWEEP}.zip", b"PK\x05\x06")
    summary = SweepResult(
        sweep=SWEEP,
        namespace="local",
        trials=trials,
        best_trial_id=BEST,
        best_params={"learningRate": 0.004},
        primary_score=SCORE,
        trials_planned=2,
        base_config=spec.trial_config({}).to_wire(),
        message=f"best trial {BEST}",
    )
    store.write_json(f"{prefix}/summary.json", summary)
    return root / "local" / SWEEP


@dataclass
class Recorded:
    """One request the stand-in received."""

    method: str
    raw_path: str
    headers: dict[str, str]
    body: Any


@dataclass
class ForgeStandIn:
    """A stand-in forge API on 127.0.0.1 (random port): records each request in
    ``requests`` and answers ``status`` with ``body`` (JSON); ``{url}`` in a body string
    becomes its own address."""

    status: int = 201
    body: dict[str, Any] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    url: str = ""
    _loop: asyncio.AbstractEventLoop | None = None
    _runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else None
        self.requests.append(
            Recorded(request.method, request.raw_path, dict(request.headers), body)
        )
        answer = {
            k: v.format(url=self.url) if isinstance(v, str) else v for k, v in self.body.items()
        }
        return web.json_response(answer, status=self.status)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"

    def serve(self) -> Iterator[ForgeStandIn]:
        """Runs the server in a thread for the duration of a fixture."""
        self._loop = asyncio.new_event_loop()
        thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=30)
        try:
            yield self
        finally:
            if self._runner is not None:
                cleanup = self._runner.cleanup()
                asyncio.run_coroutine_threadsafe(cleanup, self._loop).result(timeout=30)
            self._loop.call_soon_threadsafe(self._loop.stop)
            thread.join(timeout=30)
            self._loop.close()
