"""Build and push the operator and trainer images, and write the chart values naming them.

    make images REGISTRY=ghcr.io/my-org/tunix-rt                 # build, push, images.values.yaml
    make images REGISTRY=ghcr.io/my-org/tunix-rt ARGS=--dry-run  # print the commands only
    uv run python scripts/build_images.py --registry R --kinds operator,cpu --no-push  # kind

Four images from this checkout, each with the commit baked in (``TUNIX_RT_COMMIT_SHA``:
what every run manifest records as ``commit_sha``) and in its tag,
``<version>-<commit12>``:

    R/operator:<tag>          Dockerfile
    R/trainer:<tag>-cpu       images/trainer/Dockerfile --build-arg JAX_EXTRA=cpu
    R/trainer:<tag>-cuda      images/trainer/Dockerfile
    R/trainer:<tag>-tpu       images/trainer-tpu/Dockerfile

Then ``images.values.yaml`` (``--values-file``) holds the chart values for exactly the
images built: ``helm install … -f images.values.yaml``. The chart refuses to install
without an operator and a CPU trainer image, so nothing is ever pulled from a registry
nobody pushed to. A tree with uncommitted changes is refused (the baked commit would not
be what ran) unless ``--allow-dirty``, which marks the tag and commit ``-dirty``.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tunix_rt.reading import kube_yaml

ROOT = Path(__file__).resolve().parents[1]
VALUES_FILE = "images.values.yaml"
SCHEMA = ROOT / "charts" / "tunix-rt" / "values.schema.json"
# A registry and path as Docker names them, no tag or digest: the pattern the chart holds
# image.repository to (it also allows the empty default, which plan() refuses first).
REGISTRY = re.compile(
    json.loads(SCHEMA.read_text())["properties"]["image"]["properties"]["repository"]["pattern"]
)
# The chart allows 128 characters; the trainers' tags add -cuda and the like.
TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,100}$")


@dataclass(frozen=True)
class Kind:
    """One image: its Dockerfile, extra build args, where its name goes in the chart values."""

    name: str
    dockerfile: str
    repository: str
    suffix: str
    build_args: tuple[tuple[str, str], ...] = ()


KINDS: dict[str, Kind] = {
    "operator": Kind("operator", "Dockerfile", "operator", ""),
    "cpu": Kind("cpu", "images/trainer/Dockerfile", "trainer", "-cpu", (("JAX_EXTRA", "cpu"),)),
    "cuda": Kind("cuda", "images/trainer/Dockerfile", "trainer", "-cuda"),
    "tpu": Kind("tpu", "images/trainer-tpu/Dockerfile", "trainer", "-tpu"),
}
TRAINER_KEY = {"cpu": "cpu", "cuda": "gpu", "tpu": "tpu"}  # kind -> trainerImages.<key>


class ImagesError(ValueError):
    """A bad setting; the message names it and says the fix."""


@dataclass(frozen=True)
class Plan:
    """What to run, and the chart values that name what it built."""

    commands: list[list[str]]
    values: dict[str, object]
    references: dict[str, str]


def plan(
    registry: str,
    *,
    version: str,
    commit: str,
    dirty: bool,
    kinds: list[str],
    builder: str = "docker",
    push: bool = True,
    tag: str | None = None,
    allow_dirty: bool = False,
) -> Plan:
    """The build (and push) commands and the values file's content; no I/O."""
    registry = registry.strip().rstrip("/")
    if not registry:
        raise ImagesError("REGISTRY is empty: name the registry your nodes pull from, e.g. "
                          "make images REGISTRY=ghcr.io/my-org/tunix-rt")  # fmt: skip
    if "://" in registry or not REGISTRY.match(registry):
        raise ImagesError(
            f"REGISTRY={registry!r} is not a registry path: write it as Docker does, "
            "host[:port]/path in lower case, no scheme, tag or digest "
            "(e.g. ghcr.io/my-org/tunix-rt or us-docker.pkg.dev/PROJECT/REPO)"
        )
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise ImagesError(f"--kinds {','.join(kinds)!r}: choose from {','.join(KINDS)}")
    if dirty and not allow_dirty:
        raise ImagesError(
            "the working tree has uncommitted changes, so the commit baked into the images "
            "would not be what they run: commit them first, or pass --allow-dirty (the "
            "tag and commit then end in -dirty)"
        )
    sha = f"{commit}-dirty" if dirty else commit
    tag = tag or f"{version}-{commit[:12]}{'-dirty' if dirty else ''}"
    if not TAG.match(tag) or tag == "latest":
        raise ImagesError(f"TAG={tag!r} must be a Docker tag (letters, digits, . _ -), not latest")
    commands: list[list[str]] = []
    refs: dict[str, str] = {}
    for name in dict.fromkeys(kinds):  # order kept, repeats dropped
        kind = KINDS[name]
        repo = f"{registry}/{kind.repository}"
        ref = f"{repo}:{tag}{kind.suffix}"
        args = [("TUNIX_RT_COMMIT_SHA", sha), ("TUNIX_RT_IMAGE", repo), *kind.build_args]
        build = [builder, "build", "-f", kind.dockerfile, "-t", ref]
        for key, value in args:
            build += ["--build-arg", f"{key}={value}"]
        commands.append([*build, "."])
        if push:
            commands.append([builder, "push", ref])
        refs[name] = ref
    return Plan(commands, chart_values(registry, tag, refs), refs)


def chart_values(registry: str, tag: str, refs: dict[str, str]) -> dict[str, object]:
    """The chart's image values for the images in ``refs`` (the others stay unset)."""
    values: dict[str, object] = {}
    if "operator" in refs:
        values["image"] = {"repository": f"{registry}/operator", "tag": tag}
    trainers = {TRAINER_KEY[k]: ref for k, ref in refs.items() if k in TRAINER_KEY}
    if trainers:
        values["trainerImages"] = trainers
    return values


def values_text(built: Plan, commit: str, pushed: bool) -> str:
    """The values file: a header that says what it is, then the values."""
    how = "built and pushed" if pushed else "built (not pushed: load them into your cluster)"
    header = (
        f"# Written by `make images` (scripts/build_images.py) at commit {commit}: the images it\n"
        f"# {how}. Install with: helm install tunix-rt charts/tunix-rt -f {VALUES_FILE} …\n"
    )
    return header + kube_yaml.dump(built.values, sort_keys=False)


def git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.strip()


def find_builder(requested: str | None) -> str:
    """docker, else podman (both take the same build/push arguments)."""
    for name in [requested] if requested else ["docker", "podman"]:
        if shutil.which(name):
            return name
    wanted = requested or "docker or podman"
    raise ImagesError(f"{wanted} is not on PATH: install it (or pass --builder), or use "
                      "--dry-run to see the commands")  # fmt: skip


def version() -> str:
    text = (ROOT / "operator" / "tunix_rt" / "__init__.py").read_text()
    match = re.search(r'^__version__ = "([^"]+)"', text, re.M)
    if match is None:
        raise ImagesError("operator/tunix_rt/__init__.py has no __version__")
    return match.group(1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--registry", required=True, help="e.g. ghcr.io/my-org/tunix-rt")
    parser.add_argument("--kinds", default=",".join(KINDS), help="subset of operator,cpu,cuda,tpu")
    parser.add_argument("--tag", default=None, help="default: <version>-<commit12>")
    parser.add_argument("--builder", default=None, help="docker (default) or podman")
    parser.add_argument("--no-push", action="store_true", help="build only")
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run none")
    parser.add_argument("--allow-dirty", action="store_true")
    parser.add_argument("--values-file", type=Path, default=ROOT / VALUES_FILE)
    args = parser.parse_args(argv)
    try:
        builder = (args.builder or "docker") if args.dry_run else find_builder(args.builder)
        commit = git("rev-parse", "HEAD")
        built = plan(
            args.registry,
            version=version(),
            commit=commit,
            dirty=bool(git("status", "--porcelain", "--untracked-files=no")),
            kinds=[k.strip() for k in args.kinds.split(",") if k.strip()],
            builder=builder,
            push=not args.no_push,
            tag=args.tag,
            allow_dirty=args.allow_dirty,
        )
    except ImagesError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for command in built.commands:
        print(f"+ {shlex.join(command)}", flush=True)
        if not args.dry_run:
            done = subprocess.run(command, cwd=ROOT, check=False)
            if done.returncode != 0:
                print(f"error: {command[0]} {command[1]} failed (exit {done.returncode}); "
                      f"{args.values_file} not written", file=sys.stderr)  # fmt: skip
                return 1
    if args.dry_run:
        print(f"dry run: nothing built; {args.values_file} would hold:")
        print(values_text(built, commit, not args.no_push), end="")
        return 0
    args.values_file.write_text(values_text(built, commit, not args.no_push))
    print(f"wrote {args.values_file}: helm install … -f {args.values_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
