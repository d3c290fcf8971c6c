"""The operator process loads no rehearsal runner, no trainer, no Tune driver, and none
of the ML stacks; what it reads of a rehearsal lives in ``contract`` and ``evidence``."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("jax", "flax", "optax", "ray", "tunix_rt.train", "tunix_rt.tune", "tunix_rt.rehearsal")


def test_the_operator_imports_no_runner_code() -> None:
    code = (
        "import json, sys, tunix_rt.controller, tunix_rt.cli.operator\n"
        f"heavy = {HEAVY!r}\n"
        "print(json.dumps(sorted(m for m in sys.modules\n"
        "    if any(m == h or m.startswith(h + '.') for h in heavy))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert json.loads(result.stdout) == []
