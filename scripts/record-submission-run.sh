#!/usr/bin/env bash
# Re-record submission_runs/<name>/ from a real local run, on a clean clone of HEAD:
# a sweep -> its best trial promoted -> a rehearsal of that config -> both zips
# rebuilt from their folders and verified. Nothing is edited by hand; README.md (kept)
# says what the run was.
#
#   bash scripts/record-submission-run.sh [NAME [SWEEP [STEPS]]]
#     m34_v1 (the default): examples/sweep-smoke.yaml, rehearsed for 1500 steps; ~10 min
#     grpo_v1: examples/sweep-tunix-grpo-repair.yaml 80 (the GRPO repair); ~15 min
#
# Layout written (what the M34 milestone names at the top):
#   <NAME>/run_manifest.json eval_summary.json kaggle_output_log.txt eval_rows.jsonl
#          report.html sweep_summary.json SHA256SUMS submission/<zip>   the rehearsal's evidence
#   <NAME>/sweep/{summary.json,spec.json,sweep_log.txt,trials/,logs/,evidence/}
#   <NAME>/promoted/   <NAME>/commands/
set -euo pipefail
NAME="${1:-m34_v1}"
SWEEP_FILE="${2:-examples/sweep-smoke.yaml}"
STEPS="${3:-1500}"
REPO="$(cd "$(dirname "$0")/.." && pwd)"
DEST="$REPO/submission_runs/$NAME"
export PATH="$HOME/.local/bin:$PATH" RAY_USAGE_STATS_ENABLED=0 COLUMNS=100

if [ -n "$(git -C "$REPO" status --porcelain --untracked-files=no)" ]; then
    echo "error: commit first: the run records the commit it ran, clean" >&2
    exit 2
fi
WORK="$(mktemp -d /tmp/tunix-rt-record.XXXXXX)"
# a failed step leaves the clone and its command outputs for a look
trap 'status=$?; if [ $status -eq 0 ]; then rm -rf "$WORK"; else echo "failed ($status): kept $WORK" >&2; fi' EXIT
git clone -q "$REPO" "$WORK/repo"
cd "$WORK/repo"
uv sync --frozen --all-extras -q
RUN="uv run --frozen --no-sync"
SWEEP_NAME="$($RUN python -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["metadata"]["name"])' "$SWEEP_FILE")"
BEST="$SWEEP_NAME-best"
S="runs/$NAME"
C="$WORK/commands"
mkdir -p "$C"
# the machine's load before each step, to read the wall times by
mark() { echo "before step $1: $(date -u +%FT%TZ) $(uptime)" >>"$C/load.txt"; }

mark 1
# 1. the sweep
$RUN tunix-rt sweep run "$SWEEP_FILE" --storage "file://./$S" --no-live \
    >"$C/1-sweep-run.txt" 2>&1
mark 2
# 2. its best trial promoted with a rehearsal-length budget
$RUN tunix-rt promote "$S/local/$SWEEP_NAME" -o "$S/promoted/$BEST.yaml" \
    --steps "$STEPS" --storage "file://./$S" >"$C/2-promote.txt" 2>&1
mark 3
# 3. the rehearsal of the promoted config
$RUN tunix-rt rehearsal run "$S/promoted/$BEST-rehearsal.yaml" \
    >"$C/3-rehearsal-run.stdout.txt" 2>"$C/3-rehearsal-run.stderr.txt"
mark 4
# 4. both zips rebuilt from their folders: byte-identical, and they verify
REH="$S/local/rehearsals/$BEST"
SWEEP="$S/local/$SWEEP_NAME"
{
    for pair in "$REH:$S/package-check" "$SWEEP/evidence:$S/package-check-sweep"; do
        folder="${pair%%:*}" out="${pair#*:}"
        zip="$($RUN tunix-rt package "$folder" -o "$out")"
        echo "$zip"
        $RUN tunix-rt package --verify "$zip"
        cmp "$zip" "$folder"/submission/*.zip && echo "cmp: identical"
    done
} >"$C/4-package.txt" 2>&1
mark end

# 5. the folder: the rehearsal's evidence at the top, the rest beside it
KEEP="$WORK/README.md"
[ -f "$DEST/README.md" ] && cp "$DEST/README.md" "$KEEP"
rm -rf "$DEST"
mkdir -p "$DEST/sweep"
cp -r "$REH/." "$DEST/"
cp "$SWEEP"/{summary.json,spec.json,sweep_log.txt} "$DEST/sweep/"
cp -r "$SWEEP"/{trials,logs,evidence} "$DEST/sweep/"
cp -r "$S/promoted" "$DEST/promoted"
cp -r "$C" "$DEST/commands"
[ -f "$KEEP" ] && cp "$KEEP" "$DEST/README.md"
# What sits beside the rehearsal's evidence, so `tunix-rt package submission_runs/NAME`
# packs exactly the rehearsal's bundle again.
printf '%s\n' "# beside the rehearsal's evidence (see README.md)" README.md commands/ \
    promoted/ sweep/ >"$DEST/.tunix-rt-ignore"
# Paths in the command outputs name this temporary clone; say so once instead.
echo "recorded $DEST from commit $(git rev-parse --short HEAD) (clone at $WORK/repo)"
