"""Nothing lost under faults, end to end: real kube-apiserver + kube-scheduler, moto over HTTP.

- Removal is a protocol: a node is tainted ``scaler.io/removing:NoSchedule``, its pods are
  read live from the API server, then it is terminated or untainted. A stale watch cache (a
  half-open watch) is played by freezing the snapshot the reconciler reads; the live read
  and everything else are the real parts.
- A restart mid-burst (a new Reconciler, empty Memory) launches nothing extra.
- A launch whose instance never becomes a Node is given up at the provision timeout and its
  pod placed on the next-best group.

The tests play the kubelet (Nodes tied to moto instances by providerID, pods reported
Running), as in test_lifecycle_live.py, whose helpers they share.
"""

from __future__ import annotations

import time
from typing import Any

import anyio
import pytest

from scaler.core.actions import GiveUpLaunch, RemoveNode, ScaleUp
from scaler.core.interruptions import SpotInterruption
from scaler.core.settings import Settings
from scaler.core.state import ANNOTATION_IDLE_SINCE, TAINT_REMOVING, ClusterView
from tests.e2e.test_lifecycle_live import (
    CLUSTER,
    Trail,
    controller,
    group,
    instances,
    nodes_for,
    pod_gone,
    read_node,
    running_pod,
    taint_keys,
    until,
)
from tests.fixtures.aws import Group, tagged_groups

pytestmark = [pytest.mark.kube, pytest.mark.anyio, pytest.mark.timeout(120)]

QUICK_IDLE = Settings().with_overrides({"idle_timeout_s": "1"})


@pytest.fixture
def account(aws: str) -> Any:
    """spot-m5 runs two instances; od-m5 and od-m5x start empty."""
    return tagged_groups(aws, CLUSTER, [
        Group("spot-m5", "m5.large", spot=True, max_size=20, desired=2),
        Group("od-m5", "m5.large", max_size=20),
        Group("od-m5x", "m5.xlarge", max_size=20),
    ])


@pytest.fixture
def empty_account(aws: str) -> Any:
    """Two on-demand groups, nothing running: m5.large ($0.096/h), then m5.xlarge."""
    return tagged_groups(aws, CLUSTER, [
        Group("od-m5", "m5.large", max_size=20),
        Group("od-m5x", "m5.xlarge", max_size=20),
    ])


class Stale:
    """The controller's cluster with its watch cache frozen at ``view`` (a half-open watch:
    no error, no news). Everything else, the live read included, is the real thing."""

    def __init__(self, real: Any, view: ClusterView) -> None:
        self._real, self._view = real, view

    async def snapshot(self) -> ClusterView:
        return self._view

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def terminated(trail: Trail) -> list[str]:
    return [d for _, w, d in trail.calls if w == "terminate"]


async def ticks_until(ctl: Any, kind: type, timeout_s: float = 10.0) -> list[Any]:
    with anyio.fail_after(timeout_s):
        while True:
            found = (await ctl.reconciler.tick()).of(kind)
            if found:
                return found
            await anyio.sleep(0.2)


def pod_node(kube_ns: Any, name: str) -> str | None:
    return kube_ns.core.read_namespaced_pod(name, kube_ns.namespace).spec.node_name


# ------------------------------------------------------------------------ removal protocol


async def test_a_pod_bound_after_the_decision_cancels_the_removal_and_the_node_is_untainted(
    kube_env, kube_ns, account, catalog, monkeypatch
):
    (landed, landed_instance), (idle, idle_instance) = nodes_for(kube_ns, account, "spot-m5")
    trail = Trail()
    async with controller(
        kube_env, catalog, settings=QUICK_IDLE, trail=trail, monkeypatch=monkeypatch
    ) as (ctl, events):
        frozen = await ctl.cluster.snapshot()
        assert len(frozen.nodes) == 2 and not frozen.bound
        ctl.reconciler.cluster = Stale(ctl.cluster, frozen)
        # The real scheduler binds a pod to one node; the frozen cache never hears of it.
        kube_ns.make_pod("late", requests={"cpu": "500m"},
                         node_selector={"kubernetes.io/hostname": landed})
        await until(lambda: pod_node(kube_ns, "late"), what="the scheduler binding the pod")
        removals = await ticks_until(ctl, RemoveNode)
    # Both nodes looked idle long enough to the stale cache...
    assert {r.node for r in removals} == {landed, idle}
    # ...but only the one the live read found empty was terminated.
    assert terminated(trail) == [idle_instance]
    assert {i for i, _ in instances(account, "spot-m5")} == {landed_instance}
    assert group(account, "spot-m5")["DesiredCapacity"] == 1
    # Both were tainted first; the node the pod landed on is untainted again.
    assert sorted(d for _, w, d in trail.calls if w == "taint") == sorted(
        [(landed, TAINT_REMOVING), (idle, TAINT_REMOVING)]
    )
    assert TAINT_REMOVING not in taint_keys(read_node(kube_ns, landed))
    assert pod_node(kube_ns, "late") == landed
    (cancelled,) = [f for e, f in events if e == "remove_cancelled"]
    assert cancelled["node"] == landed and f"{kube_ns.namespace}/late" in cancelled["reason"]


async def test_kube_scheduler_puts_no_new_pod_on_a_node_being_removed(
    kube_env, kube_ns, account, catalog, monkeypatch
):
    (target, target_instance), (_, other_instance) = nodes_for(kube_ns, account, "spot-m5")
    trail = Trail()
    seen: dict[str, Any] = {}
    async with controller(
        kube_env, catalog, settings=QUICK_IDLE, trail=trail, monkeypatch=monkeypatch
    ) as (ctl, _events):
        real_read = ctl.cluster.pods_on

        async def pods_on(node: str) -> Any:
            # Between the taint and the live read, a pod that fits only this node arrives.
            if node == target and "condition" not in seen:
                kube_ns.make_pod("newcomer", requests={"cpu": "500m"},
                                 node_selector={"kubernetes.io/hostname": target})
                seen["condition"] = await until(
                    lambda: kube_ns.pod_condition("newcomer", "PodScheduled"),
                    what="the scheduler's verdict on the newcomer",
                )
            return await real_read(node)

        monkeypatch.setattr(ctl.cluster, "pods_on", pods_on)
        await ticks_until(ctl, RemoveNode)
    condition = seen["condition"]
    assert condition.status == "False" and condition.reason == "Unschedulable"
    assert "scaler.io/removing" in condition.message
    assert pod_node(kube_ns, "newcomer") is None
    assert sorted(terminated(trail)) == sorted([target_instance, other_instance])


async def test_a_removal_taint_left_by_a_dead_process_is_undone_or_finished(
    kube_env, kube_ns, account, catalog
):
    (busy, busy_instance), (idle, idle_instance) = nodes_for(kube_ns, account, "spot-m5")
    # The old process tainted both and died; a pod that tolerates everything landed on one.
    for name in (busy, idle):
        kube_ns.core.patch_node(name, {
            "metadata": {"annotations": {ANNOTATION_IDLE_SINCE: f"{time.time() - 3600:.3f}"}},
            "spec": {"taints": [{"key": TAINT_REMOVING, "effect": "NoSchedule"}]},
        })
    kube_ns.make_pod("tolerant", requests={"cpu": "500m"}, node_name=busy,
                     tolerations=[{"operator": "Exists"}])
    kube_ns.set_pod_phase("tolerant", "Running")
    async with controller(kube_env, catalog) as (ctl, events):
        await until(lambda: len(ctl.cluster.snapshot.__self__._bound) == 1, what="the cache")
        await ctl.reconciler.tick()
    assert TAINT_REMOVING not in taint_keys(read_node(kube_ns, busy))
    assert {i for i, _ in instances(account, "spot-m5")} == {busy_instance}
    assert idle_instance not in {i for i, _ in instances(account, "spot-m5")}
    assert [f["node"] for e, f in events if e == "untaint"] == [busy]
    assert [f["node"] for e, f in events if e == "remove_node"] == [idle]


async def test_a_drain_evicts_a_pod_that_landed_after_it_began_before_terminating(
    kube_env, kube_ns, account, catalog, monkeypatch
):
    (node, instance), _ = nodes_for(kube_ns, account, "spot-m5")
    running_pod(kube_ns, "work", node)
    trail = Trail()
    async with controller(
        kube_env, catalog, trail=trail, monkeypatch=monkeypatch
    ) as (ctl, events):
        await until(lambda: len(ctl.cluster.snapshot.__self__._bound) == 1, what="the cache")
        real_evict = ctl.cluster.evict

        async def evict(pod: Any, **kw: Any) -> None:
            # While the drain evicts, a pod is bound straight to the node (by nodeName: the
            # node is cordoned and tainted, so only a bypass of the scheduler gets there).
            if not any(w == "evict" for _, w, _ in trail.calls):
                running_pod(kube_ns, "straggler", node)
            await real_evict(pod, **kw)

        monkeypatch.setattr(ctl.cluster, "evict", evict)  # the trail records the real call
        now = time.time()
        await ctl.reconciler.respond([SpotInterruption(
            instance_id=instance, action="terminate", deadline_s=now + 120.0,
            event_id="e2e", at_s=now,
        )])
    evicted = [d for _, w, d in trail.calls if w == "evict"]
    assert evicted == [f"{kube_ns.namespace}/work", f"{kube_ns.namespace}/straggler"]
    assert pod_gone(kube_ns, "straggler")
    names = [w for _, w, _ in trail.calls]
    assert names.index("terminate") > max(i for i, w in enumerate(names) if w == "evict")
    assert instance not in {i for i, _ in instances(account, "spot-m5")}
    assert [f["node"] for e, f in events if e == "remove_node"] == [node]


# -------------------------------------------------------------------------- restart safety


async def test_a_new_reconciler_taking_over_mid_burst_launches_nothing_extra(
    kube_env, kube_ns, empty_account, catalog
):
    # Six pods of 5 GiB: one per m5.large.
    for i in range(6):
        kube_ns.make_pod(f"burst-{i}", requests={"cpu": "500m", "memory": "5Gi"})
    async with controller(kube_env, catalog) as (ctl, _):
        await until(lambda: len(ctl.cluster.snapshot.__self__._pending) == 6, what="pending")
        (up,) = await ticks_until(ctl, ScaleUp)
    assert (up.pool, up.count) == ("od-m5", 6)
    # Three instances register, Ready but still starting up (the cloud controller's start-up
    # taint keeps kube-scheduler off them for now); three have no Node yet.
    for i, (instance_id, zone) in enumerate(instances(empty_account, "od-m5")[:3]):
        kube_ns.make_node(
            f"od-m5-{i}",
            capacity={"cpu": 2, "memory": "8Gi", "pods": 29},
            labels={"node.kubernetes.io/instance-type": "m5.large",
                    "topology.kubernetes.io/zone": zone},
            taints=[{"key": "node.cloudprovider.kubernetes.io/uninitialized", "value": "true",
                     "effect": "NoSchedule"}],
            provider_id=f"aws:///{zone}/{instance_id}",
        )
    # A new process: no memory of the launch. It sees 3 Ready empty nodes, 3 on their way.
    async with controller(kube_env, catalog) as (ctl, events):
        await until(lambda: len(ctl.cluster.snapshot.__self__._nodes) == 3, what="nodes")
        with anyio.fail_after(15):
            for _ in range(12):  # past the batch window (1 s) several times over
                decision = await ctl.reconciler.tick()
                assert decision.of(ScaleUp) == []
                await anyio.sleep(0.25)
    assert group(empty_account, "od-m5")["DesiredCapacity"] == 6
    assert group(empty_account, "od-m5x")["DesiredCapacity"] == 0
    assert not [e for e, _ in events if e == "scale_up"]


# ----------------------------------------------------------------------- provision timeout


async def test_an_instance_that_never_becomes_a_node_is_given_up_and_its_pod_moves_on(
    kube_env, kube_ns, empty_account, catalog
):
    kube_ns.make_pod("nb", requests={"cpu": "500m", "memory": "2Gi"})
    settings = Settings().with_overrides({"provision_timeout_s": "2"})
    async with controller(kube_env, catalog, settings=settings) as (ctl, events):
        await until(lambda: len(ctl.cluster.snapshot.__self__._pending) == 1, what="pending")
        (first,) = await ticks_until(ctl, ScaleUp)
        assert (first.pool, first.count) == ("od-m5", 1)
        (dud,) = instances(empty_account, "od-m5")
        # No Node ever registers for it. At the timeout the launch is given up...
        (gave_up,) = await ticks_until(ctl, GiveUpLaunch, timeout_s=10.0)
        # ...and at the next tick the pod goes to the next-best group.
        (second,) = await ticks_until(ctl, ScaleUp)
    assert (gave_up.pool, gave_up.count) == ("od-m5", 1)
    assert "never registered" in gave_up.reason
    assert (second.pool, second.count) == ("od-m5x", 1)
    assert instances(empty_account, "od-m5") == []
    assert dud[0] not in {i for i, _ in instances(empty_account, "od-m5x")}
    assert group(empty_account, "od-m5")["DesiredCapacity"] == 0
    assert group(empty_account, "od-m5x")["DesiredCapacity"] == 1
    ((_, given),) = [(e, f) for e, f in events if e == "launch_given_up"]
    assert given["pool"] == "od-m5" and given["taken_back"] == 1
