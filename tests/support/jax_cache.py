"""JAX's persistent compilation cache for tests that train in the test process itself.

A trial worker turns the cache on before it imports JAX (``use_compile_cache`` in
``tunix_rt.tune.trainable``); a test that calls ``run_trial`` in the pytest process
imported JAX long before, so it compiled every train step, sampler and eval again,
in every test and in every run of one test (a GRPO schedule test runs the same config
four times). :func:`compile_cache` turns the same cache on for a while and restores
what was there: entries are keyed by JAX version, backend, flags and program, so a
loaded executable is the one a compile would give (same numbers, bit for bit).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from tunix_rt.tune.trainable import COMPILE_CACHE_DEFAULTS

MIN_COMPILE_SECONDS = float(COMPILE_CACHE_DEFAULTS["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"])
"""As the trial workers: small ops are compiled again, quicker than a read."""


@contextmanager
def compile_cache() -> Iterator[str]:
    """The persistent cache at ``JAX_COMPILATION_CACHE_DIR`` (the trial workers' folder
    unless the environment names another; empty: off), as long as the block runs."""
    import jax
    from jax.experimental.compilation_cache import compilation_cache as cc

    key = "JAX_COMPILATION_CACHE_DIR"
    path = os.environ.get(key, COMPILE_CACHE_DEFAULTS[key])
    before = (
        jax.config.jax_compilation_cache_dir,
        jax.config.jax_persistent_cache_min_compile_time_secs,
    )
    jax.config.update("jax_compilation_cache_dir", path or None)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    cc.reset_cache()  # JAX decides once per process whether the cache is on: decide again
    try:
        yield path
    finally:
        jax.config.update("jax_compilation_cache_dir", before[0])
        jax.config.update("jax_persistent_cache_min_compile_time_secs", before[1])
        cc.reset_cache()
