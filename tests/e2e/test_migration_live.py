"""Migrating a misplaced pod does not loop: the real kube-apiserver (Eviction API) and
kube-scheduler, moto over HTTP. The test plays the kubelet (Nodes) and the ReplicaSet
controller (it re-creates the evicted pod under a new generated name, unpinned, and lets
the real scheduler place it).

Groups: small (m5.large, $0.096/h), big (m5.4xlarge, $0.768/h), one node each. The small
node is full, so kube-scheduler puts the replacement on the big node again, exactly as in
a namespace whose webhook pin did not apply.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from kubernetes import client

from scaler.adapters.aws.fleet import AwsFleet
from scaler.app import RunOptions, build
from scaler.core.catalog import Catalog
from scaler.core.state import ANNOTATION_PINNED_POOLS, ANNOTATION_RESTARTABLE
from scaler.telemetry import by_name
from tests.fixtures.aws import Group, tagged_groups
from tests.fixtures.kube import wait_for

pytestmark = [pytest.mark.kube, pytest.mark.anyio]

CLUSTER = "migrate"


def node_for(kube_ns: Any, account: Any, group: str, name: str, itype: str, **shape: Any) -> None:
    """One instance in ``group`` and its Node, tied by providerID (playing the kubelet)."""
    account.set_desired_capacity(AutoScalingGroupName=group, DesiredCapacity=1)
    (instance,) = account.describe_auto_scaling_groups(AutoScalingGroupNames=[group])[
        "AutoScalingGroups"
    ][0]["Instances"]
    zone = instance["AvailabilityZone"]
    kube_ns.make_node(
        name,
        capacity=shape,
        labels={"node.kubernetes.io/instance-type": itype, "topology.kubernetes.io/zone": zone},
        provider_id=f"aws:///{zone}/{instance['InstanceId']}",
    )


def make_pod(kube_ns: Any, name: str, memory: str, annotations: dict[str, str],
             node: str | None = None) -> None:
    body = client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, annotations=annotations),
        spec=client.V1PodSpec(
            containers=[client.V1Container(
                name="main", image="registry.k8s.io/pause:3.2",
                resources=client.V1ResourceRequirements(requests={"cpu": "100m", "memory": memory}),
            )],
            node_name=node,
            termination_grace_period_seconds=0,
        ),
    )
    kube_ns.core.create_namespaced_pod(kube_ns.namespace, body)


async def test_a_replacement_that_lands_on_the_same_big_node_is_not_evicted_again(
    kube_env, kube_ns, aws, catalog: Catalog
):
    account = tagged_groups(aws, CLUSTER, [Group("small", "m5.large"), Group("big", "m5.4xlarge")])
    node_for(kube_ns, account, "small", "small-1", "m5.large", cpu=2, memory="7680Mi", pods=29)
    node_for(kube_ns, account, "big", "big-1", "m5.4xlarge", cpu=16, memory="63Gi", pods=234)
    # The namespace is pinned (a pod the webhook pinned), and that pod fills the small node.
    make_pod(kube_ns, "notebook-0", "7Gi", {ANNOTATION_PINNED_POOLS: "small"}, node="small-1")
    restartable = {ANNOTATION_RESTARTABLE: "true"}
    make_pod(kube_ns, "web-7d9f8c-x2b4k", "2Gi", restartable, node="big-1")

    events: list[tuple[str, dict[str, Any]]] = []
    opts = RunOptions(cluster_name=CLUSTER, kubeconfig=str(kube_env.kubeconfig), leader_elect=False)
    async with AwsFleet.open(CLUSTER, catalog) as fleet:
        await fleet.discover()
        ctl = build(opts, fleet, catalog, observer=by_name(lambda e, f: events.append((e, f))))
        async with anyio.create_task_group() as tg:
            await tg.start(ctl.cluster.run)

            async def bound(name: str) -> None:
                with anyio.fail_after(15):
                    while not any(b.pod.name == name for b in (await ctl.cluster.snapshot()).bound):
                        await anyio.sleep(0.05)

            await bound("web-7d9f8c-x2b4k")
            first = await ctl.reconciler.review()
            assert first.migrated == 1
            wait_for(lambda: not [p for p in kube_ns.core.list_namespaced_pod(
                kube_ns.namespace).items if p.metadata.name == "web-7d9f8c-x2b4k"],
                what="the evicted pod gone")
            # The ReplicaSet re-creates it; the real scheduler binds it to big-1 again.
            make_pod(kube_ns, "web-7d9f8c-q5z7w", "2Gi", restartable)
            placed = wait_for(lambda: kube_ns.core.read_namespaced_pod(
                "web-7d9f8c-q5z7w", kube_ns.namespace).spec.node_name, what="scheduled")
            assert placed == "big-1"
            await bound("web-7d9f8c-q5z7w")
            second = await ctl.reconciler.review()
            assert [c.pod.name for c in second.misplaced] == ["web-7d9f8c-q5z7w"]
            assert second.migrated == 0, "evicting it again would only loop"
            tg.cancel_scope.cancel()
    assert [f["pod"] for e, f in events if e == "migrate"] == [
        f"{kube_ns.namespace}/web-7d9f8c-x2b4k"
    ]
    still = kube_ns.core.read_namespaced_pod("web-7d9f8c-q5z7w", kube_ns.namespace)
    assert still.metadata.deletion_timestamp is None
