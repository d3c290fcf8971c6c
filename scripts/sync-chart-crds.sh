#!/usr/bin/env bash
# Copy the generated CRDs (crds/, written by `make crds` / tunix_rt.api.crd) into the
# Helm chart's crds/ folder, which Helm installs before the templates. The two folders
# must hold byte-identical files; tests/helm/test_chart.py fails when they drift.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SRC="$ROOT/crds"
DST="$ROOT/charts/tunix-rt/crds"
shopt -s nullglob
sources=("$SRC"/tunixrt.io_*.yaml)
[ "${#sources[@]}" -gt 0 ] || { echo "sync-chart-crds: no $SRC/tunixrt.io_*.yaml; run make crds first" >&2; exit 1; }
mkdir -p "$DST"
for stale in "$DST"/*.yaml; do
  [ -e "$SRC/$(basename "$stale")" ] || rm -v "$stale"
done
for crd in "${sources[@]}"; do
  cp "$crd" "$DST/"
  echo "synced $(basename "$crd")"
done
