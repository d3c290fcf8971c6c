# Shared by build.sh and build-cluster.sh (sourced): the Go build settings both use, so
# their compiled packages share Go's build cache, and their progress lines.
# Set SAY_PREFIX before sourcing.

export GOFLAGS="${GOFLAGS:--buildvcs=false} -trimpath"
export CGO_ENABLED=0

say() { printf '[%s] %s\n' "$SAY_PREFIX" "$*" >&2; }

timed() {  # timed LABEL CMD...: run CMD, then say how long it took
    local label="$1" start=$SECONDS
    shift
    "$@"
    say "$label: $((SECONDS - start)) s"
}
