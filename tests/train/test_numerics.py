"""The XLA flags every training process pins (``tunix_rt.contract.numerics``): appended to
a user's XLA_FLAGS, never clobbering them, and recorded with the CPU in run_manifest.json.
That the pins make a config's metrics equal however it runs: tests/tune/test_same_numbers.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from support.evidence import sample_manifest
from tunix_rt.contract import numerics
from tunix_rt.contract.numerics import (
    PINNED_ISA,
    merge_xla_flags,
    numerics_record,
    parse_xla_flags,
    pin_numerics,
    pinned_flags,
)
from tunix_rt.evidence.validation import EvidenceError, validate

EPYC = "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu sse4_2 avx avx2 fma\n"
SKYLAKE = "model name\t: Intel Xeon\nflags\t\t: sse4_2 avx avx2 fma avx512f avx512bw\n"
OLD = "model name\t: Intel Xeon E5\nflags\t\t: sse4_2 avx\n"


def test_pins_per_architecture() -> None:
    x86 = pinned_flags("x86_64")
    assert x86 == {
        "xla_cpu_multi_thread_eigen": "false",
        "xla_cpu_experimental_ynn_fusion_type": "",
        "xla_cpu_max_isa": PINNED_ISA,
    }
    assert "xla_cpu_max_isa" not in pinned_flags("aarch64")  # x86-only values


def test_a_users_flags_are_kept_and_win() -> None:
    merged, overridden = merge_xla_flags(
        "--xla_dump_to=/tmp/d --xla_cpu_max_isa=AVX512",
        {
            "xla_cpu_max_isa": "AVX2",
            "xla_cpu_multi_thread_eigen": "false",
        },
    )
    assert (
        merged == "--xla_dump_to=/tmp/d --xla_cpu_max_isa=AVX512 --xla_cpu_multi_thread_eigen=false"
    )
    assert overridden == ["xla_cpu_max_isa"]
    assert parse_xla_flags(merged)["xla_cpu_max_isa"] == "AVX512"
    assert parse_xla_flags("--a --b= --c=1 --c=2") == {"a": "true", "b": "", "c": "2"}


def test_pin_is_idempotent_and_changes_nothing_once_jax_started(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delitem(sys.modules, "jax", raising=False)
    env = {"XLA_FLAGS": "--xla_dump_to=/tmp/d"}
    first = pin_numerics(env)
    flags = env["XLA_FLAGS"]
    assert flags.startswith("--xla_dump_to=/tmp/d ")
    assert pin_numerics(env) == first and env["XLA_FLAGS"] == flags
    assert first["applied"] and first["overridden"] == []

    monkeypatch.setitem(sys.modules, "jax", sys)  # JAX already started: too late
    late = {"XLA_FLAGS": "--xla_dump_to=/tmp/d"}
    state = pin_numerics(late)
    assert late["XLA_FLAGS"] == "--xla_dump_to=/tmp/d" and state["applied"] is False


def test_the_record_says_the_cpu_and_when_identity_is_not_promised(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(numerics.platform, "machine", lambda: "x86_64")
    pinned = {"XLA_FLAGS": merge_xla_flags("", pinned_flags("x86_64"))[0]}
    record = numerics_record(["cpu:0"], environ=pinned, cpuinfo=EPYC)
    assert record["cpu"]["model"] == "AMD EPYC 7B13"
    assert record["cpu"]["flags"] == ["sse4_2", "avx", "avx2", "fma"]
    assert record["cpu"]["cores"] == os.cpu_count()
    assert record["bit_identical"] is True and record["applied"] is True
    assert record["jaxlib"] and record["pinned"]["--xla_cpu_max_isa"] == PINNED_ISA

    wide = numerics_record(["cpu:0"], environ=pinned, cpuinfo=SKYLAKE)
    assert wide["bit_identical"] is True and "avx512f" in wide["cpu"]["flags"]

    old = numerics_record(["cpu:0"], environ=pinned, cpuinfo=OLD)
    assert old["bit_identical"] is False and "lacks avx2/fma" in old["note"]

    gpu = numerics_record(["cuda:0"], environ=pinned, cpuinfo=EPYC)
    assert gpu["bit_identical"] is False and "not bit-reproducible" in gpu["note"]
    assert numerics_record(accelerator=True, environ=pinned, cpuinfo=EPYC)["bit_identical"] is False

    unpinned = numerics_record(["cpu:0"], environ={}, cpuinfo=EPYC)
    assert unpinned["applied"] is False and "not in effect" in unpinned["note"]

    theirs = {"XLA_FLAGS": pinned["XLA_FLAGS"] + " --xla_cpu_max_isa=AVX512"}
    over = numerics_record(["cpu:0"], environ=theirs, cpuinfo=SKYLAKE)
    assert over["overridden"] == ["xla_cpu_max_isa"] and "overrode" in over["note"]

    for each in (record, old, gpu, unpinned, over):
        validate_numerics(each)


def validate_numerics(record: dict[str, object]) -> None:
    """The record goes into a manifest as is: build_run_manifest validates it against
    run_manifest.schema.json, which a manifest without it still satisfies."""
    manifest = sample_manifest(numerics=record)
    assert manifest["numerics"] == record
    assert "numerics" not in sample_manifest()
    with pytest.raises(EvidenceError):
        validate("run_manifest", {**manifest, "numerics": {**record, "cpu": "AMD"}})


def test_jax_starts_with_the_pins_and_honours_them(subprocess_env: dict[str, str]) -> None:
    """The pinned values are ones this jaxlib accepts (an unknown flag or value aborts
    JAX's start), and they reach the compiler: no YNNPACK fusion in the compiled HLO."""
    probe = (
        "from tunix_rt.contract.numerics import pin_numerics; pin_numerics()\n"
        "import jax, jax.numpy as jnp, json, os\n"
        "f = jax.jit(lambda x, w: jnp.tanh(x @ w).sum(axis=-1))\n"
        "x = jnp.ones((64, 32)); w = jnp.ones((32, 16))\n"
        "hlo = f.lower(x, w).compile().as_text()\n"
        "print(json.dumps({'ynn': '__ynn_fusion' in hlo, 'sum': float(f(x, w)[0]),"
        " 'flags': os.environ['XLA_FLAGS']}))\n"
    )
    env = subprocess_env | {
        "JAX_PLATFORMS": "cpu",
        "XLA_FLAGS": "--xla_cpu_enable_fast_min_max=false",
    }
    out = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["ynn"] is False and seen["sum"] == pytest.approx(16.0)
    assert seen["flags"].startswith("--xla_cpu_enable_fast_min_max=false --")  # appended
    assert set(parse_xla_flags(seen["flags"])) >= set(pinned_flags())
