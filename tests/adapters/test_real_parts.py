"""The real parts the adapter tests stand on are really there and behave like production.

A genuine kube-apiserver + kube-scheduler (v1.20.2) and moto in server mode, reached over
real HTTP(S) by the same client libraries scaler's adapters use.
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from aiobotocore.session import get_session
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.fixtures.kube import KubeScope, kube_request, wait_for

PROVIDER_ID = "aws:///us-east-1a/i-0123456789abcdef0"
CLUSTER = "test-cluster"
ASG_NAME = "scaler-test-m5-large"


# --- Kubernetes -----------------------------------------------------------------------------


@pytest.mark.kube
def test_scheduler_leaves_an_oversized_pod_unschedulable_and_binds_a_small_one(kube_ns: KubeScope):
    node = kube_ns.make_node(
        "node-a", capacity={"cpu": 2, "memory": "8Gi", "pods": 29}, provider_id=PROVIDER_ID
    )
    assert node.spec.provider_id == PROVIDER_ID
    assert node.status.allocatable["memory"] == "8Gi"

    kube_ns.make_pod("too-big", requests={"memory": "64Gi"})
    kube_ns.make_pod("small", requests={"cpu": "100m"})

    def unschedulable():
        condition = kube_ns.pod_condition("too-big", "PodScheduled")
        return condition if condition and condition.status == "False" else None

    condition = wait_for(unschedulable, timeout_s=20, what="too-big to be marked unschedulable")
    assert condition.reason == "Unschedulable"
    bound_to = wait_for(
        lambda: kube_ns.core.read_namespaced_pod("small", kube_ns.namespace).spec.node_name,
        timeout_s=20,
        what="small to be bound",
    )
    assert bound_to == "node-a"


@pytest.mark.kube
def test_lease_is_created_renewed_and_guarded_by_resource_version(kube_ns: KubeScope):
    leases = client.CoordinationV1Api(kube_ns.api)
    spec = client.V1LeaseSpec(holder_identity="scaler-a", lease_duration_seconds=15)
    body = client.V1Lease(metadata=client.V1ObjectMeta(name="scaler"), spec=spec)
    created = leases.create_namespaced_lease(kube_ns.namespace, body)

    created.spec.holder_identity = "scaler-b"
    renewed = leases.replace_namespaced_lease("scaler", kube_ns.namespace, created)
    assert renewed.spec.holder_identity == "scaler-b"

    # A writer holding the old version loses: leader election relies on this 409.
    created.spec.holder_identity = "scaler-c"
    with pytest.raises(ApiException) as stale:
        leases.replace_namespaced_lease("scaler", kube_ns.namespace, created)
    assert stale.value.status == 409


def _evict(kube_ns: KubeScope, pod: str) -> None:
    # The 1.20 server serves Eviction as policy/v1beta1 only; production clusters today serve
    # policy/v1, which scaler's adapter prefers. The raw response is kept because the server
    # answers with a Status, not an Eviction.
    body = {
        "apiVersion": "policy/v1beta1",
        "kind": "Eviction",
        "metadata": {"name": pod, "namespace": kube_ns.namespace},
        "deleteOptions": {"gracePeriodSeconds": 0},
    }
    kube_ns.core.create_namespaced_pod_eviction(
        pod, kube_ns.namespace, body, _preload_content=False
    )


def _pdb_path(kube_ns: KubeScope, name: str = "") -> str:
    path = f"/apis/policy/v1beta1/namespaces/{kube_ns.namespace}/poddisruptionbudgets"
    return f"{path}/{name}" if name else path


@pytest.mark.kube
def test_eviction_through_policy_v1beta1_obeys_the_disruption_budget_status(kube_ns: KubeScope):
    kube_ns.make_node("node-e", capacity={"cpu": 2, "memory": "8Gi", "pods": 29})
    kube_ns.make_pod("worker", labels={"app": "worker"}, node_name="node-e")
    kube_ns.set_pod_phase("worker", "Running")
    pdb = {
        "apiVersion": "policy/v1beta1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "worker"},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "worker"}}},
    }
    kube_request(kube_ns.api, "POST", _pdb_path(kube_ns), pdb)

    # No disruption controller runs here, so the budget's status is never computed and the
    # server refuses every eviction it covers until the test reports that status itself.
    with pytest.raises(ApiException) as refused:
        _evict(kube_ns, "worker")
    assert refused.value.status == 429

    generation = kube_request(kube_ns.api, "GET", _pdb_path(kube_ns, "worker"))["metadata"][
        "generation"
    ]
    status = {
        "observedGeneration": generation,
        "disruptionsAllowed": 1,
        "currentHealthy": 1,
        "desiredHealthy": 0,
        "expectedPods": 1,
    }
    kube_request(kube_ns.api, "PATCH", _pdb_path(kube_ns, "worker") + "/status", {"status": status})
    _evict(kube_ns, "worker")

    def gone() -> bool:
        try:
            kube_ns.core.read_namespaced_pod("worker", kube_ns.namespace)
        except ApiException as error:
            return error.status == 404
        return False

    wait_for(gone, timeout_s=10, what="the evicted pod to be deleted")


# --- AWS (moto server) ------------------------------------------------------------------------


def _make_discoverable_asg(endpoint: str) -> dict[str, Any]:
    """A VPC with subnets in two AZs and a CA-discoverable m5.large ASG, made with boto3."""
    ec2 = boto3.client("ec2", endpoint_url=endpoint)
    autoscaling = boto3.client("autoscaling", endpoint_url=endpoint)
    vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc_id, CidrBlock=cidr, AvailabilityZone=zone)["Subnet"]
        for cidr, zone in [("10.0.1.0/24", "us-east-1a"), ("10.0.2.0/24", "us-east-1b")]
    ]
    image_id = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    template_id = ec2.create_launch_template(
        LaunchTemplateName="scaler-test-m5-large",
        LaunchTemplateData={"ImageId": image_id, "InstanceType": "m5.large"},
    )["LaunchTemplate"]["LaunchTemplateId"]
    tags = {
        "k8s.io/cluster-autoscaler/enabled": "true",
        f"k8s.io/cluster-autoscaler/{CLUSTER}": "owned",
    }
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=ASG_NAME,
        LaunchTemplate={"LaunchTemplateId": template_id, "Version": "$Latest"},
        MinSize=0,
        MaxSize=10,
        DesiredCapacity=0,
        VPCZoneIdentifier=",".join(subnet["SubnetId"] for subnet in subnets),
        Tags=[
            {
                "ResourceId": ASG_NAME,
                "ResourceType": "auto-scaling-group",
                "Key": key,
                "Value": value,
                "PropagateAtLaunch": True,
            }
            for key, value in tags.items()
        ],
    )
    return {"subnets": {s["SubnetId"]: s["AvailabilityZone"] for s in subnets}, "tags": tags}


def test_aws_fixture_points_the_sdk_at_moto(aws: str):
    ec2 = boto3.client("ec2")  # endpoint, region and credentials from the environment
    assert ec2.meta.endpoint_url == aws
    assert ec2.describe_vpcs()["Vpcs"]  # moto's default VPC, over HTTP


@pytest.mark.anyio
async def test_aiobotocore_discovers_the_asg_and_scales_it_over_http(aws: str):
    made = _make_discoverable_asg(aws)
    session = get_session()
    async with (
        session.create_client("autoscaling", endpoint_url=aws) as autoscaling,
        session.create_client("ec2", endpoint_url=aws) as ec2,
    ):
        pages = autoscaling.get_paginator("describe_auto_scaling_groups").paginate(
            Filters=[{"Name": "tag-key", "Values": [f"k8s.io/cluster-autoscaler/{CLUSTER}"]}]
        )
        groups = [group async for page in pages for group in page["AutoScalingGroups"]]
        assert [group["AutoScalingGroupName"] for group in groups] == [ASG_NAME]
        group = groups[0]
        assert {tag["Key"]: tag["Value"] for tag in group["Tags"]} == made["tags"]
        assert sorted(group["AvailabilityZones"]) == ["us-east-1a", "us-east-1b"]
        assert group["DesiredCapacity"] == 0

        await autoscaling.set_desired_capacity(AutoScalingGroupName=ASG_NAME, DesiredCapacity=2)

        described = await autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[ASG_NAME])
        group = described["AutoScalingGroups"][0]
        assert group["DesiredCapacity"] == 2
        assert len(group["Instances"]) == 2
        reservations = (
            await ec2.describe_instances(
                InstanceIds=[instance["InstanceId"] for instance in group["Instances"]]
            )
        )["Reservations"]
        instances = [i for r in reservations for i in r["Instances"]]
        assert {i["InstanceType"] for i in instances} == {"m5.large"}
        assert {i["SubnetId"] for i in instances} <= set(made["subnets"])
        assert {i["State"]["Name"] for i in instances} == {"running"}
