"""Conformance: the node scaler buys is one the real kube-scheduler puts the pod on.

Each test builds EKS-shaped groups in moto (launch templates, discovery and node-template
tags, managed node group tags), creates a pending pod in the real API server, lets scaler's
live controller decide and scale, then registers the Node the chosen group's instance would
become (:func:`tests.fixtures.nodes.node_for_pool`: labels, taints, capacity and allocatable
as the launch template and the instance type make them) and asserts kube-scheduler binds the
pod to it. These are the judge of what a pool's node looks like (docs/kubernetes.md).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from kubernetes import client

from scaler.adapters.aws.fleet import AwsFleet
from scaler.app import Controller, RunOptions, build
from scaler.core.actions import ScaleUp
from scaler.core.catalog import Catalog
from tests.conformance.support import expect_bound
from tests.fixtures.kube import KubeScope
from tests.fixtures.nodes import EksGroup, eks_groups, node_for_pool

pytestmark = [pytest.mark.kube, pytest.mark.anyio]

CLUSTER = "conformance"
CA = "k8s.io/cluster-autoscaler/"


@contextlib.asynccontextmanager
async def controller(kube_env: Any, catalog: Catalog) -> AsyncIterator[Controller]:
    """A fresh live controller (no memory of earlier decisions), caches listed."""
    opts = RunOptions(cluster_name=CLUSTER, kubeconfig=str(kube_env.kubeconfig), leader_elect=False)
    async with AwsFleet.open(CLUSTER, catalog) as fleet:
        await fleet.discover()
        ctl = build(opts, fleet, catalog)
        async with anyio.create_task_group() as tg:
            await tg.start(ctl.cluster.run)
            yield ctl
            tg.cancel_scope.cancel()


async def scale_up_for(ctl: Controller, n_pending: int = 1) -> list[ScaleUp]:
    """Wait for the pods to be seen pending, then tick until scaler scales (the batch window
    closes ~1 s after the last pod)."""
    with anyio.fail_after(20):
        while len((await ctl.cluster.snapshot()).pending) < n_pending:
            await anyio.sleep(0.05)
        while True:
            ups = [a for a in (await ctl.reconciler.tick()).actions if isinstance(a, ScaleUp)]
            if ups:
                return ups
            await anyio.sleep(0.1)


def create_pod(kube_ns: KubeScope, name: str, requests: dict[str, str], **spec: Any) -> None:
    limits = {k: v for k, v in requests.items() if "/" in k} or None
    body = client.V1Pod(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1PodSpec(
            containers=[client.V1Container(
                name="main", image="pause",
                resources=client.V1ResourceRequirements(requests=requests, limits=limits),
            )],
            termination_grace_period_seconds=0,
            **spec,
        ),
    )
    kube_ns.core.create_namespaced_pod(kube_ns.namespace, body)


def desired(asg: Any) -> dict[str, int]:
    groups = asg.describe_auto_scaling_groups()["AutoScalingGroups"]
    return {g["AutoScalingGroupName"]: g["DesiredCapacity"] for g in groups}


async def test_a_chart_pod_selecting_linux_gets_a_node_of_the_managed_node_group(
    kube_env, kube_ns, aws, catalog
):
    eks_groups(aws, CLUSTER, [EksGroup("workers-1a", "m5.large", nodegroup="workers")])
    # Quantities as some charts write them; the API server admits both.
    create_pod(kube_ns, "web", {"cpu": "500000u", "memory": "1.5e9"},
               node_selector={"kubernetes.io/os": "linux",
                              "eks.amazonaws.com/nodegroup": "workers"})
    async with controller(kube_env, catalog) as ctl:
        (up,) = await scale_up_for(ctl)
    assert (up.pool, up.count) == ("workers-1a", 1)
    node = node_for_pool(kube_ns, "workers-1a")
    expect_bound(kube_ns, "web", node.metadata.name, timeout_s=30)


async def test_a_pod_asking_100gi_of_scratch_gets_the_launch_templates_big_root_volume(
    kube_env, kube_ns, aws, catalog
):
    eks_groups(aws, CLUSTER, [
        EksGroup("small-disk", "m5.large"),  # the AMI's 20 GiB: too small
        EksGroup("scratch", "m5.xlarge", root_volume_gib=200),
    ])
    create_pod(kube_ns, "etl", {"cpu": "1", "memory": "2Gi", "ephemeral-storage": "100Gi"})
    async with controller(kube_env, catalog) as ctl:
        (up,) = await scale_up_for(ctl)
    assert up.pool == "scratch"
    node = node_for_pool(kube_ns, "scratch")
    expect_bound(kube_ns, "etl", node.metadata.name, timeout_s=30)


async def test_a_pod_admitting_both_architectures_gets_the_cheaper_arm64_node(
    kube_env, kube_ns, aws, catalog
):
    eks_groups(aws, CLUSTER, [
        EksGroup("amd", "m5.large", nodegroup="amd"),  # $0.096/h
        EksGroup("arm", "m7g.large", nodegroup="arm"),  # $0.0816/h
    ])
    either = client.V1Affinity(node_affinity=client.V1NodeAffinity(
        required_during_scheduling_ignored_during_execution=client.V1NodeSelector(
            node_selector_terms=[client.V1NodeSelectorTerm(match_expressions=[
                client.V1NodeSelectorRequirement(
                    key="kubernetes.io/arch", operator="In", values=["amd64", "arm64"]
                )
            ])]
        )
    ))
    create_pod(kube_ns, "multiarch", {"cpu": "1", "memory": "2Gi"}, affinity=either)
    async with controller(kube_env, catalog) as ctl:
        (up,) = await scale_up_for(ctl)
    assert up.pool == "arm"
    node = node_for_pool(kube_ns, "arm")
    assert node.metadata.labels["kubernetes.io/arch"] == "arm64"
    expect_bound(kube_ns, "multiarch", node.metadata.name, timeout_s=30)


async def test_a_node_with_only_startup_taints_is_waited_for_then_takes_the_pod(
    kube_env, kube_ns, aws, catalog
):
    startup = "ignore-taint.cluster-autoscaler.kubernetes.io/cilium-agent"
    asg = eks_groups(aws, CLUSTER, [
        EksGroup("cilium", "m5.large", tags={CA + "node-template/taint/" + startup: "true:NoSchedule"}),
    ])
    create_pod(kube_ns, "app", {"cpu": "1", "memory": "2Gi"})
    async with controller(kube_env, catalog) as ctl:
        (up,) = await scale_up_for(ctl)
    assert up.pool == "cilium"
    agent = {"key": "ebs.csi.aws.com/agent-not-ready", "effect": "NoExecute"}
    node = node_for_pool(kube_ns, "cilium", extra_taints=[agent])
    # A new process (no memory of the launch) sees a Ready node that only startup taints keep
    # the pod off: capacity on its way, not a reason to buy another node.
    async with controller(kube_env, catalog) as ctl:
        with anyio.fail_after(20):
            while not (await ctl.cluster.snapshot()).pending or not any(
                n.name == node.metadata.name for n in (await ctl.cluster.snapshot()).nodes
            ):
                await anyio.sleep(0.05)
        for _ in range(3):
            decision = await ctl.reconciler.tick()
            assert not [a for a in decision.actions if isinstance(a, ScaleUp)]
            await anyio.sleep(0.6)
    assert desired(asg)["cilium"] == 1
    # The agents come up and take their taints off; the scheduler binds the pod.
    kube_ns.core.patch_node(node.metadata.name, {"spec": {"taints": []}})
    expect_bound(kube_ns, "app", node.metadata.name, timeout_s=30)


async def test_a_v100_pod_gets_a_p3_2xlarge_node_although_moto_does_not_know_the_type(
    kube_env, kube_ns, aws, catalog
):
    gpu = {
        CA + "node-template/resources/nvidia.com/gpu": "1",
        CA + "node-template/taint/nvidia.com/gpu": "true:NoSchedule",
        CA + "node-template/label/k8s.amazonaws.com/accelerator": "v100",
    }
    eks_groups(aws, CLUSTER, [EksGroup("v100", "p3.2xlarge", tags=gpu, root_volume_gib=100)])
    create_pod(
        kube_ns, "train", {"cpu": "4", "memory": "32Gi", "nvidia.com/gpu": "1"},
        node_selector={"k8s.amazonaws.com/accelerator": "v100"},
        tolerations=[client.V1Toleration(key="nvidia.com/gpu", operator="Exists")],
    )
    async with controller(kube_env, catalog) as ctl:
        (up,) = await scale_up_for(ctl)
    assert (up.pool, up.instance_type) == ("v100", "p3.2xlarge")
    node = node_for_pool(kube_ns, "v100")
    expect_bound(kube_ns, "train", node.metadata.name, timeout_s=30)
