"""Lifecycle decisions: what each interruption notice does, rebalance windows, the bill.

Pools from the bundled catalog: spot-a (m5.large Spot), od-a (m5.large on-demand), big
(m5.4xlarge on-demand, $0.768/h).
"""

from __future__ import annotations

import numpy as np
import pytest

from scaler.core import classkeys
from scaler.core.actions import Cordon, Drain, Evict, Forget, ScaleUp, Uncordon
from scaler.core.catalog import Catalog
from scaler.core.interruptions import (
    RebalanceRecommendation,
    ScheduledChange,
    SpotInterruption,
    StateChange,
    TerminateLifecycleAction,
)
from scaler.core.lifecycle import (
    INTERRUPTION_TAINT_KEY,
    REBALANCE_TAINT_KEY,
    migrations,
    misplaced,
    pod_costs,
    rebalance_expired,
    respond,
    waste,
)
from scaler.core.memory import Memory
from scaler.core.model import PodSpec, PoolSpec, Resources
from scaler.core.offerings import build_offerings
from scaler.core.settings import preset
from scaler.core.state import (
    ANNOTATION_PINNED_POOLS,
    ANNOTATION_RESTARTABLE,
    BoundPod,
    ClusterView,
    Node,
)

POOLS = [
    PoolSpec("spot-a", ("m5.large",), capacity_type="spot", max_size=10, current_size=1),
    PoolSpec("od-a", ("m5.large",), max_size=10),
    PoolSpec("big", ("m5.4xlarge",), max_size=10, current_size=1),
]
I1, I2 = "i-0123456789abcdef0", "i-0fedcba9876543210"


@pytest.fixture(scope="module")
def offerings():
    off, problems = build_offerings(POOLS, Catalog.load())
    assert not problems
    return off


def pod(name: str, mem: float = 2048, **kw) -> PodSpec:
    return PodSpec(name, requests=Resources(cpu_milli=500, memory_mib=mem, pods=1), **kw)


def view(*extra: BoundPod, now: float = 1000.0) -> ClusterView:
    nodes = (
        Node("spot-1", "spot-a", "m5.large", "spot", instance_id=I1),
        Node("big-1", "big", "m5.4xlarge", "on-demand", instance_id=I2),
    )
    bound = (BoundPod(pod("nb"), "spot-1"), BoundPod(pod("ds"), "spot-1", daemonset=True), *extra)
    return ClusterView(now, nodes=nodes, bound=bound)


def answer(notice, offerings, memory=None, v=None):
    return respond(notice, v or view(), POOLS, offerings, memory or Memory(), preset("scaler"),
                   now=1000.0, rng=np.random.default_rng(0))


def young_view() -> ClusterView:
    """As :func:`view`, the workload pod started 10 s ago: not worth waiting 3 minutes for."""
    v = view()
    return ClusterView(v.now_s, nodes=v.nodes,
                       bound=(BoundPod(pod("nb"), "spot-1", started_s=990.0), *v.bound[1:]))


def test_spot_interruption_cordons_taints_drains_before_the_deadline_and_replaces_elsewhere(offerings):
    notice = SpotInterruption(I1, "terminate", deadline_s=1120.0, event_id="e1", at_s=1000.0)
    actions = answer(notice, offerings, v=young_view())
    (cordon,) = [a for a in actions if isinstance(a, Cordon)]
    assert cordon.node == "spot-1" and cordon.taint.key == INTERRUPTION_TAINT_KEY
    (drain,) = [a for a in actions if isinstance(a, Drain)]
    # Only the workload pod is evicted (not the DaemonSet's), 15 s before the 2-minute mark.
    assert [p.name for p in drain.pods] == ["nb"] and drain.deadline_s == pytest.approx(1105.0)
    assert drain.terminate
    (up,) = [a for a in actions if isinstance(a, ScaleUp)]
    # The interrupted pool is skipped: the next-best is the same type on-demand.
    assert up.pool == "od-a" and up.pods == ("default/nb",) and "replacing spot-1" in up.reason


def test_scheduled_maintenance_is_an_interruption_at_its_start_time(offerings):
    notice = ScheduledChange((I1,), "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED", start_s=5000.0,
                             event_id="h1", at_s=1000.0)
    (drain,) = [a for a in answer(notice, offerings) if isinstance(a, Drain)]
    assert drain.deadline_s == pytest.approx(4985.0)


def test_rebalance_recommendation_cordons_and_preprovisions_but_does_not_drain(offerings):
    actions = answer(RebalanceRecommendation(I1, at_s=1000.0, event_id="r1"), offerings)
    assert [type(a) for a in actions] == [Cordon, ScaleUp]
    assert actions[0].taint.key == REBALANCE_TAINT_KEY


def test_rebalance_on_a_node_already_interrupted_does_nothing(offerings):
    memory = Memory(interrupted={"spot-1": 1120.0})
    assert answer(RebalanceRecommendation(I1, at_s=1000.0, event_id="r1"), offerings, memory) == []


def test_rebalance_cordon_is_lifted_after_the_window_unless_an_interruption_came():
    memory = Memory(rebalance_until_s={"spot-1": 2800.0})
    actions, wakes = rebalance_expired(view(), memory, now=2000.0)
    assert actions == [] and wakes == [2800.0]
    actions, _ = rebalance_expired(view(), memory, now=2800.0)
    assert actions == [Uncordon("spot-1", actions[0].reason, taint_key=REBALANCE_TAINT_KEY)]
    memory.interrupted["spot-1"] = 2900.0
    assert rebalance_expired(view(), memory, now=2800.0)[0] == []


def test_terminate_lifecycle_action_drains_then_completes_the_hook(offerings):
    notice = TerminateLifecycleAction(I1, "asg-a", "drain-hook", "tok", at_s=1000.0, event_id="l1")
    actions = answer(notice, offerings)
    (drain,) = [a for a in actions if isinstance(a, Drain)]
    assert drain.hook is not None and drain.hook.token == "tok" and drain.hook.asg == "asg-a"
    assert not drain.terminate, "the ASG is terminating it already"
    assert not [a for a in actions if isinstance(a, ScaleUp)]


def test_lifecycle_action_for_an_instance_without_a_node_completes_at_once(offerings):
    notice = TerminateLifecycleAction("i-00000000000000001", "asg-a", "h", "t", at_s=1000.0, event_id="l2")
    (drain,) = answer(notice, offerings)
    assert drain.pods == () and drain.hook is not None


def test_state_change_to_terminated_forgets_the_node_and_running_is_ignored(offerings):
    assert answer(StateChange(I1, "terminated", at_s=1000.0, event_id="s1"), offerings) == [
        Forget("spot-1", "instance terminated")
    ]
    assert answer(StateChange(I1, "running", at_s=1000.0, event_id="s2"), offerings) == []


def test_notice_for_an_unknown_instance_is_ignored(offerings):
    notice = SpotInterruption("i-00000000000000009", "terminate", 1120.0, "e", 1000.0)
    assert answer(notice, offerings) == []


def test_waste_splits_idle_booting_and_oversized_by_pool(offerings):
    small_on_big = BoundPod(pod("tiny", mem=1024), "big-1")
    v = ClusterView(
        1000.0,
        nodes=(
            Node("spot-1", "spot-a", "m5.large", "spot", instance_id=I1),
            Node("big-1", "big", "m5.4xlarge", "on-demand", instance_id=I2),
            Node("od-1", "od-a", "m5.large", "on-demand"),
            Node("od-2", "od-a", "m5.large", "on-demand", ready=False),
        ),
        bound=(small_on_big,),
    )
    costs = pod_costs(v, offerings, preset("scaler"))
    (c,) = costs
    spot_price = float(offerings.price[offerings.index("spot-a")])
    # The cheapest fit for a 1 GiB pod among these pools is the Spot m5.large.
    assert c.cheapest_fit_usd_per_hour == pytest.approx(spot_price)
    assert c.waste_usd_per_hour == pytest.approx(0.768 - spot_price)
    w = waste(v, offerings, costs)
    assert w.by_reason_pool[("idle", "spot-a")] == pytest.approx(spot_price)
    assert w.by_reason_pool[("idle", "od-a")] == pytest.approx(0.096)
    assert w.by_reason_pool[("booting", "od-a")] == pytest.approx(0.096)
    assert w.by_reason_pool[("oversized", "big")] == pytest.approx(0.768 - spot_price)
    assert w.node_cost_by_pool[("od-a", "on-demand")] == pytest.approx(0.192)


def test_each_running_pod_is_priced_by_its_own_class_and_keeps_its_bind_time(offerings):
    """Two classes interleaved over two nodes: each pod gets its class's cheapest fit, its
    node's share and its own bind time; and pricing every running pod adds to the pending
    pods' keys table (scaler/core/classkeys.py) no more than one pod per class."""
    def on(node: str, name: str, mem: float, started: float) -> BoundPod:
        return BoundPod(pod(name, mem=mem), node, started_s=started)

    bound = (
        on("big-1", "s1", 1024, 10.0),
        on("big-1", "huge", 30 * 1024, 20.0),  # fits only the m5.4xlarge
        on("big-1", "s2", 1024, 30.0),
        on("spot-1", "s3", 1024, 40.0),
    )
    v = ClusterView(1000.0, nodes=view().nodes, bound=bound)
    kept = set(classkeys._by_pod)
    costs = pod_costs(v, offerings, preset("scaler"))
    assert len(set(classkeys._by_pod) - kept) <= 2
    spot, big = (float(offerings.price[offerings.index(p)]) for p in ("spot-a", "big"))
    got = {c.pod.name: (c.node, c.share_usd_per_hour, c.cheapest_fit_usd_per_hour, c.started_s)
           for c in costs}
    assert got == {
        "s1": ("big-1", pytest.approx(big / 3), pytest.approx(spot), 10.0),
        "huge": ("big-1", pytest.approx(big / 3), pytest.approx(big), 20.0),
        "s2": ("big-1", pytest.approx(big / 3), pytest.approx(spot), 30.0),
        "s3": ("spot-1", pytest.approx(spot), pytest.approx(spot), 40.0),
    }


def test_misplaced_pods_and_bounded_migration_of_restartable_ones(offerings):
    restartable = ((ANNOTATION_RESTARTABLE, "true"),)
    bound = (
        BoundPod(pod("a", annotations=restartable), "big-1"),
        BoundPod(pod("b"), "big-1"),
        # The namespace is pinned at admission: a's replacement will be pinned too.
        BoundPod(pod("pinned", annotations=((ANNOTATION_PINNED_POOLS, "spot-a"),)), "spot-1"),
    )
    v = view(*bound)
    costs = pod_costs(v, offerings, preset("scaler"))
    bad = misplaced(costs, preset("scaler"))
    # Two pods share the $0.768 node: $0.384 each, still > 2x a $0.096 fit.
    assert {c.pod.name for c in bad} == {"a", "b"}
    moves = migrations(bad, Memory(), preset("scaler"), costs=costs)
    assert [m.pod.name for m in moves if isinstance(m, Evict)] == ["a"]
    spent = Memory()
    spent.migrations_s.extend([990.0, 995.0])
    assert migrations(bad, spent, preset("scaler"), costs=costs) == []
