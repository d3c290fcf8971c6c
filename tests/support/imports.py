"""What importing some modules brings into a fresh interpreter: the checks that keep the
CLI, the operator and the web view light."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence

ML_STACKS = ("jax", "flax", "optax", "ray")


def loaded_by(modules: Sequence[str], watched: Sequence[str] = ML_STACKS) -> list[str]:
    """Those of ``watched`` that are in ``sys.modules`` once a fresh interpreter has
    imported ``modules``, sorted."""
    code = (
        f"import json, sys, {', '.join(modules)}\n"
        f"print(json.dumps(sorted(m for m in {tuple(watched)!r} if m in sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    loaded: list[str] = json.loads(result.stdout)
    return loaded
