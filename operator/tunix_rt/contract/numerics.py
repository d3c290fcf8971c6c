"""Same config, same numbers, on any CPU host: the XLA flags every training process pins.

XLA's CPU backend compiles for the host it runs on, so the same config scored 0.7031 on
one machine and 0.6895 on another (issue 23). Three things vary the order of floating
point operations, and each is pinned here:

- ``--xla_cpu_max_isa=AVX2`` (x86-64 only): the instruction set LLVM generates code for.
  Without it an AVX-512 host vectorises reductions wider than an AVX2 host, and the sums
  round differently. AVX2 (x86-64-v3) is what every x86 server of the last decade has.
- ``--xla_cpu_experimental_ynn_fusion_type=`` (empty: no YNNPACK fusions): YNNPACK picks
  its dot and reduce kernels at run time from the CPU it finds (SSE2/AVX2/AVX-512
  variants), whatever ``max_isa`` says, and splits them over the intra-op thread pool.
  Without its fusions the dots go to Eigen and the rest to XLA's own code, both of which
  the two other flags fix. Measured here: no loss in steps/s (benchmarks/README.md).
- ``--xla_cpu_multi_thread_eigen=false``: Eigen's matmuls on one thread. Multi-threaded
  Eigen splits the contraction by the pool's size, so a 2-core ``python -m
  tunix_rt.train`` and a 1-CPU sweep trial of one config differed (0.6992 vs 0.7031).

A user's own ``XLA_FLAGS`` are kept and win: a flag set there is not pinned again, and
the manifest lists it under ``overridden``. The pins take effect only before JAX starts
its CPU backend, so :func:`pin_numerics` runs first in every process that trains (the
trial worker's preparation and ``run_trial``); it never imports JAX. On GPU and TPU
these are CPU-only flags: those kernels are not bit-reproducible and the manifest says so.
"""

from __future__ import annotations

import os
import platform
import shlex
import sys
from collections.abc import Mapping, MutableMapping
from importlib import metadata
from typing import Any

PINNED_ISA = "AVX2"
"""The instruction-set cap on x86-64 (a value ``xla_cpu_max_isa`` accepts: SSE4_2, AVX,
AVX2, AVX512, …). Hosts below it (no AVX2/FMA) cannot run the same code: recorded."""

ISA_NEEDS = ("avx2", "fma")
"""The host CPU flags that the pinned ISA's code uses (``/proc/cpuinfo`` names)."""

RECORDED_CPU_FLAGS = (
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx512_bf16",
    "amx_tile",
    "asimd",
    "sve",
)
"""CPU flags worth recording: the instruction sets XLA and YNNPACK choose between."""

BIT_IDENTITY_NOTE_ACCELERATOR = (
    "trained on an accelerator: GPU/TPU kernels (reductions, atomics, autotuned "
    "algorithms) are not bit-reproducible, so the same config may score differently from "
    "run to run and machine to machine; only CPU runs are pinned"
)


def pinned_flags(machine: str | None = None) -> dict[str, str]:
    """The XLA flags pinned on this architecture, name (without ``--``) -> value."""
    arch = (machine or platform.machine()).lower()
    flags = {
        "xla_cpu_multi_thread_eigen": "false",
        "xla_cpu_experimental_ynn_fusion_type": "",
    }
    if arch in ("x86_64", "amd64"):
        flags["xla_cpu_max_isa"] = PINNED_ISA
    return flags


def parse_xla_flags(text: str) -> dict[str, str]:
    """``--name=value`` tokens of an ``XLA_FLAGS`` string, name -> value (``"true"``
    for a bare ``--name``); later tokens win, as in XLA's own parser."""
    out: dict[str, str] = {}
    for token in shlex.split(text):
        name, eq, value = token.lstrip("-").partition("=")
        if name:
            out[name] = value if eq else "true"
    return out


def merge_xla_flags(user: str, pins: Mapping[str, str]) -> tuple[str, list[str]]:
    """``user`` with every pin it does not set appended; and the pinned names the user
    set to another value (their value is kept: it is theirs to choose)."""
    theirs = parse_xla_flags(user)
    overridden = sorted(n for n, v in pins.items() if n in theirs and theirs[n] != v)
    added = [f"--{n}={v}" for n, v in pins.items() if n not in theirs]
    return " ".join([user.strip(), *added]).strip(), overridden


def pin_numerics(environ: MutableMapping[str, str] | None = None) -> dict[str, Any]:
    """Append the pins to ``XLA_FLAGS`` (idempotent) before JAX starts, and return
    :func:`numerics_state` of this process. Once JAX has started it changes nothing:
    ``applied`` then says whether the flags JAX started with carried the pins."""
    env = os.environ if environ is None else environ
    if "jax" not in sys.modules:
        env["XLA_FLAGS"], _ = merge_xla_flags(env.get("XLA_FLAGS", ""), pinned_flags())
    return numerics_state(env)


def numerics_state(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """What the environment's ``XLA_FLAGS`` pin: the pins of this architecture, the
    flags as set, the pins the user gave another value, and whether all pins are there."""
    env = os.environ if environ is None else environ
    pins = pinned_flags()
    flags = env.get("XLA_FLAGS", "")
    theirs = parse_xla_flags(flags)
    return {
        "pinned": {f"--{n}": v for n, v in pins.items()},
        "xla_flags": flags,
        "overridden": sorted(n for n, v in pins.items() if n in theirs and theirs[n] != v),
        "applied": all(n in theirs for n in pins),
    }


def trial_flags(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The ``XLA_FLAGS`` a trial started from this environment trains with (what
    :func:`pin_numerics` makes of it), for a driver that records what its trials pin."""
    env = os.environ if environ is None else environ
    return {"XLA_FLAGS": merge_xla_flags(env.get("XLA_FLAGS", ""), pinned_flags())[0]}


def cpu_info(cpuinfo: str | None = None) -> dict[str, Any]:
    """The host CPU: model name, architecture, cores (all and usable by this process)
    and the instruction-set flags among :data:`RECORDED_CPU_FLAGS` (Linux
    ``/proc/cpuinfo``; elsewhere only what ``platform`` knows)."""
    text = cpuinfo if cpuinfo is not None else _read_cpuinfo()
    model: str | None = None
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "hardware", "cpu model") and model is None:
            model = value.strip() or None
        elif key in ("flags", "features") and not flags:
            flags = set(value.split())
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "model": model or platform.processor() or "unknown",
        "arch": platform.machine() or "unknown",
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "flags": [f for f in RECORDED_CPU_FLAGS if f in flags],
    }


def _read_cpuinfo() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            return fh.read(1 << 20)
    except OSError:
        return ""


def numerics_record(
    devices: list[str] | None = None,
    *,
    accelerator: bool | None = None,
    environ: Mapping[str, str] | None = None,
    cpuinfo: str | None = None,
    scope: str = "trainer",
) -> dict[str, Any]:
    """``numerics`` of run_manifest.json: what was pinned, the host CPU, the JAX
    versions, and whether the metrics are promised bit-identical on another host
    (``bit_identical``; ``note`` says why not). ``accelerator``: the run trained on
    GPU/TPU (default: read from ``devices``). ``scope``: whose process this describes,
    "trainer" (the one that trained) or "driver" (a sweep's driver: its trials pin the
    same flags in their own processes, on their own nodes)."""
    state = numerics_state(environ)
    cpu = cpu_info(cpuinfo)
    if accelerator is None:
        accelerator = any(not _is_cpu_device(d) for d in devices or [])
    reasons = _not_identical(accelerator, cpu, state)
    return {
        "scope": scope,
        **state,
        "cpu": cpu,
        "jax": _version("jax"),
        "jaxlib": _version("jaxlib"),
        "bit_identical": not reasons,
        "note": "; ".join(reasons)
        or (
            "CPU run with the pinned XLA flags: the same config, code and versions give "
            "the same metrics on any host with the pinned instruction set"
        ),
    }


def _not_identical(accelerator: bool, cpu: dict[str, Any], state: dict[str, Any]) -> list[str]:
    reasons: list[str] = []
    if accelerator:
        reasons.append(BIT_IDENTITY_NOTE_ACCELERATOR)
    if not state["applied"]:
        reasons.append("the pinned XLA flags were not in effect when JAX started")
    if state["overridden"]:
        reasons.append("XLA_FLAGS overrode " + ", ".join(state["overridden"]))
    if "--xla_cpu_max_isa" in state["pinned"] and not all(f in cpu["flags"] for f in ISA_NEEDS):
        reasons.append(f"this CPU lacks {'/'.join(ISA_NEEDS)}, below the pinned {PINNED_ISA}")
    if "--xla_cpu_max_isa" not in state["pinned"]:
        reasons.append(f"no instruction-set cap on {cpu['arch']} (XLA offers one on x86-64)")
    return reasons


def _is_cpu_device(name: str) -> bool:
    low = name.lower()
    return "cpu" in low and not any(k in low for k in ("gpu", "cuda", "tpu", "rocm"))


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
