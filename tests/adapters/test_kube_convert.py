"""Kubernetes objects as the API serializes them -> core values; no server needed."""

from __future__ import annotations

import gc
import tracemalloc
from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes import client

from scaler.adapters.kube.convert import (
    MAX_ANNOTATION_CHARS,
    convert_node,
    convert_pod,
    parse_provider_id,
    parse_time,
    pending_since,
    pod_spec,
)
from scaler.core.model import AMD64, NO_EXECUTE, NO_SCHEDULE, ON_DEMAND, SPOT, Resources, Taint
from scaler.core.state import BoundPod, PendingPod

CREATED = "2026-03-01T09:00:00Z"
UNSCHEDULABLE_AT = "2026-03-01T09:00:05Z"


def ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def serialize(obj: Any) -> Any:
    """What the API sends: the client's own serialization of its model objects."""
    return client.ApiClient().sanitize_for_serialization(obj)


def unschedulable(at: str = UNSCHEDULABLE_AT) -> dict[str, Any]:
    return {
        "type": "PodScheduled",
        "status": "False",
        "reason": "Unschedulable",
        "message": "0/3 nodes are available: 3 Insufficient memory.",
        "lastTransitionTime": at,
    }


def pod(
    name: str = "notebook",
    *,
    requests: dict[str, Any] | None = None,
    namespace: str = "ds",
    node: str | None = None,
    conditions: list[dict[str, Any]] | None = None,
    phase: str = "Pending",
    **extra: Any,
) -> dict[str, Any]:
    """A pod dict in the API's shape; ``extra`` keys go into metadata/spec/status by name."""
    meta = {
        "name": name,
        "namespace": namespace,
        "uid": f"uid-{name}",
        "creationTimestamp": CREATED,
    }
    spec: dict[str, Any] = {
        "containers": [{"name": "main", "image": "x", "resources": {"requests": requests or {}}}]
    }
    status: dict[str, Any] = {"phase": phase}
    if node:
        spec["nodeName"] = node
    if conditions is not None:
        status["conditions"] = conditions
    for key, value in extra.items():
        if key in ("annotations", "ownerReferences", "deletionTimestamp", "labels"):
            meta[key] = value
        elif key in ("nominatedNodeName", "startTime"):
            status[key] = value
        else:
            spec[key] = value
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": status}


def node(
    name: str = "ip-10-0-1-5.ec2.internal",
    *,
    labels: dict[str, str] | None = None,
    allocatable: dict[str, str] | None = None,
    ready: str = "True",
    **spec: Any,
) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "labels": {"kubernetes.io/arch": "amd64", **(labels or {})},
            "creationTimestamp": CREATED,
            "annotations": {"node.alpha.kubernetes.io/ttl": "0"},
        },
        "spec": spec,
        "status": {
            "allocatable": allocatable
            or {"cpu": "1930m", "memory": "7220184Ki", "pods": "29", "hugepages-1Gi": "0"},
            "conditions": [
                {"type": "MemoryPressure", "status": "False"},
                {"type": "Ready", "status": ready, "lastTransitionTime": CREATED},
            ],
        },
    }


# --- requests ---------------------------------------------------------------------------


def test_requests_fold_in_init_containers_sidecars_and_overhead():
    def container(name: str, cpu: str, memory: str, restart: str | None = None):
        return client.V1Container(
            name=name,
            image="x",
            restart_policy=restart,
            resources=client.V1ResourceRequirements(requests={"cpu": cpu, "memory": memory}),
        )

    api_pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name="etl", namespace="ds", creation_timestamp=CREATED),
        spec=client.V1PodSpec(
            containers=[container("app", "500m", "1Gi"), container("log", "250m", "512Mi")],
            init_containers=[
                container("mesh", "100m", "128Mi", restart="Always"),  # a sidecar
                container("migrate", "2", "256Mi"),  # runs beside the sidecar started first
            ],
            overhead={"cpu": "50m", "memory": "64Mi"},
        ),
        status=client.V1PodStatus(phase="Pending", conditions=[unschedulable()]),
    )
    raw = serialize(api_pod)
    assert "initContainers" in raw["spec"]  # camelCase, as the API sends it

    got = convert_pod(raw)

    assert got.problem is None
    assert isinstance(got.value, PendingPod)
    # cpu: max(app 750m + sidecar 100m, migrate 2000m + sidecar 100m) + overhead 50m
    # memory: max(1536Mi + 128Mi, 256Mi + 128Mi) + overhead 64Mi
    assert got.value.pod.requests == Resources(cpu_milli=2150, memory_mib=1728, pods=1)


def test_limits_only_container_is_scheduled_by_its_limits():
    raw = pod(conditions=[unschedulable()])
    raw["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "1", "nvidia.com/gpu": "1"}}
    got = convert_pod(raw)
    assert got.value.pod.requests == Resources(cpu_milli=1000, gpu=1, pods=1)


# --- the pending rule -------------------------------------------------------------------


def test_unschedulable_pod_is_pending_since_the_conditions_transition():
    got = convert_pod(pod(requests={"memory": "64Gi"}, conditions=[unschedulable()]))
    assert isinstance(got.value, PendingPod)
    assert got.value.since_s == ts(UNSCHEDULABLE_AT)
    assert got.value.pod.key == "ds/notebook"
    assert got.value.pod.arrival_s == ts(CREATED)
    assert got.value.pod.requests.memory_mib == 64 * 1024


@pytest.mark.parametrize(
    ("why", "raw"),
    [
        ("nominated: preemption makes room on an existing node", pod(
            conditions=[unschedulable()], nominatedNodeName="node-a")),
        ("being deleted", pod(
            conditions=[unschedulable()], deletionTimestamp="2026-03-01T09:01:00Z")),
        ("not looked at by the scheduler yet", pod(conditions=[])),
        ("scheduler error, not a capacity problem", pod(conditions=[
            {**unschedulable(), "reason": "SchedulerError"}])),
        ("scheduled", pod(conditions=[{"type": "PodScheduled", "status": "True"}])),
        ("failed", pod(conditions=[unschedulable()], phase="Failed")),
    ],
)  # fmt: skip
def test_pods_that_are_not_pending(why: str, raw: dict[str, Any]):
    assert pending_since(raw) is None, why
    assert convert_pod(raw).value is None, why


def test_bound_pod_is_bound_not_pending_even_with_a_stale_unschedulable_condition():
    raw = pod(
        requests={"cpu": "2"},
        node="node-a",
        conditions=[unschedulable()],
        phase="Running",
        startTime="2026-03-01T09:02:00Z",
    )
    got = convert_pod(raw)
    assert isinstance(got.value, BoundPod)
    assert got.value.node == "node-a"
    assert got.value.started_s == ts("2026-03-01T09:02:00Z")
    assert got.value.is_workload
    assert got.value.pod.requests.cpu_milli == 2000


def test_finished_pod_on_a_node_is_neither_bound_nor_pending():
    assert convert_pod(pod(node="node-a", phase="Succeeded")).value is None


def test_daemonset_pod_is_bound_as_daemonset_despite_its_match_fields_affinity():
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n"]}]}
                ]
            }
        }
    }
    owner = [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "aws-node", "uid": "u"}]
    raw = pod("aws-node-x", node="n", ownerReferences=owner, affinity=affinity, phase="Running")
    got = convert_pod(raw)
    assert got.problem is None
    assert isinstance(got.value, BoundPod)
    assert got.value.daemonset
    assert not got.value.is_workload
    assert got.value.pod.affinity == ()


def test_pending_daemonset_pod_is_ignored_no_new_node_helps_it():
    owner = [{"kind": "DaemonSet", "name": "big-agent"}]
    raw = pod("agent", conditions=[unschedulable()], ownerReferences=owner)
    assert convert_pod(raw).value is None


def test_mirror_pod_is_bound_as_mirror():
    raw = pod("kube-proxy-n", node="n", annotations={"kubernetes.io/config.mirror": "abc"})
    got = convert_pod(raw)
    assert got.value.mirror
    assert not got.value.is_workload


# --- selectors, tolerations, annotations -------------------------------------------------


def test_selectors_tolerations_and_zone_are_carried():
    tolerations = [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
        {
            "key": "node.kubernetes.io/not-ready",
            "operator": "Exists",
            "effect": "NoExecute",
            "tolerationSeconds": 300,
        },
    ]
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [
                        {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot"]}
                    ]}
                ]
            }
        }
    }  # fmt: skip
    raw = pod(
        conditions=[unschedulable()],
        nodeSelector={"topology.kubernetes.io/zone": "us-east-1b", "team": "ds"},
        tolerations=tolerations,
        affinity=affinity,
    )
    spec = convert_pod(raw).value.pod
    assert spec.zone == "us-east-1b"
    assert spec.node_selector == (("team", "ds"),)
    assert [str(r) for t in spec.affinity for r in t.requirements] == [
        "karpenter.sh/capacity-type In (spot)"
    ]
    assert spec.tolerations[0].tolerates(Taint("nvidia.com/gpu", "true", NO_SCHEDULE))
    assert spec.tolerations[1].effect == NO_EXECUTE
    assert spec.arch == AMD64


def test_a_pod_that_names_its_architecture_leaves_arch_to_labels():
    raw = pod(conditions=[unschedulable()], nodeSelector={"kubernetes.io/arch": "arm64"})
    spec = convert_pod(raw).value.pod
    assert spec.arch is None
    assert spec.node_selector == (("kubernetes.io/arch", "arm64"),)


def test_annotations_are_kept_except_huge_ones():
    annotations = {
        "cluster-autoscaler.kubernetes.io/safe-to-evict": "false",
        "kubectl.kubernetes.io/last-applied-configuration": "{}",
        "example.com/blob": "x" * (MAX_ANNOTATION_CHARS + 1),
    }
    spec = convert_pod(pod(conditions=[unschedulable()], annotations=annotations)).value.pod
    assert spec.annotations == (("cluster-autoscaler.kubernetes.io/safe-to-evict", "false"),)


# --- what scaler cannot read does not crash it -------------------------------------------


def test_bad_quantity_in_a_pending_pod_is_a_problem_naming_the_pod_and_field():
    got = convert_pod(pod(requests={"cpu": "1", "memory": "lots"}, conditions=[unschedulable()]))
    assert got.value is None
    assert got.problem is not None
    assert got.problem.key == "ds/notebook"
    assert got.problem.field == "spec.containers[0].resources.requests.memory"
    assert str(got.problem).startswith("pod ds/notebook.spec.containers[0].resources.requests")
    assert "'lots' is not a Kubernetes quantity" in str(got.problem)


def test_bad_quantity_in_a_bound_pod_keeps_the_pod_with_what_could_be_read():
    raw = pod(requests={"cpu": "1", "memory": "lots"}, node="node-a", phase="Running")
    got = convert_pod(raw)
    assert isinstance(got.value, BoundPod)
    assert got.value.pod.requests == Resources(cpu_milli=1000, pods=1)
    assert got.problem is not None and got.problem.field.endswith("requests.memory")


def test_unknown_resource_blocks_a_pending_pod_but_not_a_bound_one():
    requests = {"cpu": "1", "aws.amazon.com/neuron": "1"}
    pending = convert_pod(pod(requests=requests, conditions=[unschedulable()]))
    assert pending.value is None
    assert "unknown resource" in pending.problem.what

    bound = convert_pod(pod(requests=requests, node="node-a", phase="Running"))
    assert bound.problem is None
    assert bound.value.pod.requests == Resources(cpu_milli=1000, pods=1)


def test_security_group_branch_eni_does_not_block_a_pending_pod():
    # EKS security groups for pods inject vpc.amazonaws.com/pod-eni; any supported node
    # provides it once the VPC resource controller runs, so it must not stop scaling.
    requests = {"cpu": "1", "vpc.amazonaws.com/pod-eni": "1"}
    pending = convert_pod(pod(requests=requests, conditions=[unschedulable()]))
    assert pending.problem is None
    assert pending.value.pod.requests == Resources(cpu_milli=1000, pods=1)


# --- nodes ------------------------------------------------------------------------------


def test_node_reads_pool_type_zone_capacity_type_and_allocatable_from_labels():
    raw = node(
        labels={
            "scaler.io/pool": "m5-large-spot",
            "node.kubernetes.io/instance-type": "m5.large",
            "topology.kubernetes.io/zone": "us-east-1a",
            "eks.amazonaws.com/capacityType": "SPOT",
        },
        providerID="aws:///us-east-1a/i-0123456789abcdef0",
        taints=[{"key": "dedicated", "value": "ds", "effect": "NoSchedule"}],
        unschedulable=True,
    )
    got = convert_node(raw)
    n = got.value
    assert got.problem is None
    assert n.pool == "m5-large-spot"  # the instance's group is applied by KubeCluster
    assert n.pool_labelled
    assert (n.instance_type, n.zone, n.capacity_type) == ("m5.large", "us-east-1a", SPOT)
    assert n.instance_id == "i-0123456789abcdef0"
    assert n.allocatable == Resources(cpu_milli=1930, memory_mib=7220184 / 1024, pods=29)
    assert n.ready and n.gpu_ready and n.unschedulable
    assert n.taints == (Taint("dedicated", "ds", NO_SCHEDULE),)
    assert n.annotation("node.alpha.kubernetes.io/ttl") == "0"
    assert n.created_s == ts(CREATED)


def test_node_without_pool_label_takes_instance_and_zone_from_provider_id():
    raw = node(providerID="aws:///us-east-1c/i-0abc")
    n = convert_node(raw).value
    # Its pool comes from the ASG discovery, at snapshot time
    # (test_kube_cluster.py::test_a_nodes_instance_decides_its_pool_over_its_label).
    assert (n.pool, n.instance_id, n.zone, n.capacity_type, n.instance_type) == (
        None,
        "i-0abc",
        "us-east-1c",
        ON_DEMAND,
        "",
    )
    assert not n.pool_labelled  # pins could not reach it until scaler labels it


def test_node_not_ready_and_unknown_pool():
    n = convert_node(node(ready="Unknown")).value
    assert not n.ready
    assert n.pool is None


@pytest.mark.parametrize(
    ("labels", "allocatable_gpu", "is_gpu_type", "gpu_ready"),
    [
        ({"nvidia.com/gpu": "true"}, None, None, False),  # device plugin not up yet
        ({"nvidia.com/gpu": "true"}, "0", None, False),
        ({"nvidia.com/gpu": "true"}, "4", None, True),
        (
            {"node.kubernetes.io/instance-type": "g5.xlarge"},
            None,
            {"g5.xlarge"}.__contains__,
            False,
        ),
        ({"node.kubernetes.io/instance-type": "m5.large"}, None, {"g5.xlarge"}.__contains__, True),
    ],
)
def test_gpu_node_is_not_gpu_ready_until_it_advertises_gpus(
    labels, allocatable_gpu, is_gpu_type, gpu_ready
):
    allocatable = {"cpu": "4", "memory": "16Gi", "pods": "58"}
    if allocatable_gpu is not None:
        allocatable["nvidia.com/gpu"] = allocatable_gpu
    n = convert_node(node(labels=labels, allocatable=allocatable), is_gpu_type=is_gpu_type).value
    assert n.gpu_ready is gpu_ready
    assert n.ready


def test_node_with_an_unreadable_quantity_is_kept_and_reported():
    got = convert_node(node(allocatable={"cpu": "2", "memory": "eight", "pods": "29"}))
    assert got.value.allocatable == Resources(cpu_milli=2000, pods=29)
    assert got.problem.field == "status.allocatable.memory"


def test_provider_id_and_time_parsing():
    assert parse_provider_id("aws:///us-east-1a/i-0123") == ("us-east-1a", "i-0123")
    assert parse_provider_id("aws:///i-0123") == (None, "i-0123")
    assert parse_provider_id("kind://docker/kind/node") == (None, None)
    assert parse_provider_id(None) == (None, None)
    micro = parse_time("2026-03-01T09:00:00.250000Z")
    assert micro == ts(CREATED) + 0.25
    assert datetime.fromtimestamp(micro, UTC).tzinfo is UTC
    assert parse_time("yesterday") is None


# --- memory -----------------------------------------------------------------------------


def _typical_bound_pod(i: int) -> dict[str, Any]:
    """A Deployment pod as a production API serves it: env, sidecar, default tolerations,
    a last-applied-configuration annotation of a few KB."""
    raw = pod(
        f"web-7d9f8-{i:05x}",
        namespace=f"team-{i % 40}",
        node=f"ip-10-0-{i % 5000}.ec2.internal",
        phase="Running",
        tolerations=[
            {"key": k, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
            for k in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")
        ],
        nodeSelector={"kubernetes.io/os": "linux"},
        ownerReferences=[{"kind": "ReplicaSet", "name": "web-7d9f8", "uid": "u" * 36}],
        annotations={
            "kubectl.kubernetes.io/last-applied-configuration": "{" + "x" * 3000 + "}",
            "checksum/config": "a" * 64,
        },
    )
    raw["spec"]["containers"] = [
        {
            "name": "app",
            "image": "repo/app:1.2.3",
            "env": [{"name": f"E{k}", "value": "v" * 20} for k in range(10)],
            "resources": {"requests": {"cpu": "250m", "memory": "512Mi"}},
        },
        {"name": "envoy", "image": "envoy", "resources": {"requests": {"cpu": "100m"}}},
    ]
    return raw


def test_cached_pods_stay_small_enough_for_20000_in_the_memory_budget():
    # Budget (issue): <= 150 MB RSS with 5,000 nodes and 20,000 pods. The process itself
    # (client, numpy) takes ~85 MB, so the caches must stay well under 2 KiB per pod.
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = [convert_pod(_typical_bound_pod(i)).value for i in range(1000)]
        gc.collect()
        per_pod = (tracemalloc.get_traced_memory()[0] - before) / len(kept)
    finally:
        tracemalloc.stop()
    assert all(isinstance(b, BoundPod) for b in kept)
    assert per_pod < 2048, f"{per_pod:.0f} bytes per cached pod"


def test_a_pods_priority_is_read_from_spec_priority_and_defaults_to_zero():
    assert pod_spec(pod(priority=-100)).value.priority == -100
    assert pod_spec(pod(priority=1_000_000)).value.priority == 1_000_000
    assert pod_spec(pod()).value.priority == 0
    assert pod_spec(pod(priority="high")).value.priority == 0


def test_a_pods_controller_kind_is_carried_for_its_runtime_estimate():
    def owners(*refs: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"apiVersion": "v1", "name": "o", "uid": "u", **r} for r in refs]

    job = pod("etl-x7b2k", conditions=[unschedulable()], ownerReferences=owners({"kind": "Job"}))
    assert convert_pod(job).value.pod.owner_kind == "Job"  # type: ignore[union-attr]
    # The owner marked controller, not merely the first.
    two = owners({"kind": "ConfigMap"}, {"kind": "StatefulSet", "controller": True})
    nb = pod("nb-0", node="n", phase="Running", ownerReferences=two)
    assert convert_pod(nb).value.pod.owner_kind == "StatefulSet"  # type: ignore[union-attr]
    bare = pod("lone", conditions=[unschedulable()])
    assert convert_pod(bare).value.pod.owner_kind is None  # type: ignore[union-attr]
