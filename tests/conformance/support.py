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
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio

from scaler.adapters.aws.fleet import AwsFleet
from scaler.app import Controller, RunOptions, build
from scaler.core.actions import ScaleUp
from scaler.core.catalog import Catalog, node_allocatable, node_labels
from scaler.core.model import LABEL_POOL, LABEL_ZONE, ON_DEMAND
from scaler.core.settings import Settings
from tests.fixtures.kube import KubeScope, wait_for

CLUSTER = "conformance"
CA = "k8s.io/cluster-autoscaler/"
REGION = "us-east-1"
ROOT_VOLUME_GIB = 20  # the EKS default root volume the launch templates here leave as is


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
        asg.create_auto_scaling_group(
            AutoScalingGroupName=g.name,
            MinSize=0,
            MaxSize=g.max_size,
            DesiredCapacity=0,
            VPCZoneIdentifier=subnets[g.zone],
            LaunchTemplate={
                "LaunchTemplateId": template["LaunchTemplate"]["LaunchTemplateId"],
                "Version": "$Latest",
            },
            Tags=[
                {"ResourceId": g.name, "ResourceType": "auto-scaling-group", "Key": k,
                 "Value": v, "PropagateAtLaunch": True}
                for k, v in tags.items()
            ],
        )
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


async def tick_until_scale_up(ctl: Controller, timeout_s: float = 15.0) -> list[ScaleUp]:
    """Tick as the loop would (the batch window closes ~1 s after the last pod)."""
    with anyio.fail_after(timeout_s):
        while True:
            decision = await ctl.reconciler.tick()
            ups = [a for a in decision.actions if isinstance(a, ScaleUp)]
            if ups:
                return ups
            await anyio.sleep(0.1)


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
    """Create the Node this group's instance registers as; return its name.

    Labels as the kubelet, the AWS cloud provider and the EBS CSI node plugin set them on an
    EKS node, plus the group's node-template labels (what its launch template passes to
    ``--node-labels``) and its taints (``--register-with-taints``). Capacity is the instance
    type's; allocatable is the EKS AMI's (kube-reserved and eviction thresholds subtracted)."""
    itype = catalog[group.instance_type]
    name = f"ip-{instance_id[2:14]}.ec2.internal"
    labels = {
        **node_labels(itype, ON_DEMAND),
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "beta.kubernetes.io/os": "linux",  # the v1.20 kubelet still sets the beta labels
        LABEL_ZONE: zone,
        "failure-domain.beta.kubernetes.io/zone": zone,
        "topology.kubernetes.io/region": REGION,
        "topology.ebs.csi.aws.com/zone": zone,
        LABEL_POOL: group.name,
        **group.labels,
    }
    taints = []
    for key, raw in group.taints.items():
        value, _, effect = raw.rpartition(":")
        taints.append({"key": key, "value": value, "effect": effect})
    alloc = node_allocatable(itype, ephemeral_storage_mib=ROOT_VOLUME_GIB * 1024.0)
    capacity = {
        "cpu": str(itype.vcpus),
        "memory": f"{itype.memory_mib}Mi",
        "pods": str(itype.max_pods),
        "ephemeral-storage": f"{ROOT_VOLUME_GIB}Gi",
    }
    allocatable = {
        "cpu": f"{int(alloc.cpu_milli)}m",
        "memory": f"{int(alloc.memory_mib)}Mi",
        "pods": str(int(alloc.pods)),
        "ephemeral-storage": f"{int(alloc.ephemeral_mib)}Mi",
    }
    if itype.gpu_count:
        capacity["nvidia.com/gpu"] = allocatable["nvidia.com/gpu"] = str(itype.gpu_count)
    kube.make_node(
        name,
        capacity=capacity,
        allocatable=allocatable,
        labels=labels,
        taints=taints or None,
        provider_id=f"aws:///{zone}/{instance_id}",
    )
    return name


def bound_node(kube: KubeScope, pod: str, timeout_s: float = 20.0) -> str:
    """The node kube-scheduler binds ``pod`` to; fails the test if it binds none in time."""

    def node_name() -> str | None:
        p = kube.core.read_namespaced_pod(pod, kube.namespace)
        return p.spec.node_name  # type: ignore[no-any-return]

    return wait_for(node_name, timeout_s=timeout_s, what=f"kube-scheduler to bind {pod}")
