"""A 1-CPU trial computes on one thread: ``size_cpu_pools`` starts JAX's CPU backend with
the affinity narrowed, then gives every thread the whole machine back (nothing pinned).
Measured by where the process's CPU time goes (``/proc/self/task``), not by timing."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

PROBE = """
import json, os, sys
from tunix_rt.tune.trainable import size_cpu_pools
allowed = sorted(os.sched_getaffinity(0))
size_cpu_pools(1)
import jax, jax.numpy as jnp

def thread_cpu():
    out = {}
    for tid in os.listdir("/proc/self/task"):
        fields = open(f"/proc/self/task/{tid}/stat").read().rsplit(")", 1)[1].split()
        out[tid] = int(fields[11]) + int(fields[12])
    return out

ws = [jnp.ones((256, 256)) * (i + 1) * 1e-3 for i in range(6)]
f = jax.jit(lambda x, ws: sum(jnp.tanh(x @ w) for w in ws))  # independent matmuls
x = jnp.ones((256, 256))
f(x, ws).block_until_ready()
before = thread_cpu()
for _ in range(400):
    x = f(x, ws)
x.block_until_ready()
used = sorted((c - before.get(t, 0) for t, c in thread_cpu().items()), reverse=True)
restored = all(
    sorted(os.sched_getaffinity(int(t))) == allowed for t in os.listdir("/proc/self/task")
)
print(json.dumps({"busiest": used[0] / max(1, sum(used)), "ticks": sum(used),
                  "restored": restored, "allowed": allowed}))
"""


@pytest.mark.skipif(
    not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="needs Linux and at least 2 usable cores",
)
def test_a_one_cpu_trial_computes_on_one_thread_and_is_not_pinned(
    subprocess_env: dict[str, str],
) -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        env=subprocess_env | {"JAX_PLATFORMS": "cpu"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    probe = json.loads(out.stdout.strip().splitlines()[-1])
    assert probe["restored"], probe  # every thread may run on every core again
    assert probe["ticks"] >= 20, probe  # enough CPU time to judge the split
    assert probe["busiest"] >= 0.8, probe
