#!/usr/bin/env bash
# tunix-rt end to end on kind: a real cluster, KubeRay from its Helm chart, tunix-rt from
# charts/tunix-rt, the images built from this checkout, and examples/sweep-smoke.yaml
# running to Succeeded with a primaryScore and its evidence bundle in the store.
#
# Needs a running Docker engine, kind, kubectl and helm (and network for the base images
# and the KubeRay chart). Run from anywhere:
#   scripts/kind-e2e.sh
#
# Storage: trial pods (Ray head/workers) write trial results and the operator reads them
# back, so both need one store. A file:// path is per pod, so this script runs an S3
# server (moto, the same S3 protocol the tests use) inside the cluster and points the
# sweep at s3://tunix-rt/e2e; the credentials Secret carries AWS_ENDPOINT_URL to the
# operator and, through storage.credentialsSecret, to every Ray pod.
#
# Environment:
#   TUNIX_RT_E2E_CLUSTER   kind cluster name            (default tunix-rt-e2e)
#   TUNIX_RT_E2E_KEEP      1: keep the cluster at the end (default 0: delete it)
#   TUNIX_RT_E2E_TIMEOUT   seconds to wait for the sweep (default 1200)
#   KUBERAY_VERSION        kuberay-operator chart version (default 1.7.0)
#   MOTO_IMAGE             S3 server image              (default motoserver/moto:5.2.5)
#   KIND_NODE_IMAGE        kindest/node image           (default: kind's own default)
#   TUNIX_RT_E2E_WORKER_CPU / TUNIX_RT_E2E_WORKER_MEMORY
#                          the one Ray worker pod        (default 2 / 4Gi: the Tune
#                          driver's CPU plus the smoke sweep's one 1-CPU trial at a
#                          time; the head takes 1 CPU / 2Gi more)
set -euo pipefail

CLUSTER="${TUNIX_RT_E2E_CLUSTER:-tunix-rt-e2e}"
KEEP="${TUNIX_RT_E2E_KEEP:-0}"
TIMEOUT="${TUNIX_RT_E2E_TIMEOUT:-1200}"
KUBERAY_VERSION="${KUBERAY_VERSION:-1.7.0}"
MOTO_IMAGE="${MOTO_IMAGE:-motoserver/moto:5.2.5}"
WORKER_CPU="${TUNIX_RT_E2E_WORKER_CPU:-2}"
WORKER_MEMORY="${TUNIX_RT_E2E_WORKER_MEMORY:-4Gi}"
SYSTEM_NS=tunix-rt-system
NS=tunix-e2e
OPERATOR_IMAGE=tunix-rt-operator:e2e
TRAINER_IMAGE=tunix-rt-trainer:e2e-cpu
SECRET=tunix-rt-s3
BUCKET=tunix-rt
STORAGE="s3://${BUCKET}/e2e"
S3_URL="http://s3.${NS}.svc.cluster.local:5000"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CONTEXT="kind-${CLUSTER}"
KUBECTL=(kubectl --context "$CONTEXT")
HELM=(helm --kube-context "$CONTEXT")

log() { printf '\n==> %s\n' "$*"; }
die() { printf 'kind-e2e: %s\n' "$*" >&2; exit 1; }

# --- tools ------------------------------------------------------------------------------
for tool in docker kind kubectl helm; do
  command -v "$tool" >/dev/null 2>&1 || { echo "kind-e2e: $tool not found on PATH" >&2; exit 2; }
done
docker info >/dev/null 2>&1 || { echo "kind-e2e: no Docker engine answers 'docker info'" >&2; exit 2; }

# --- teardown and diagnostics -------------------------------------------------------------
dump() {
  echo "---- diagnostics ----" >&2
  "${KUBECTL[@]}" get sweeps,rehearsals,rayjobs,rayclusters,pods -A -o wide >&2 || true
  "${KUBECTL[@]}" -n "$NS" get sweeps -o yaml >&2 || true
  "${KUBECTL[@]}" -n "$NS" get events --sort-by=.lastTimestamp >&2 || true
  "${KUBECTL[@]}" -n "$SYSTEM_NS" logs deploy/tunix-rt --tail=200 >&2 || true
  for pod in $("${KUBECTL[@]}" -n "$NS" get pods -o name 2>/dev/null); do
    echo "---- $pod ----" >&2
    "${KUBECTL[@]}" -n "$NS" logs "$pod" --all-containers --tail=100 >&2 || true
  done
}
finish() {
  local rc=$?
  if [ "$rc" -ne 0 ]; then dump; fi
  if [ "$KEEP" = "1" ]; then
    echo "kind-e2e: keeping cluster $CLUSTER (kind delete cluster --name $CLUSTER)"
  else
    kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true
  fi
  exit "$rc"
}
trap finish EXIT

# --- cluster ------------------------------------------------------------------------------
log "kind cluster $CLUSTER"
if ! kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  kind create cluster --name "$CLUSTER" --wait 180s ${KIND_NODE_IMAGE:+--image "$KIND_NODE_IMAGE"}
fi

# --- images -------------------------------------------------------------------------------
COMMIT="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
log "build $OPERATOR_IMAGE"
docker build -f Dockerfile -t "$OPERATOR_IMAGE" \
  --build-arg TUNIX_RT_IMAGE="$OPERATOR_IMAGE" --build-arg TUNIX_RT_COMMIT_SHA="$COMMIT" .
log "build $TRAINER_IMAGE (JAX on CPU)"
docker build -f images/trainer/Dockerfile -t "$TRAINER_IMAGE" --build-arg JAX_EXTRA=cpu \
  --build-arg TUNIX_RT_IMAGE="$TRAINER_IMAGE" --build-arg TUNIX_RT_COMMIT_SHA="$COMMIT" .
log "load images into kind"
kind load docker-image --name "$CLUSTER" "$OPERATOR_IMAGE" "$TRAINER_IMAGE"

# --- KubeRay ------------------------------------------------------------------------------
log "KubeRay $KUBERAY_VERSION"
helm repo add kuberay https://ray-project.github.io/kuberay-helm/ --force-update >/dev/null
"${HELM[@]}" upgrade --install kuberay-operator kuberay/kuberay-operator \
  --version "$KUBERAY_VERSION" --namespace ray-system --create-namespace --wait --timeout 5m

# --- object store (S3 protocol) in the cluster ---------------------------------------------
log "S3 server ($MOTO_IMAGE) in namespace $NS"
"${KUBECTL[@]}" create namespace "$NS" --dry-run=client -o yaml | "${KUBECTL[@]}" apply -f -
"${KUBECTL[@]}" create namespace "$SYSTEM_NS" --dry-run=client -o yaml | "${KUBECTL[@]}" apply -f -
"${KUBECTL[@]}" apply -n "$NS" -f - <<EOF
apiVersion: apps/v1
kind: Deployment
metadata: {name: s3, labels: {app: s3}}
spec:
  replicas: 1
  selector: {matchLabels: {app: s3}}
  template:
    metadata: {labels: {app: s3}}
    spec:
      containers:
        - name: moto
          image: ${MOTO_IMAGE}
          ports: [{containerPort: 5000}]
          readinessProbe: {tcpSocket: {port: 5000}, periodSeconds: 2}
---
apiVersion: v1
kind: Service
metadata: {name: s3}
spec:
  selector: {app: s3}
  ports: [{port: 5000, targetPort: 5000}]
EOF
"${KUBECTL[@]}" -n "$NS" rollout status deploy/s3 --timeout=300s

# The same credentials for the operator (its namespace) and the Ray pods (the sweep's).
for ns in "$SYSTEM_NS" "$NS"; do
  "${KUBECTL[@]}" -n "$ns" create secret generic "$SECRET" \
    --from-literal=AWS_ACCESS_KEY_ID=e2e --from-literal=AWS_SECRET_ACCESS_KEY=e2e \
    --from-literal=AWS_DEFAULT_REGION=us-east-1 --from-literal=AWS_ENDPOINT_URL="$S3_URL" \
    --dry-run=client -o yaml | "${KUBECTL[@]}" apply -f -
done
log "bucket $BUCKET"
"${KUBECTL[@]}" -n "$NS" delete pod mkbucket --ignore-not-found >/dev/null
"${KUBECTL[@]}" -n "$NS" run mkbucket --image="$TRAINER_IMAGE" --image-pull-policy=Never \
  --restart=Never --rm -i --quiet \
  --env=AWS_ACCESS_KEY_ID=e2e --env=AWS_SECRET_ACCESS_KEY=e2e \
  --env=AWS_DEFAULT_REGION=us-east-1 --env=AWS_ENDPOINT_URL="$S3_URL" \
  -- python -c "import s3fs; fs = s3fs.S3FileSystem(); fs.exists('$BUCKET') or fs.mkdir('$BUCKET')"

# --- tunix-rt -----------------------------------------------------------------------------
log "tunix-rt from charts/tunix-rt"
"${HELM[@]}" upgrade --install tunix-rt charts/tunix-rt --namespace "$SYSTEM_NS" \
  --set image.repository="${OPERATOR_IMAGE%%:*}" --set image.tag="${OPERATOR_IMAGE##*:}" \
  --set image.pullPolicy=Never \
  --set trainerImages.cpu="$TRAINER_IMAGE" --set trainerImages.pullPolicy=Never \
  --set "watch.namespaces={$NS}" \
  --set storage.uri="$STORAGE" --set storage.credentialsSecret="$SECRET" \
  --wait --timeout 5m
"${KUBECTL[@]}" -n "$SYSTEM_NS" rollout status deploy/tunix-rt --timeout=180s
"${KUBECTL[@]}" get crd sweeps.tunixrt.io rehearsals.tunixrt.io

# --- the smoke sweep -------------------------------------------------------------------------
# examples/sweep-smoke.yaml as written, with the store above and a cluster small enough
# for one kind node (the trainer image from the chart's trainerImages.cpu).
PATCH="$(cat <<EOF
{"spec": {"storage": "$STORAGE",
          "cluster": {"headCpu": "1", "headMemory": "2Gi",
                      "pools": [{"name": "workers", "accelerator": "cpu", "replicas": 1,
                                 "cpu": "$WORKER_CPU", "memory": "$WORKER_MEMORY"}]}}}
EOF
)"
SWEEP="$("${KUBECTL[@]}" create --dry-run=client -f examples/sweep-smoke.yaml -o jsonpath='{.metadata.name}')"
log "apply examples/sweep-smoke.yaml as sweep/$SWEEP in $NS"
"${KUBECTL[@]}" patch --local -f examples/sweep-smoke.yaml --type merge -p "$PATCH" -o yaml \
  | "${KUBECTL[@]}" apply -n "$NS" -f -

log "wait for sweep/$SWEEP to succeed (at most ${TIMEOUT}s)"
deadline=$(( $(date +%s) + TIMEOUT ))
phase=""
while :; do
  phase="$("${KUBECTL[@]}" -n "$NS" get sweep "$SWEEP" -o jsonpath='{.status.phase}' 2>/dev/null || true)"
  progress="$("${KUBECTL[@]}" -n "$NS" get sweep "$SWEEP" -o jsonpath='{.status.trialsProgress}' 2>/dev/null || true)"
  printf '  %s phase=%s trials=%s\n' "$(date +%H:%M:%S)" "${phase:-?}" "${progress:-?}"
  case "$phase" in
    Succeeded) break ;;
    Failed) die "sweep/$SWEEP failed: $("${KUBECTL[@]}" -n "$NS" get sweep "$SWEEP" -o jsonpath='{.status.message}')" ;;
  esac
  [ "$(date +%s)" -lt "$deadline" ] || die "sweep/$SWEEP not Succeeded after ${TIMEOUT}s (phase=${phase:-none})"
  sleep 10
done
"${KUBECTL[@]}" -n "$NS" get sweeps

score="$("${KUBECTL[@]}" -n "$NS" get sweep "$SWEEP" -o jsonpath='{.status.primaryScore}')"
[ -n "$score" ] || die "sweep/$SWEEP Succeeded without status.primaryScore"
awk -v s="$score" 'BEGIN { exit !(s + 0 == s && s >= 0 && s <= 1) }' \
  || die "status.primaryScore is not a number in [0, 1]: $score"
best="$("${KUBECTL[@]}" -n "$NS" get sweep "$SWEEP" -o jsonpath='{.status.bestTrial.id}')"
[ -n "$best" ] || die "sweep/$SWEEP has no status.bestTrial"
bundle="$("${KUBECTL[@]}" -n "$NS" get sweep "$SWEEP" -o jsonpath='{.status.bundleUri}')"
case "$bundle" in
  s3://*/evidence/submission/tunix_rt_*.zip) ;;
  *) die "sweep/$SWEEP Succeeded without its evidence bundle (status.bundleUri='$bundle')" ;;
esac
echo "kind-e2e: OK sweep/$SWEEP Succeeded, primaryScore=$score, best trial $best, evidence $bundle"
