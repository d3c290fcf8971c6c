"""``make images`` (scripts/build_images.py): what it builds and pushes, with the commit baked in,
and the chart values it writes for exactly those images; bad settings said by name."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import helm_python as helm
import pytest

from helm.test_chart import CHART, env_of, operator_container, render
from support.images import COMMIT, REGISTRY, SCRIPT, built_values, script

ROOT = Path(__file__).resolve().parents[2]


def plan(**overrides: object) -> object:
    args: dict[str, object] = {"version": "0.1.0", "commit": COMMIT, "dirty": False,
                               "kinds": ["operator", "cpu", "cuda", "tpu"]}  # fmt: skip
    args |= overrides
    registry = str(args.pop("registry", REGISTRY))
    return script().plan(registry, **args)


def test_builds_and_pushes_every_image_with_the_commit_in_tag_and_label() -> None:
    built = plan()
    tag = f"0.1.0-{COMMIT[:12]}"
    assert built.references == {
        "operator": f"{REGISTRY}/operator:{tag}",
        "cpu": f"{REGISTRY}/trainer:{tag}-cpu",
        "cuda": f"{REGISTRY}/trainer:{tag}-cuda",
        "tpu": f"{REGISTRY}/trainer:{tag}-tpu",
    }
    builds = [c for c in built.commands if c[1] == "build"]
    pushes = [c for c in built.commands if c[1] == "push"]
    assert [c[2:4] for c in builds] == [
        ["-f", "Dockerfile"],
        ["-f", "images/trainer/Dockerfile"],
        ["-f", "images/trainer/Dockerfile"],
        ["-f", "images/trainer-tpu/Dockerfile"],
    ]
    for command in builds:
        assert f"TUNIX_RT_COMMIT_SHA={COMMIT}" in command and command[-1] == "."
        assert (ROOT / command[3]).is_file()
    cpu = builds[1]
    assert "JAX_EXTRA=cpu" in cpu and "JAX_EXTRA=cpu" not in builds[2]
    assert [c[2] for c in pushes] == list(built.references.values())


def test_the_values_file_names_what_was_built_and_the_chart_installs_with_it() -> None:
    values = built_values(kinds="operator,cpu,cuda,tpu")
    tag = f"0.1.0-{COMMIT[:12]}"
    assert values == {
        "image": {"repository": f"{REGISTRY}/operator", "tag": tag},
        "trainerImages": {
            "cpu": f"{REGISTRY}/trainer:{tag}-cpu",
            "gpu": f"{REGISTRY}/trainer:{tag}-cuda",
            "tpu": f"{REGISTRY}/trainer:{tag}-tpu",
        },
    }
    with helm.Chart.load(CHART) as chart:
        chart.validate_schema(values)
        docs, _ = render(chart, values, images=False)
    container = operator_container(docs)
    assert container["image"] == f"{REGISTRY}/operator:{tag}"
    env = env_of(container)
    assert env["TUNIX_RT_IMAGE_GPU"] == f"{REGISTRY}/trainer:{tag}-cuda"


def test_a_subset_builds_only_those_and_leaves_the_others_unset() -> None:
    built = plan(kinds=["operator", "cpu"], push=False)
    assert all(c[1] == "build" for c in built.commands) and len(built.commands) == 2
    assert set(built.values["trainerImages"]) == {"cpu"}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"registry": ""}, "REGISTRY is empty"),
        ({"registry": "https://ghcr.io/me"}, "is not a registry path"),
        ({"registry": "ghcr.io/Me/Tunix"}, "in lower case"),
        ({"registry": "ghcr.io/me:v1"}, "no scheme, tag or digest"),
        ({"kinds": ["operator", "rocm"]}, "choose from operator,cpu,cuda,tpu"),
        ({"dirty": True}, "uncommitted changes"),
        ({"tag": "latest"}, "not latest"),
    ],
)
def test_bad_settings_are_refused_by_name(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(script().ImagesError, match=message):
        plan(**overrides)


def test_a_dirty_tree_is_built_only_when_asked_and_then_marked() -> None:
    built = plan(dirty=True, allow_dirty=True)
    assert built.references["cpu"].endswith(f"{COMMIT[:12]}-dirty-cpu")
    assert f"TUNIX_RT_COMMIT_SHA={COMMIT}-dirty" in built.commands[0]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip


def test_dry_run_prints_the_commands_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "images.values.yaml"
    done = run("--registry", REGISTRY, "--dry-run", "--allow-dirty", "--values-file", str(out))
    assert done.returncode == 0, done.stderr
    assert "+ docker build -f Dockerfile" in done.stdout and "+ docker push" in done.stdout
    assert "trainerImages:" in done.stdout and not out.exists()


def test_without_a_builder_it_says_what_to_install(tmp_path: Path) -> None:
    done = run("--registry", REGISTRY, "--builder", "no-such-builder", "--allow-dirty",
               "--values-file", str(tmp_path / "v.yaml"))  # fmt: skip
    assert done.returncode == 2 and "no-such-builder is not on PATH" in done.stderr
    assert not (tmp_path / "v.yaml").exists()


def test_make_images_needs_a_registry() -> None:
    done = subprocess.run(["make", "-s", "images"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip
    assert done.returncode == 2 and "make images needs REGISTRY=" in done.stderr
