{{/* Chart name, overridable. */}}
{{- define "tunix-rt.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 52 | trimSuffix "-" -}}
{{- end -}}

{{/* Release-scoped name of every object this chart creates. */}}
{{- define "tunix-rt.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "tunix-rt.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "tunix-rt.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tunix-rt.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "tunix-rt.labels" -}}
helm.sh/chart: {{ include "tunix-rt.chart" . }}
{{ include "tunix-rt.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: tunix-rt
{{- end -}}

{{- define "tunix-rt.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "tunix-rt.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* How to get images: no registry holds them until the user pushes them. */}}
{{- define "tunix-rt.buildImages" -}}
no image is published for you: build and push them with `make images REGISTRY=<your registry>` (it writes images.values.yaml), then install with `-f images.values.yaml`
{{- end -}}

{{/* The operator image: repository:tag, repository:tag@digest. Refused when unset. */}}
{{- define "tunix-rt.image" -}}
{{- $repository := required (printf "image.repository is empty: %s" (include "tunix-rt.buildImages" .)) .Values.image.repository -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s:%s@%s" $repository $tag .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repository $tag -}}
{{- end -}}
{{- end -}}

{{/* The Ray head's (and CPU pools') image: every RayJob needs it, so it is required. */}}
{{- define "tunix-rt.cpuTrainerImage" -}}
{{- required (printf "trainerImages.cpu is empty (every Ray head runs it): %s" (include "tunix-rt.buildImages" .)) .Values.trainerImages.cpu -}}
{{- end -}}

{{/* Namespaces the operator watches when not cluster-wide (JSON list, for fromJsonArray). */}}
{{- define "tunix-rt.watchedNamespaces" -}}
{{- if .Values.watch.namespaces -}}
{{- toJson .Values.watch.namespaces -}}
{{- else -}}
{{- list .Release.Namespace | toJson -}}
{{- end -}}
{{- end -}}

{{/* What the operator does to its own resources, RayJobs and Events (namespaced or cluster-wide). */}}
{{- define "tunix-rt.workloadRules" -}}
# Exactly the calls the operator makes (tests/helm/test_rbac.py holds the table):
# kopf lists and watches Sweeps/Rehearsals and merge-patches their finalizer and
# annotations; a Rehearsal's fromSweep reads its Sweep by name (get), and a RayJob's
# watch event makes the operator read its pending parent afresh (get).
- apiGroups: ["tunixrt.io"]
  resources: ["sweeps", "rehearsals"]
  verbs: ["get", "list", "watch", "patch"]
# kopf patches status through the status subresource (never reads it there); so does
# the operator when a RayJob's watch event moves a pending parent on.
- apiGroups: ["tunixrt.io"]
  resources: ["sweeps/status", "rehearsals/status"]
  verbs: ["patch"]
# blockOwnerDeletion on the RayJob's ownerReference needs update on the owner's finalizers.
- apiGroups: ["tunixrt.io"]
  resources: ["sweeps/finalizers", "rehearsals/finalizers"]
  verbs: ["update"]
# The RayJob each Sweep/Rehearsal owns: watched (its status changes move a pending
# parent on), read by name, created, deleted with its parent.
- apiGroups: ["ray.io"]
  resources: ["rayjobs"]
  verbs: ["get", "list", "watch", "create", "delete"]
# Events on Sweeps/Rehearsals (kopf posts them; it never patches one).
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
{{- end -}}

{{/* Cluster-wide, read-only: kopf's discovery of CRDs and namespaces. */}}
{{- define "tunix-rt.discoveryRules" -}}
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  verbs: ["list", "watch"]
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["list", "watch"]
{{- end -}}

{{/* Peering objects are hooks: created after their CRDs, kept across upgrades. */}}
{{- define "tunix-rt.peeringHook" -}}
helm.sh/hook: post-install,post-upgrade
helm.sh/hook-weight: "-5"
helm.sh/hook-delete-policy: before-hook-creation
{{- end -}}

{{/* The Secret holding the Promote button's forge token: only with the view and promote on. */}}
{{- define "tunix-rt.gitToken" -}}
{{- if and .Values.ui.enabled .Values.ui.promote.enabled -}}
{{- .Values.ui.promote.tokenSecret -}}
{{- end -}}
{{- end -}}

{{/* The web view's settings that only make sense together, refused with the fix. */}}
{{- define "tunix-rt.uiChecks" -}}
{{- if and .Values.ui.enabled (not .Values.storage.uri) -}}
{{- fail "ui.enabled needs storage.uri: the web view shows the runs in that store (set storage.uri=s3://… or gs://…)" -}}
{{- end -}}
{{- if and .Values.ui.promote.enabled (not .Values.ui.enabled) -}}
{{- fail "ui.promote.enabled needs ui.enabled=true: the Promote button is part of the web view" -}}
{{- end -}}
{{- if and .Values.ui.promote.enabled (not .Values.ui.promote.repo) -}}
{{- fail "ui.promote.enabled needs ui.promote.repo: the git repository promotions are committed to" -}}
{{- end -}}
{{- end -}}
