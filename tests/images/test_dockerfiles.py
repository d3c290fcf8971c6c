"""Static checks of the operator and trainer Dockerfiles (no Docker engine runs here).

Each image must start from pinned bases, run as a numeric non-root user, and install this
package from uv.lock (`uv sync --frozen`), never from a fresh resolution.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OPERATOR = ROOT / "Dockerfile"
TRAINER = ROOT / "images" / "trainer" / "Dockerfile"
TRAINER_TPU = ROOT / "images" / "trainer-tpu" / "Dockerfile"
ALL = [OPERATOR, TRAINER, TRAINER_TPU]


@dataclass
class Stage:
    base: str
    alias: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def args(self, op: str) -> list[str]:
        return [arg for name, arg in self.instructions if name == op]

    def runs(self) -> str:
        return "\n".join(self.args("RUN"))


@dataclass
class Dockerfile:
    global_args: dict[str, str]
    stages: list[Stage]

    @property
    def final(self) -> Stage:
        return self.stages[-1]


def parse(path: Path) -> Dockerfile:
    """Instructions with continuation lines joined and comments dropped; ARG defaults kept."""
    logical: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, f"{path}: dangling line continuation"

    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical:
        op, _, rest = line.partition(" ")
        op = op.upper()
        rest = rest.strip()
        if op == "FROM":
            words = rest.split()
            alias = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=words[0], alias=alias))
        elif not stages:
            assert op == "ARG", f"{path}: {op} before the first FROM"
            name, _, default = rest.partition("=")
            global_args[name] = default
        else:
            stages[-1].instructions.append((op, rest))
    return Dockerfile(global_args, stages)


def resolve(image: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args[m.group(1) or m.group(2)], image)


PINNED_PYTHON = re.compile(r"^python:3\.11\.\d+-slim-(bookworm|trixie)(@sha256:[0-9a-f]{64})?$")
PINNED_UV = re.compile(r"^ghcr\.io/astral-sh/uv:\d+\.\d+\.\d+(@sha256:[0-9a-f]{64})?$")


@pytest.mark.parametrize("path", ALL, ids=lambda p: str(p.relative_to(ROOT)))
def test_bases_are_pinned(path: Path) -> None:
    dockerfile = parse(path)
    aliases = {s.alias for s in dockerfile.stages if s.alias}
    externals = []
    for stage in dockerfile.stages:
        image = resolve(stage.base, dockerfile.global_args)
        if image in aliases:
            continue
        externals.append(image)
        assert "latest" not in image
        assert PINNED_PYTHON.match(image) or PINNED_UV.match(image), (
            f"{path.name}: base {image!r} is not pinned to an exact version"
        )
        # COPY --from=<image> would be an unpinned base too.
    for stage in dockerfile.stages:
        for copy in stage.args("COPY"):
            source = re.search(r"--from=(\S+)", copy)
            if source:
                assert source.group(1) in aliases, f"COPY --from={source.group(1)} is not a stage"
    # The runtime stage is the same pinned Python as the build stage (the venv links to it).
    assert resolve(dockerfile.final.base, dockerfile.global_args).startswith("python:3.11.")
    assert len({i for i in externals if i.startswith("python:")}) == 1
    # requires-python of the package allows that interpreter.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"].startswith(">=3.11")


@pytest.mark.parametrize("path", ALL, ids=lambda p: str(p.relative_to(ROOT)))
def test_runs_as_numeric_non_root_user(path: Path) -> None:
    final = parse(path).final
    users = final.args("USER")
    assert users, f"{path.name}: the final stage sets no USER (it would run as root)"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) > 0, f"USER {users[-1]} is not a numeric non-root uid"
    assert not gid or (gid.isdigit() and int(gid) > 0)
    # The user exists in the image with that uid (tools such as Ray look up $HOME).
    assert re.search(rf"useradd\b.*--uid {uid}\b", final.runs())
    # Nothing after the USER switches back.
    ops = [op for op, _ in final.instructions]
    assert "RUN" not in ops[ops.index("USER") :]


def sync_commands(dockerfile: Dockerfile) -> list[list[str]]:
    """Every `uv sync ...` command line, as words, in build order."""
    return [
        ["uv", "sync", *match.group(1).split()]
        for stage in dockerfile.stages
        for run in stage.args("RUN")
        for match in re.finditer(r"\buv sync\b([^;&|]*)", run)
    ]


@pytest.mark.parametrize("path", ALL, ids=lambda p: str(p.relative_to(ROOT)))
def test_package_is_installed_from_the_lock(path: Path) -> None:
    dockerfile = parse(path)
    build = next(
        s for s in dockerfile.stages if "pyproject.toml uv.lock README.md ./" in s.args("COPY")
    )
    assert "operator ./operator" in build.args("COPY")
    syncs = sync_commands(dockerfile)
    assert syncs, f"{path.name}: no uv sync"
    for words in syncs:
        assert "--frozen" in words, f"{' '.join(words)}: not from the lock"
        assert "--no-dev" in words
    # The last sync installs the package itself, as a wheel (the source is not copied on).
    assert "--no-editable" in syncs[-1] and "--no-install-project" not in syncs[-1]
    extras = {words[i + 1] for words in syncs for i, w in enumerate(words) if w == "--extra"}
    declared = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    )
    assert extras <= declared
    if path == OPERATOR:
        assert extras == {"gcs"}, "the operator image installs only gcsfs (no JAX, no Ray)"
    else:
        assert "train" in extras
    # Only the venv reaches the runtime stage, on PATH.
    final = dockerfile.final
    assert any(c.startswith("--from=build") and "/app/.venv" in c for c in final.args("COPY"))
    assert "PATH=/app/.venv/bin:$PATH" in " ".join(final.args("ENV"))
    for name in ("TUNIX_RT_IMAGE", "TUNIX_RT_COMMIT_SHA"):
        assert any(a.startswith(name) for a in final.args("ARG"))
        assert f"{name}=${{{name}}}" in " ".join(final.args("ENV"))


def test_operator_image_runs_the_operator() -> None:
    final = parse(OPERATOR).final
    assert final.args("ENTRYPOINT") == ['["tunix-rt", "operator"]']
    assert "8080" in final.args("EXPOSE")[0] and "9090" in final.args("EXPOSE")[0]
    assert not any("jax" in s.runs() or "ray" in s.runs().split() for s in parse(OPERATOR).stages)


@pytest.mark.parametrize(
    ("path", "plugin"),
    [(TRAINER, "jax[cuda12]"), (TRAINER_TPU, "jax[tpu]")],
    ids=["cuda", "tpu"],
)
def test_trainer_images_add_the_accelerator_at_the_locked_jax(path: Path, plugin: str) -> None:
    runs = "\n".join(s.runs() for s in parse(path).stages)
    # The plugin is pinned to the jax the lock installed, under the lock as constraints.
    assert f'"{plugin}==${{JAX_VERSION}}"' in runs
    assert 'm.version("jax")' in runs
    assert re.search(r"uv export --frozen\b.*-o /tmp/locked\.txt", runs)
    assert "--constraint /tmp/locked.txt" in runs
    # KubeRay starts Ray through bash and probes the pods with wget.
    final = parse(path).final
    assert re.search(r"apt-get install .*\bwget\b", final.runs())
    assert "--shell /bin/bash" in final.runs()
    assert "import jax, ray, tunix_rt" in runs


def test_cuda_trainer_also_builds_for_cpu() -> None:
    text = TRAINER.read_text()
    assert "ARG JAX_EXTRA=cuda12" in text
    assert re.search(r"cpu\)", text) and re.search(r"\*\) echo \"JAX_EXTRA must be", text)


def dockerignore_patterns() -> set[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return {line.strip().rstrip("/") for line in lines if line.strip() and not line.startswith("#")}


def test_dockerignore_keeps_the_context_small_and_complete() -> None:
    patterns = dockerignore_patterns()
    for excluded in (".venv", "runs", "**/.git", "**/__pycache__", "tests", "submission_runs"):
        assert excluded in patterns, f".dockerignore does not exclude {excluded}"
    assert not any(p.startswith("!") for p in patterns)
    # What the builds COPY must stay in the context.
    for needed in ("operator", "pyproject.toml", "uv.lock", "README.md"):
        assert needed not in patterns and not any(
            p.endswith("*") and needed.startswith(p.rstrip("*")) for p in patterns
        )
        assert (ROOT / needed).exists()
