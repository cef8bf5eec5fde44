"""A zone-spread Deployment and an overprovisioning placeholder, against the real
kube-apiserver + kube-scheduler and moto (see support.py for the flow).

Groups: ``cpu-1a``, ``cpu-1b``, ``cpu-1c``, one m5.large ASG per zone (1930m CPU
allocatable on the EKS AMI, so two of these 1-CPU pods never share a node)."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from scaler.core.actions import ScaleUp
from tests.conformance.support import (
    ZonalGroup,
    controller,
    expect_bound,
    instances,
    pending_seen,
    register_node,
    wait_unschedulable,
    zonal_groups,
)
from tests.fixtures.controller import tick_until_scale_up
from tests.fixtures.kube import KubeScope, kube_request, wait_for

pytestmark = [pytest.mark.kube, pytest.mark.anyio]

ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")
CPU = {f"cpu-{z[-2:]}": ZonalGroup(f"cpu-{z[-2:]}", "m5.large", z) for z in ZONES}
PRIORITY_CLASSES = "/apis/scheduling.k8s.io/v1/priorityclasses"


@pytest.fixture
def groups(aws: str) -> Any:
    return zonal_groups(list(CPU.values()))


def create_pod(kube: KubeScope, body: dict[str, Any]) -> None:
    kube_request(kube.api, "POST", f"/api/v1/namespaces/{kube.namespace}/pods", body)


def web_replica(name: str) -> dict[str, Any]:
    """A replica of a Deployment with the zone spread the Kubernetes docs show for high
    availability: maxSkew 1 over ``topology.kubernetes.io/zone``, DoNotSchedule."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "web", "pod-template-hash": "5d78c9b9f4"}},
        "spec": {
            "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "web", "image": "nginx:1.25",
                            "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}],
            "topologySpreadConstraints": [{
                "maxSkew": 1,
                "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": "DoNotSchedule",
                "labelSelector": {"matchLabels": {"app": "web"}},
            }],
        },
    }  # fmt: skip


async def test_a_zone_spread_deployment_gets_one_node_per_zone_and_every_replica_binds(
    kube_env, kube_ns, groups, catalog
):
    names = [f"web-5d78c9b9f4-{s}" for s in ("abcde", "fghij", "klmno")]
    for name in names:
        create_pod(kube_ns, web_replica(name))
    wait_unschedulable(kube_ns, *names)
    async with controller(kube_env, catalog) as ctl:
        await pending_seen(ctl, {f"{kube_ns.namespace}/{n}" for n in names})
        ups = await tick_until_scale_up(ctl)
    assert sorted((u.pool, u.count) for u in ups) == [("cpu-1a", 1), ("cpu-1b", 1), ("cpu-1c", 1)]
    bought = []
    for up in ups:
        ((instance, zone),) = instances(groups, up.pool)
        bought.append(register_node(kube_ns, catalog, CPU[up.pool], instance, zone))
    # Replicas are interchangeable: each must bind to one of the nodes scaler bought for them.
    zones = {
        kube_ns.core.read_node(expect_bound(kube_ns, n, bought)).metadata.labels[
            "topology.kubernetes.io/zone"
        ]
        for n in names
    }
    assert zones == set(ZONES)


def placeholder(name: str) -> dict[str, Any]:
    """A pod of the cluster-overprovisioner chart's Deployment: a pause container that
    reserves a node's worth of room at a negative priority any real pod preempts."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/name": "cluster-overprovisioner"}},
        "spec": {
            "priorityClassName": "overprovisioning",
            "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "reserve-resources", "image": "registry.k8s.io/pause:3.9",
                            "resources": {"requests": {"cpu": "1", "memory": "4Gi"}}}],
        },
    }  # fmt: skip


@pytest.fixture
def priority_classes(kube_ns: KubeScope) -> Any:
    """The placeholder's class at -1 (at or above cluster-autoscaler's -10 cutoff, so it
    scales the cluster up) and an expendable one at -100 (below it)."""
    created = []
    for name, value in (("overprovisioning", -1), (f"expendable-{kube_ns.namespace}", -100)):
        try:
            kube_request(kube_ns.api, "POST", PRIORITY_CLASSES, {
                "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                "metadata": {"name": name}, "value": value, "globalDefault": False,
            })  # fmt: skip
            created.append(name)
        except Exception as e:  # already there from an earlier test of the session
            if "AlreadyExists" not in str(e):
                raise
    yield
    for name in created:
        kube_request(kube_ns.api, "DELETE", f"{PRIORITY_CLASSES}/{name}")


async def test_a_placeholder_holds_a_warm_node_a_real_pod_preempts_it_and_scaler_replaces_it(
    kube_env, kube_ns, groups, catalog, priority_classes
):
    # An expendable pod (-100) alone never scales anything up.
    filler = placeholder("filler")
    filler["spec"]["priorityClassName"] = f"expendable-{kube_ns.namespace}"
    create_pod(kube_ns, filler)
    create_pod(kube_ns, placeholder("overprovisioner-1"))
    wait_unschedulable(kube_ns, "filler", "overprovisioner-1")
    key = f"{kube_ns.namespace}/overprovisioner-1"
    async with controller(kube_env, catalog) as ctl:
        await pending_seen(ctl, {key, f"{kube_ns.namespace}/filler"})
        (up,) = await tick_until_scale_up(ctl)
        assert up.pods == (key,) and up.count == 1
        ((instance, zone),) = instances(groups, up.pool)
        warm = register_node(kube_ns, catalog, CPU[up.pool], instance, zone)
        expect_bound(kube_ns, "overprovisioner-1", warm)

        # A real pod (priority 0) that needs the room: kube-scheduler preempts the
        # placeholder and binds the pod to the warm node, with no wait for a new node.
        create_pod(kube_ns, {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "notebook"},
            "spec": {"terminationGracePeriodSeconds": 0, "containers": [
                {"name": "nb", "image": "jupyter/base-notebook",
                 "resources": {"requests": {"cpu": "1", "memory": "4Gi"}}}]},
        })  # fmt: skip
        expect_bound(kube_ns, "notebook", warm)

        def placeholder_gone() -> bool:
            pods = kube_ns.core.list_namespaced_pod(kube_ns.namespace).items
            return "overprovisioner-1" not in {p.metadata.name for p in pods}

        wait_for(placeholder_gone, what="the placeholder to be preempted")
        # Its ReplicaSet makes a new one, which is pending: scaler buys the next warm node.
        create_pod(kube_ns, placeholder("overprovisioner-2"))
        wait_unschedulable(kube_ns, "overprovisioner-2")
        await pending_seen(ctl, {f"{kube_ns.namespace}/overprovisioner-2"})
        with anyio.fail_after(15):
            while True:
                decision = await ctl.reconciler.tick()
                ups = [a for a in decision.actions if isinstance(a, ScaleUp)]
                if ups:
                    break
                await anyio.sleep(0.1)
        (again,) = ups
        assert again.pods == (f"{kube_ns.namespace}/overprovisioner-2",)
        # Balanced: the next node goes to another zone's group, the first one has a node.
        assert again.pool != up.pool
    ((instance, zone),) = instances(groups, again.pool)
    replacement = register_node(kube_ns, catalog, CPU[again.pool], instance, zone)
    expect_bound(kube_ns, "overprovisioner-2", replacement)
    assert kube_ns.core.read_namespaced_pod("filler", kube_ns.namespace).spec.node_name is None
