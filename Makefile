# tunix-rt: the two commands are `make demo` and `make test` (README.md).
#
# Both set up .venv with uv when needed (uv itself is installed with pip if missing),
# from the committed uv.lock: `uv sync --frozen --all-extras`.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# pip --user puts uv here; make sure it is found right after installing it.
export PATH := $(HOME)/.local/bin:$(PATH)
export RAY_USAGE_STATS_ENABLED ?= 0

PYTHON ?= python3
RUN := uv run --frozen --no-sync
# The stamp's name changed when the sync started compiling bytecode: older environments
# are synced (and compiled) once more.
VENV_STAMP := .venv/.tunix-rt-synced-pyc
SWEEP ?= examples/sweep-smoke.yaml
ARGS ?=

# Two pytest-xdist workers by default: most of the suite's time is processes starting and
# waiting (Ray, the CLI, servers), which two workers overlap on 2 cores. PYTEST_WORKERS=0
# runs it in one process.
PYTEST_WORKERS ?= 2

.PHONY: bytecode help demo cluster-demo images test test-fast lint format typecheck pytest control-plane crds bench bench-operator bench-examples reliability setup clean

help:
	@echo "make demo   run the 5-trial smoke sweep on a local Ray (ARGS=--fresh to start over)"
	@echo "make cluster-demo   the smoke sweep on a simulated GKE cluster (kwok, KubeRay, Kueue)"
	@echo "make test   ruff, ruff format --check, mypy, the control-plane binaries and pytest"
	@echo "make test-fast   the unit tests only (no training, Ray or control plane)"
	@echo "make images REGISTRY=...   build and push the images, write images.values.yaml for helm"
	@echo "make lint | typecheck | pytest | crds (regenerate crds/) | bench | clean"

# uv, then the virtual environment from uv.lock (again when pyproject/uv.lock change),
# compiled to bytecode as the images are (UV_COMPILE_BYTECODE): where PYTHONDONTWRITEBYTECODE
# is set (these machines set it), nothing ever writes a .pyc, and every process the demo and
# the tests start (the CLI, the driver, each Ray worker and trial) would compile Ray, pandas
# and JAX from source again: `import ray.tune` 4.9 CPU-s without .pyc files, 1.7 with them;
# `import jax, flax.nnx, optax` 4.0 and 1.6. The compile takes about 1 CPU-minute, once.
$(VENV_STAMP): pyproject.toml uv.lock
	@command -v uv >/dev/null 2>&1 || { \
		echo "installing uv with pip"; \
		$(PYTHON) -m pip install --user --quiet uv \
		|| $(PYTHON) -m pip install --user --quiet --break-system-packages uv \
		|| $(PYTHON) -m pip install --quiet uv; }
	uv sync --frozen --all-extras --compile-bytecode
	@touch $@

setup: $(VENV_STAMP)

# The demo says what it does and how long it takes before anything slow starts (Ray and
# JAX take ~15 s to import). Measured with `make demo` from a fresh clone: 203 s on 2 idle
# cores, 286 s with other work on them.
demo: $(VENV_STAMP)
	@echo "tunix-rt demo: $(SWEEP) -- 5 trials x 300 steps of a small JAX transformer on a"
	@echo "generated reasoning set, 2 at a time on a local Ray; 3-5 minutes on 2 CPU cores."
	@echo "Starting Ray and JAX (about 15 s), then a live table; results in runs/local/."
	$(RUN) tunix-rt sweep run $(SWEEP) $(ARGS)

# A Sweep on a simulated GKE cluster (kwok nodes, the real KubeRay operator, Kueue and
# scheduler), no Docker: scripts/cluster-demo.py (ARGS=--keep stays up until Ctrl-C).
cluster-demo: $(VENV_STAMP) control-plane
	$(RUN) python scripts/cluster-demo.py $(ARGS)

# The control-plane binaries are built (or found in their cache) before pytest, so a cold
# build is not charged to the first test's timeout.
test: lint typecheck control-plane pytest

# The edit loop: the tests that neither train, run Ray nor start a control plane, in two
# pytest-xdist workers.
test-fast: $(VENV_STAMP) bytecode
	$(RUN) pytest -q -n 2 -m "not slow and not load and not integration" --ignore=tests/control_plane $(ARGS)

# kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, etcd and helm from the Go
# module proxy, cached under ~/.cache/tunix-rt/control-plane/<versions>/ (README: times); then
# the simulated cluster's kwok, KubeRay operator and Kueue, in a cache folder of their own.
control-plane:
	@command -v go >/dev/null 2>&1 || { echo "make control-plane needs Go (go1.26+) on PATH" >&2; exit 1; }
	bash scripts/control-plane/build.sh
	bash scripts/control-plane/build-cluster.sh

lint: $(VENV_STAMP)
	$(RUN) ruff check .
	$(RUN) ruff format --check .

format: $(VENV_STAMP)
	$(RUN) ruff check --fix .
	$(RUN) ruff format .

typecheck: $(VENV_STAMP)
	$(RUN) mypy

# pytest exits 5 when it collected no test (e.g. ARGS="-k nothing"): say so, don't fail.
# PYTEST_WORKERS=N runs N pytest-xdist workers (the control-plane tests share one); the
# 20 slowest tests are listed at the end, so a run says where its time went.
pytest: $(VENV_STAMP) bytecode
	@rc=0; $(RUN) pytest -q $(if $(filter-out 0,$(PYTEST_WORKERS)),-n $(PYTEST_WORKERS) --dist loadgroup) --durations=20 $(ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest: no tests collected"; exit 0; fi; exit $$rc

# This repository's own modules as bytecode too (the test processes import them again and
# again); a file edited later is compiled in memory where the .pyc is stale, never run stale.
bytecode: $(VENV_STAMP)
	@$(RUN) python -m compileall -q -j 0 operator/tunix_rt tests > /dev/null

# Regenerate crds/ from the models (and the Helm chart's copy, when the chart is there).
crds: $(VENV_STAMP)
	$(RUN) tunix-rt crds --write crds
	@if [ -x scripts/sync-chart-crds.sh ] || [ -f scripts/sync-chart-crds.sh ]; then \
		bash scripts/sync-chart-crds.sh; fi

# Every performance figure side by side, 3 repeats each (benchmarks/bench.py): ~3 h on
# 2 idle cores; writes benchmarks/results.json and the table in benchmarks/README.md.
# BENCH_QUICK=1 make bench: smallest sizes and a stand-in trial workload, results under
# $TMPDIR/tunix-rt-bench-quick (proves the harness; the figures mean nothing). ARGS="--only
# trainer,compile" runs some sections. The demo sweep alone: python benchmarks/sweep_smoke.py.
# Build and push the operator and trainer images of this commit to REGISTRY and write
# images.values.yaml for `helm install -f` (scripts/build_images.py; ARGS=--dry-run, --no-push,
# --kinds operator,cpu).
images: $(VENV_STAMP)
	@test -n "$(REGISTRY)" || { echo "make images needs REGISTRY=<registry/path>, e.g. make images REGISTRY=ghcr.io/my-org/tunix-rt" >&2; exit 2; }
	$(RUN) python scripts/build_images.py --registry "$(REGISTRY)" $(ARGS)

bench: $(VENV_STAMP)
	$(RUN) python benchmarks/bench.py $(ARGS)

# Every example that runs on CPU, run as its header says; the score and wall time each
# gives into benchmarks/results/examples.json, which the examples' "# Expect" lines must
# match (tests/examples/test_expectations.py). Run on an idle machine.
bench-examples: $(VENV_STAMP)
	$(RUN) python benchmarks/examples.py $(ARGS)

# 200 Sweeps at once against the operator, with the kmock emulator and with a real
# kube-apiserver (the control-plane binaries); figures into benchmarks/results.json.
bench-operator: $(VENV_STAMP) control-plane
	$(RUN) python benchmarks/operator_load.py $(ARGS)
	$(RUN) python benchmarks/operator_load_apiserver.py --record

# Regenerates RELIABILITY.md's table from a pytest run of the tests registered for it.
reliability: $(VENV_STAMP)
	$(RUN) python scripts/reliability.py $(ARGS)

clean:
	rm -rf runs .pytest_cache .mypy_cache .ruff_cache
