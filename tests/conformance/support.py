"""What the conformance tests share: per-zone ASGs in moto, scaler's live controller on
them, and the Node an instance of a group would register as.

The flow of every test: create the pods (and volumes) a chart or operator would, wait for the
real kube-scheduler to mark them Unschedulable, let scaler's controller (``app.build``, the
code ``scaler run`` runs) tick until it scales a group, take the instance moto launched in
that group, register the Node that instance would become (labels, taints, capacity and
allocatable as a kubelet on the EKS AMI reports them, providerID), and require kube-scheduler
to bind the pod to that Node. A wrong zone, a missing label or a taint the pod does not
tolerate leaves the pod pending, and the test fails.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest

from scaler.adapters.aws.fleet import AwsFleet
from scaler.app import Controller, RunOptions, build
from scaler.core.catalog import Catalog
from scaler.core.settings import Settings
from tests.fixtures.aws import create_group
from tests.fixtures.kube import KubeScope, wait_for
from tests.fixtures.nodes import node_for_pool

CLUSTER = "conformance"
CA = "k8s.io/cluster-autoscaler/"
RESULTS_ENV = "SCALER_CONFORMANCE_RESULTS"
"""A file each binding check (and each pod scaler called unplaceable) is appended to as a
JSON line, when set: benchmarks/conformance.py computes its figure from it."""


@dataclass(frozen=True)
class ZonalGroup:
    """An ASG in one zone (the per-AZ groups EBS users run), with node-template tags."""

    name: str
    instance_type: str
    zone: str
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: Mapping[str, str] = field(default_factory=dict)
    """key -> ``value:Effect``, as the node-template taint tag writes it."""
    max_size: int = 10


def zonal_groups(groups: Sequence[ZonalGroup]) -> Any:
    """A VPC with one subnet per zone used, each group's ASG in its zone's subnet. Returns the
    boto3 autoscaling client (the SDKs point at moto: the ``aws`` fixture)."""
    import boto3

    ec2 = boto3.client("ec2")
    asg = boto3.client("autoscaling")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = {}
    for i, zone in enumerate(sorted({g.zone for g in groups})):
        subnets[zone] = ec2.create_subnet(
            VpcId=vpc, CidrBlock=f"10.0.{16 * i}.0/20", AvailabilityZone=zone
        )["Subnet"]["SubnetId"]
    for g in groups:
        template = ec2.create_launch_template(
            LaunchTemplateName=g.name,
            LaunchTemplateData={"ImageId": "ami-0eks0node0image0", "InstanceType": g.instance_type},
        )
        tags = {CA + "enabled": "true", CA + CLUSTER: "owned"}
        tags.update({f"{CA}node-template/label/{k}": v for k, v in g.labels.items()})
        tags.update({f"{CA}node-template/taint/{k}": v for k, v in g.taints.items()})
        create_group(asg, g.name, template, subnets[g.zone], tags, max_size=g.max_size)
    return asg


@contextlib.asynccontextmanager
async def controller(
    kube_env: Any, catalog: Catalog, settings: Settings | None = None
) -> AsyncIterator[Controller]:
    """scaler's controller as ``scaler run`` builds it, its caches running."""
    opts = RunOptions(
        cluster_name=CLUSTER,
        kubeconfig=str(kube_env.kubeconfig),
        leader_elect=False,
        settings=settings or Settings(),
    )
    async with AwsFleet.open(CLUSTER, catalog) as fleet:
        await fleet.discover()
        ctl = build(opts, fleet, catalog)
        async with anyio.create_task_group() as tg:
            await tg.start(ctl.cluster.run)
            yield ctl
            tg.cancel_scope.cancel()


async def pending_seen(ctl: Controller, keys: set[str], timeout_s: float = 20.0) -> None:
    with anyio.fail_after(timeout_s):
        while not keys <= {p.pod.key for p in (await ctl.cluster.snapshot()).pending}:
            await anyio.sleep(0.05)


def wait_unschedulable(kube: KubeScope, *names: str) -> None:
    def all_pending() -> bool:
        return all(
            (c := kube.pod_condition(n, "PodScheduled")) is not None
            and c.reason == "Unschedulable"
            for n in names
        )

    wait_for(all_pending, timeout_s=20, what=f"{names} marked Unschedulable")


def instances(asg: Any, group: str) -> list[tuple[str, str]]:
    """(instance id, zone) of the group's instances, as moto launched them."""
    (g,) = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"]
    return [(i["InstanceId"], i["AvailabilityZone"]) for i in g["Instances"]]


def register_node(
    kube: KubeScope, catalog: Catalog, group: ZonalGroup, instance_id: str, zone: str
) -> str:
    """Create the Node this group's instance registers as (:func:`node_for_pool`: labels,
    taints, capacity and allocatable from the group's launch template, tags and instance type,
    computed independently of scaler's model); return its name."""
    import boto3

    del catalog, zone  # node_for_pool reads the instance, its zone and its type from moto
    ids = sorted(i for i, _ in instances(boto3.client("autoscaling"), group.name))
    node = node_for_pool(kube, group.name, instance_index=ids.index(instance_id))
    return node.metadata.name  # type: ignore[no-any-return]


def bound_node(kube: KubeScope, pod: str, timeout_s: float = 20.0) -> str:
    """The node kube-scheduler binds ``pod`` to; fails the test if it binds none in time."""

    def node_name() -> str | None:
        p = kube.core.read_namespaced_pod(pod, kube.namespace)
        return p.spec.node_name  # type: ignore[no-any-return]

    return wait_for(node_name, timeout_s=timeout_s, what=f"kube-scheduler to bind {pod}")


def ebs_volume(kube: KubeScope, name: str, zone: str, claim: str, *, key: str) -> None:
    """A PersistentVolume as the EBS CSI driver provisions it (node affinity on ``key``),
    pre-bound to ``claim``, and the claim bound to it, as the PV controller leaves them."""
    kube.core.create_persistent_volume({
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name, "annotations": {"pv.kubernetes.io/provisioned-by": "ebs.csi.aws.com"}},
        "spec": {
            "capacity": {"storage": "10Gi"},
            "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Delete",
            "storageClassName": "gp3",
            "csi": {"driver": "ebs.csi.aws.com", "volumeHandle": f"vol-{name}", "fsType": "ext4"},
            "claimRef": {"namespace": kube.namespace, "name": claim},
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": key, "operator": "In", "values": [zone]}]}]}},
        },
    })  # fmt: skip
    kube.core.create_namespaced_persistent_volume_claim(kube.namespace, {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": claim, "annotations": {
            "pv.kubernetes.io/bind-completed": "yes", "pv.kubernetes.io/bound-by-controller": "yes"}},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "gp3", "volumeName": name,
                 "resources": {"requests": {"storage": "10Gi"}}},
    })  # fmt: skip
    # No controller-manager here: report both as the PV controller would.
    kube.core.patch_persistent_volume_status(name, {"status": {"phase": "Bound"}})
    kube.core.patch_namespaced_persistent_volume_claim_status(
        claim, kube.namespace, {"status": {"phase": "Bound", "accessModes": ["ReadWriteOnce"],
                                           "capacity": {"storage": "10Gi"}}}
    )


def record(**fields: Any) -> None:
    """Append one outcome to the results file (:data:`RESULTS_ENV`), if one is named."""
    path = os.environ.get(RESULTS_ENV)
    if not path:
        return
    test = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" (", 1)[0]
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps({"test": test, **fields}) + "\n")


def expect_bound(
    kube: KubeScope, pod: str, chosen: str | Collection[str], timeout_s: float = 20.0
) -> str:
    """Require kube-scheduler to bind ``pod`` to the node scaler chose for it (``chosen``:
    one node, or the nodes scaler bought for a set of interchangeable replicas), record the
    outcome, and return the node it was bound to."""
    want = {chosen} if isinstance(chosen, str) else set(chosen)
    got: str | None
    try:
        got = bound_node(kube, pod, timeout_s=timeout_s)
    except pytest.fail.Exception:
        got = None
    record(pod=f"{kube.namespace}/{pod}", chosen=sorted(want), bound=got, ok=got in want)
    assert got in want, f"{pod}: kube-scheduler bound it to {got}, scaler chose {sorted(want)}"
    return got  # type: ignore[return-value]


def expect_unplaceable_everywhere(
    kube: KubeScope, pod: str, reason: str, registered: int, timeout_s: float = 20.0
) -> None:
    """Scaler called ``pod`` unplaceable (``reason``): with a node of every group registered
    (``registered`` nodes in the cluster), kube-scheduler must find none of them fits either.
    Recorded as an unplaceable pod, with whether kube-scheduler agreed."""
    want = f"0/{registered} nodes are available"

    def refused() -> bool:
        c = kube.pod_condition(pod, "PodScheduled")
        return c is not None and c.reason == "Unschedulable" and want in (c.message or "")

    agreed = True
    try:
        wait_for(refused, timeout_s=timeout_s, what=f"kube-scheduler to refuse {pod} on all nodes")
    except pytest.fail.Exception:
        agreed = False
    node = kube.core.read_namespaced_pod(pod, kube.namespace).spec.node_name
    record(pod=f"{kube.namespace}/{pod}", unplaceable=reason, no_group_runs_it=agreed and not node)
    assert agreed and not node, f"{pod}: scaler said unplaceable, kube-scheduler bound it to {node}"
