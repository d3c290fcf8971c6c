#!/usr/bin/env bash
# Run a command beside a CPU hog that keeps every core busy (issue 23: tests must hold on a
# busy machine). One busy loop per core at normal priority, stopped when the command ends.
#   scripts/under-load.sh make pytest
#   HOG_CORES=4 scripts/under-load.sh uv run pytest tests/durable
set -euo pipefail
cores="${HOG_CORES:-$(nproc)}"
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; }
trap cleanup EXIT INT TERM
for _ in $(seq "$cores"); do
  (while :; do :; done) &
  pids+=("$!")
done
echo "[under-load] $cores busy loops (pids ${pids[*]}) beside: $*" >&2
start=$(date +%s)
status=0
"$@" || status=$?
echo "[under-load] exit $status after $(( $(date +%s) - start )) s" >&2
exit "$status"
