#!/usr/bin/env bash
# Builds the simulated-cluster parts the placement tests run next to the control plane, from
# the Go module proxy at pinned versions, into a version-keyed cache of its own (so the
# control-plane cache of build.sh stays valid): $TUNIX_RT_CLUSTER_CACHE (default
# ${XDG_CACHE_HOME:-~/.cache}/tunix-rt/control-plane/<key>/). A second run returns at once.
# Prints the folder holding bin/ and manifests/ as its last line.
#
#   kwok          sigs.k8s.io/kwok/cmd/kwok: fake nodes, pod lifecycle without containers
#   ray-operator  github.com/ray-project/kuberay/ray-operator (its main is the module root)
#   kueue         sigs.k8s.io/kueue/cmd/kueue (the kueue manager)
#
# Each is built with `go install module/cmd@version`: the module's own go.mod and go.sum pick
# every dependency, as upstream's release build does (none of the three has replace lines).
# CRDs and other manifests come from the same downloaded modules (manifests/): KubeRay
# config/crd/bases, Kueue config/components/crd/bases and its webhook configuration, kwok's
# default stages.
set -euo pipefail

KWOK_VERSION="${KWOK_VERSION:-v0.8.0}"
KUBERAY_VERSION="${KUBERAY_VERSION:-v1.5.0}"
KUEUE_VERSION="${KUEUE_VERSION:-v0.17.0}"
BUILD_REVISION=1   # bump when this script changes what it builds

key="cluster_kwok-${KWOK_VERSION}_kuberay-${KUBERAY_VERSION}_kueue-${KUEUE_VERSION}_r${BUILD_REVISION}"
cache_root="${TUNIX_RT_CLUSTER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tunix-rt/control-plane}"
out="$cache_root/$key"
SAY_PREFIX=cluster
# shellcheck source=scripts/control-plane/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

module_dir() {  # module_dir MODULE@VERSION: where `go mod download` put its source
    go mod download -json "$1" | sed -n 's/.*"Dir": "\(.*\)",/\1/p'
}

# install NAME PACKAGE@VERSION LDFLAGS: go install into a scratch GOBIN, then move to bin/NAME
install() {
    local name="$1" pkg="$2" ldflags="$3"
    if [ -x "$out/bin/$name" ]; then say "$name: cached"; return; fi
    local gobin="$out/src/$name"
    mkdir -p "$gobin" "$out/bin"
    say "building $name ($pkg)"
    GOBIN="$gobin" timed "go install $name" go install -ldflags="-s -w $ldflags" "$pkg"
    mv "$gobin"/* "$out/bin/$name"
}

# manifests NAME MODULE@VERSION FILE...: copy FILEs (globs, relative to the module) of the
# downloaded module to manifests/NAME/
manifests() {
    local name="$1" module="$2"
    shift 2
    if [ -n "$(ls "$out/manifests/$name" 2>/dev/null)" ]; then return; fi
    local dir file
    dir="$(module_dir "$module")"
    mkdir -p "$out/manifests/$name"
    for file in "$@"; do
        # shellcheck disable=SC2086  # the globs are meant to expand
        cp $dir/$file "$out/manifests/$name/"
    done
    chmod -R u+w "$out/manifests/$name"
}

start=$SECONDS
# kwok's version is a constant in its source; Kueue's is stamped as its Makefile does (the
# manager's startup log prints it).
install kwok "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" ""
install ray-operator "github.com/ray-project/kuberay/ray-operator@$KUBERAY_VERSION" ""
install kueue "sigs.k8s.io/kueue/cmd/kueue@$KUEUE_VERSION" \
    "-X sigs.k8s.io/kueue/pkg/version.GitVersion=$KUEUE_VERSION"
manifests kuberay-crds "github.com/ray-project/kuberay/ray-operator@$KUBERAY_VERSION" \
    'config/crd/bases/*.yaml'
manifests kueue-crds "sigs.k8s.io/kueue@$KUEUE_VERSION" 'config/components/crd/bases/*.yaml'
# Kueue's webhook configurations (service references, rewritten to loopback URLs by the
# harness) and which CRDs convert through its /convert webhook (the patches its CRD
# kustomization applies).
manifests kueue-webhooks "sigs.k8s.io/kueue@$KUEUE_VERSION" \
    config/components/webhook/manifests.yaml config/components/crd/kustomization.yaml \
    'config/components/crd/patches/webhook_in_*.yaml'
# kwok's stages (kwok refuses to start without): of its `fast` set, nodes Ready at once,
# pods Running and Ready at once, deleted pods gone. Not its pod-complete stage, which ends
# a Job's pods at once: KubeRay's submitter Job would end before the Ray job, and KubeRay
# fails such a RayJob 30 s later (JobDeploymentStatusTransitionGracePeriodExceeded). Here
# every pod runs until it is deleted.
manifests kwok-stages "sigs.k8s.io/kwok@$KWOK_VERSION" \
    kustomize/stage/node/fast/node-initialize.yaml \
    kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
    kustomize/stage/pod/fast/pod-ready.yaml kustomize/stage/pod/fast/pod-delete.yaml
rm -rf "$out/src"
say "kwok $KWOK_VERSION, KubeRay $KUBERAY_VERSION, Kueue $KUEUE_VERSION in $out ($(du -sh "$out" | cut -f1)), $((SECONDS - start)) s"
echo "$out"
