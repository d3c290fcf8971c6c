"""Keep each multi-host TPU slice's pods together, as GKE's Ray TPU webhook would.

KubeRay models a multi-host slice as one worker-group replica of ``numOfHosts`` pods, but
creates them as independent pods: nothing in KubeRay (1.5, and the 1.7 line) asks the
scheduler to put a replica's pods on one slice. On GKE a multi-host slice is its own node
pool (``cloud.google.com/gke-nodepool``), so with two slices of a type the scheduler is free
to put the 4 hosts of one trial on two slices, whose chips share no interconnect: JAX's
multi-host start then fails. GKE's Ray TPU webhook (ai-on-gke ``kuberay-tpu-webhook``)
injects this affinity into each pod at admission. Without it, on the real kube-scheduler
(kube-scheduler 1.36, two 4x4 slices, 8 pods created one host of each replica at a time),
each trial got 2 hosts of one slice and 2 of the other; created replica after replica they
happened to land right. With it, each replica takes one slice whatever the order.

The template carries the affinity itself, which the webhook overwrites with its own where it
runs:

* required pod affinity, topology ``cloud.google.com/gke-nodepool``: the pods of this group
  in this RayCluster (``matchLabelKeys: [ray.io/cluster]``) and of this replica
  (``ray.io/worker-group-replica-name``, set by KubeRay's ``RayMultiHostIndexing`` feature
  gate; without the gate the key is absent and ignored, so all the group's pods share one
  node pool, which is right for one slice);
* required anti-affinity against other RayClusters' multi-host slices (``tunixrt.io/tpu-
  slice`` with a different ``ray.io/cluster``) on the node pool;
* with more than one slice in the group, anti-affinity against this group's other replicas.
  That needs ``RayMultiHostIndexing`` (or the webhook): without the replica label, the
  group's own pods would repel each other and stay Pending, said in docs/kubernetes.md.
"""

from __future__ import annotations

from typing import Any

GKE_NODEPOOL_LABEL = "cloud.google.com/gke-nodepool"
RAY_CLUSTER_LABEL = "ray.io/cluster"
RAY_GROUP_LABEL = "ray.io/group"
RAY_REPLICA_LABEL = "ray.io/worker-group-replica-name"  # KubeRay RayMultiHostIndexing
SLICE_LABEL = "tunixrt.io/tpu-slice"
"""On the pods of a multi-host TPU group: the group name (other clusters keep off its pool)."""


def slice_labels(group: str) -> dict[str, str]:
    return {SLICE_LABEL: group}


def slice_affinity(group: str, slices: int) -> dict[str, Any]:
    """The pod ``affinity`` of a multi-host TPU worker group of ``slices`` replicas."""
    same_group = {"matchLabels": {RAY_GROUP_LABEL: group}}
    together = {
        "labelSelector": same_group,
        "matchLabelKeys": [RAY_CLUSTER_LABEL, RAY_REPLICA_LABEL],
        "topologyKey": GKE_NODEPOOL_LABEL,
    }
    other_clusters = {
        "labelSelector": {"matchExpressions": [{"key": SLICE_LABEL, "operator": "Exists"}]},
        "mismatchLabelKeys": [RAY_CLUSTER_LABEL],
        "namespaceSelector": {},
        "topologyKey": GKE_NODEPOOL_LABEL,
    }
    apart = [other_clusters]
    if slices > 1:
        apart.append(
            {
                "labelSelector": same_group,
                "matchLabelKeys": [RAY_CLUSTER_LABEL],
                "mismatchLabelKeys": [RAY_REPLICA_LABEL],
                "topologyKey": GKE_NODEPOOL_LABEL,
            }
        )
    return {
        "podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [together]},
        "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": apart},
    }
