#!/usr/bin/env bash
# Builds the Kubernetes parts the tests run, from the Go module proxy at pinned versions, into
# a version-keyed cache: $TUNIX_RT_CONTROL_PLANE_CACHE (default
# ${XDG_CACHE_HOME:-~/.cache}/tunix-rt/control-plane/<key>/bin). A second run finds them and
# returns at once. Prints the folder holding the binaries as its last line.
#
#   kubernetes   kube-apiserver, kube-controller-manager, kube-scheduler, kubectl
#                (k8s.io/kubernetes required as a dependency, every k8s.io/* staging module
#                replaced by the same v0.x release: its own replace lines do not apply here),
#                and etcd (go.etcd.io/etcd/server/v3 at the version that release requires)
#   helm         the helm CLI (helm.sh/helm/v4)
#
# Cold on 2 cores this takes many minutes (measured figures in README.md); the Go build cache
# (go env GOCACHE) makes a rebuild after a version bump much quicker.
set -euo pipefail

KUBERNETES_VERSION="${KUBERNETES_VERSION:-v1.36.3}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.8}"
HELM_VERSION="${HELM_VERSION:-v4.3.2}"
BUILD_REVISION=2   # bump when this script changes what it builds

key="k8s-${KUBERNETES_VERSION}_etcd-${ETCD_VERSION}_helm-${HELM_VERSION}_r${BUILD_REVISION}"
cache_root="${TUNIX_RT_CONTROL_PLANE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tunix-rt/control-plane}"
out="$cache_root/$key/bin"
SAY_PREFIX=control-plane
# shellcheck source=scripts/control-plane/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

have_all() {
    local b
    for b in "$@"; do [ -x "$out/$b" ] || return 1; done
}

# A throwaway module that requires $1@$2; $3 is extra go.mod text (replace lines).
work_module() {
    local dir="$1" module="$2" version="$3" extra="$4"
    rm -rf "$dir" && mkdir -p "$dir"
    cat > "$dir/go.mod" <<MOD
module tunix-rt.local/controlplane

go 1.26

require $module $version
$extra
MOD
}

build_kubernetes() {
    local bins=(kube-apiserver kube-controller-manager kube-scheduler kubectl etcd)
    if have_all "${bins[@]}"; then say "kubernetes $KUBERNETES_VERSION, etcd $ETCD_VERSION: cached"; return; fi
    local dir="$cache_root/$key/src/kubernetes" minor="v0.${KUBERNETES_VERSION#v1.}"
    say "building kube-apiserver kube-controller-manager kube-scheduler kubectl $KUBERNETES_VERSION, etcd $ETCD_VERSION"
    local modfile
    modfile="$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')"
    local replaces
    replaces="$(sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#replace \1 => \1 '"$minor"'#p' "$modfile")"
    work_module "$dir" k8s.io/kubernetes "$KUBERNETES_VERSION" "$replaces"
    cat > "$dir/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
    (
        cd "$dir"
        go mod edit -require="go.etcd.io/etcd/server/v3@$ETCD_VERSION"
        timed "go mod tidy" go mod tidy -e >/dev/null
        mkdir -p "$out"
        # The version Kubernetes' own build stamps in (hack/lib/version.sh): helm's
        # kubeVersion checks and `kubectl version` read it.
        local major="${KUBERNETES_VERSION#v}" stamp="" pkg
        major="${major%%.*}"
        local minor_num="${KUBERNETES_VERSION#v*.}"
        minor_num="${minor_num%%.*}"
        for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
            stamp+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=$major"
            stamp+=" -X $pkg.gitMinor=$minor_num -X $pkg.gitTreeState=clean"
        done
        timed "go build kubernetes" go build -ldflags="-s -w$stamp" -tags tools -o "$out/" \
            k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
            k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl
        timed "go build etcd" go build -ldflags="-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3
    )
}

build_helm() {
    if have_all helm; then say "helm $HELM_VERSION: cached"; return; fi
    local dir="$cache_root/$key/src/helm"
    say "building helm $HELM_VERSION"
    work_module "$dir" helm.sh/helm/v4 "$HELM_VERSION" ""
    printf '//go:build tools\n\npackage tools\n\nimport _ "helm.sh/helm/v4/cmd/helm"\n' > "$dir/tools.go"
    (
        cd "$dir"
        timed "go mod tidy" go mod tidy -e >/dev/null
        mkdir -p "$out"
        timed "go build helm" go build -o "$out/helm" \
            -ldflags="-s -w -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION" \
            helm.sh/helm/v4/cmd/helm
    )
}

start=$SECONDS
build_kubernetes
build_helm
rm -rf "$cache_root/$key/src"
say "binaries in $out ($(du -sh "$out" | cut -f1)), $((SECONDS - start)) s"
echo "$out"
