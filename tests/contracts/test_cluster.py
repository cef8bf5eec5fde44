"""The ClusterSource and Actuator ports' contract, held by the simulated cluster and by
KubeCluster + KubeActuator on the real API server alike: what the reconciler reads of nodes
and pods, and what its writes to a node look like in the next snapshot."""

from __future__ import annotations

import math
from typing import Any

import pytest

from scaler.core.model import LABEL_POOL, NO_EXECUTE, NO_SCHEDULE, PodSpec, Taint
from scaler.core.state import ClusterView, Node
from scaler.ports import NotFound

pytestmark = pytest.mark.anyio

FITS = {"cpu": "500m", "memory": "1Gi"}
FITS_NOWHERE = {"cpu": "64", "memory": "1Gi"}


def node_in(view: ClusterView, name: str) -> Node | None:
    return next((n for n in view.nodes if n.name == name), None)


async def node_where(rig: Any, name: str, check: Any) -> Node:
    """The node once ``check(node)`` holds in a snapshot (the watch may lag the write)."""
    return await rig.until(lambda v: (n := node_in(v, name)) is not None and check(n) and n)


def bound_to(view: ClusterView, key: str) -> str | None:
    return next((b.node for b in view.bound if b.pod.key == key), None)


async def bound_pod(rig: Any, name: str) -> tuple[str, str]:
    """A Ready node and a pod bound to it; returns (node, pod key)."""
    node = await rig.add_node()
    key = await rig.add_pod(name, **FITS)
    await rig.until(lambda v: bound_to(v, key) == node)
    return node, key


async def test_a_new_node_is_in_the_next_snapshot_ready_with_its_pool(cluster_rig):
    name = await cluster_rig.add_node("web")
    node = await node_where(cluster_rig, name, lambda n: n.ready)
    assert node.pool == "web"
    assert dict(node.labels)[LABEL_POOL] == "web"
    assert node.schedulable_ready
    assert node.allocatable.cpu_milli > 0 and node.allocatable.memory_mib > 0


async def test_a_pod_that_fits_is_bound_and_listed_by_pods_on_its_node(cluster_rig):
    node, key = await bound_pod(cluster_rig, "fits")
    on_node = await cluster_rig.cluster.pods_on(node)
    assert [b.pod.key for b in on_node] == [key]
    assert on_node[0].node == node
    assert on_node[0].pod.requests.cpu_milli == 500


async def test_a_pod_that_fits_nowhere_is_pending(cluster_rig):
    await cluster_rig.add_node()
    key = await cluster_rig.add_pod("too-big", **FITS_NOWHERE)
    pending = await cluster_rig.until(
        lambda v: next((p for p in v.pending if p.pod.key == key), None)
    )
    assert pending.pod.requests.cpu_milli == 64_000
    assert bound_to(await cluster_rig.cluster.snapshot(), key) is None


async def test_pods_on_leaves_out_finished_pods(cluster_rig):
    node, key = await bound_pod(cluster_rig, "done-soon")
    await cluster_rig.finish_pod(key)
    await cluster_rig.until(lambda v: bound_to(v, key) is None)
    assert list(await cluster_rig.cluster.pods_on(node)) == []


async def test_pods_on_an_unknown_node_is_empty(cluster_rig):
    assert list(await cluster_rig.cluster.pods_on("no-such-node")) == []


async def test_staleness_is_a_small_age_while_the_source_is_current(cluster_rig):
    await cluster_rig.add_node()
    staleness = cluster_rig.cluster.staleness_s()
    assert math.isfinite(staleness) and 0 <= staleness < 10


async def test_cordon_and_uncordon_show_in_the_next_snapshot(cluster_rig):
    name = await cluster_rig.add_node()
    await cluster_rig.actuator.cordon(name)
    node = await node_where(cluster_rig, name, lambda n: n.unschedulable)
    assert not node.schedulable_ready
    await cluster_rig.actuator.uncordon(name)
    assert (await node_where(cluster_rig, name, lambda n: not n.unschedulable)).schedulable_ready


async def test_taint_adds_one_taint_per_key_and_effect_and_untaint_removes_it(cluster_rig):
    name = await cluster_rig.add_node()
    actuator = cluster_rig.actuator
    await actuator.taint(name, Taint("scaler.io/removing", "1", NO_SCHEDULE))
    await actuator.taint(name, Taint("scaler.io/removing", "2", NO_SCHEDULE))  # replaces
    await actuator.taint(name, Taint("scaler.io/removing", "", NO_EXECUTE))  # another effect
    ours = lambda n: sorted(  # noqa: E731
        (t.value, t.effect) for t in n.taints if t.key == "scaler.io/removing"
    )
    both = await node_where(cluster_rig, name, lambda n: len(ours(n)) == 2)
    assert ours(both) == [("", NO_EXECUTE), ("2", NO_SCHEDULE)]
    await actuator.untaint(name, "scaler.io/removing", NO_EXECUTE)
    one = await node_where(cluster_rig, name, lambda n: len(ours(n)) == 1)
    assert ours(one) == [("2", NO_SCHEDULE)]
    await actuator.untaint(name, "scaler.io/removing")
    await node_where(cluster_rig, name, lambda n: not ours(n))


async def test_annotate_sets_and_none_removes_an_annotation(cluster_rig):
    name = await cluster_rig.add_node()
    await cluster_rig.actuator.annotate_node(name, "scaler.io/idle-since", "1700000000")
    await node_where(
        cluster_rig, name, lambda n: n.annotation("scaler.io/idle-since") == "1700000000"
    )
    await cluster_rig.actuator.annotate_node(name, "scaler.io/idle-since", None)
    await node_where(cluster_rig, name, lambda n: n.annotation("scaler.io/idle-since") is None)


async def test_label_node_sets_a_label_seen_in_the_next_snapshot(cluster_rig):
    name = await cluster_rig.add_node()
    await cluster_rig.actuator.label_node(name, "scaler.io/contract", "yes")
    await node_where(cluster_rig, name, lambda n: dict(n.labels).get("scaler.io/contract") == "yes")


async def test_evict_takes_the_pod_off_its_cordoned_node(cluster_rig):
    # Cordoned first, as a drain does: a controller's replacement pod (the simulator's
    # model of an evicted pod) must not land on the same node again.
    node, key = await bound_pod(cluster_rig, "evicted")
    await cluster_rig.actuator.cordon(node)
    [bound] = await cluster_rig.cluster.pods_on(node)
    await cluster_rig.actuator.evict(bound.pod)
    await cluster_rig.until(lambda v: bound_to(v, key) != node)
    assert list(await cluster_rig.cluster.pods_on(node)) == []


@pytest.mark.parametrize("write", ["cordon", "uncordon", "taint", "untaint", "annotate", "label"])
async def test_a_write_to_an_unknown_node_is_not_found(cluster_rig, write: str):
    actuator, ghost = cluster_rig.actuator, "no-such-node"
    calls = {
        "cordon": lambda: actuator.cordon(ghost),
        "uncordon": lambda: actuator.uncordon(ghost),
        "taint": lambda: actuator.taint(ghost, Taint("k", "v", NO_SCHEDULE)),
        "untaint": lambda: actuator.untaint(ghost, "k"),
        "annotate": lambda: actuator.annotate_node(ghost, "k", "v"),
        "label": lambda: actuator.label_node(ghost, "k", "v"),
    }
    with pytest.raises(NotFound):
        await calls[write]()


async def test_evicting_a_pod_that_does_not_exist_is_not_found(cluster_rig):
    ghost = PodSpec(name="ghost", namespace=cluster_rig.namespace)
    with pytest.raises(NotFound):
        await cluster_rig.actuator.evict(ghost)
