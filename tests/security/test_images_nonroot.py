"""Every image runs as a non-root user (issue 14, item 7): the operator's Dockerfile and
every ``images/*/Dockerfile``, found by glob so that a new image is covered at once.
``tests/images/test_dockerfiles.py`` checks the known three in more depth."""

from __future__ import annotations

from pathlib import Path

import pytest

from images.test_dockerfiles import ALL, ROOT, parse

IMAGES = sorted([ROOT / "Dockerfile", *ROOT.glob("images/*/Dockerfile")])


def test_every_image_is_in_the_detailed_checks() -> None:
    assert set(IMAGES) == set(ALL), "a new image: add it to tests/images/test_dockerfiles.py"


@pytest.mark.reliability(
    "security",
    "every image ends with a numeric non-root USER",
    result="Dockerfile and images/*/Dockerfile: USER uid > 0, nothing after it",
)
@pytest.mark.parametrize("path", IMAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_final_stage_runs_as_non_root(path: Path) -> None:
    final = parse(path).final
    ops = [op for op, _ in final.instructions]
    assert "USER" in ops, f"{path}: no USER in the final stage (it would run as root)"
    user = final.args("USER")[-1]
    uid = user.partition(":")[0]
    assert uid.isdigit() and int(uid) != 0, f"{path}: USER {user} is not a non-root uid"
    # Nothing after the last USER can switch back (no later USER, RUN su/sudo).
    last = len(ops) - 1 - ops[::-1].index("USER")
    assert "USER" not in ops[last + 1 :]
    assert not any(op == "RUN" for op in ops[last + 1 :])
