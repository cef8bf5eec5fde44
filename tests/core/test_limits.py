"""Global limits in decide(): nodes in scaler's pools, their USD/hour, nodes per decision.

Pools from the bundled catalog: small (m5.large, $0.096/h) and big (m5.4xlarge, $0.768/h),
no max size, so only the global limits cut. Times are plain seconds.
"""

from __future__ import annotations

import numpy as np
import pytest

from scaler.core.actions import NotifyUnplaceable, ScaleUp
from scaler.core.catalog import Catalog
from scaler.core.decide import decide
from scaler.core.memory import Memory
from scaler.core.model import PodSpec, PoolSpec, Resources
from scaler.core.offerings import build_offerings, pool_table
from scaler.core.settings import Settings
from scaler.core.state import BoundPod, ClusterView, Node, PendingPod

GIB = 1024.0


def pools(small: int = 0, big: int = 0) -> list[PoolSpec]:
    return [
        PoolSpec("small", ("m5.large",), current_size=small),
        PoolSpec("big", ("m5.4xlarge",), current_size=big),
    ]


def pod(name: str, mem_gib: float = 2.0) -> PodSpec:
    return PodSpec(name, requests=Resources(cpu_milli=500, memory_mib=mem_gib * GIB, pods=1))


def run(pending: list[PendingPod], ps: list[PoolSpec], catalog: Catalog, *,
        memory: Memory | None = None, now: float = 200.0, launching: int = 0, **limits: str):
    offerings, problems = build_offerings(ps, catalog)
    assert not problems
    settings = Settings().with_overrides(limits)
    # The pools' nodes are Ready and busy, but the last ``launching`` of small's: nothing
    # else is on its way, nothing idle.
    nodes = tuple(Node(f"{p.name}-{i}", p.name, p.instance_types[0], "on-demand")
                  for p in ps
                  for i in range(p.current_size - (launching if p.name == "small" else 0)))
    bound = tuple(BoundPod(pod(f"run-{n.name}"), n.name) for n in nodes)
    view = ClusterView(now, nodes=nodes, bound=bound, pending=tuple(pending))
    return decide(view, pool_table(ps, offerings), memory or Memory(), settings, now=now,
                  rng=np.random.default_rng(0))


def held(decision) -> NotifyUnplaceable:
    (n,) = [a for a in decision.of(NotifyUnplaceable) if a.limit is not None]
    return n


def test_twenty_thousand_pending_pods_add_at_most_a_thousand_nodes_a_decision(catalog):
    pending = [PendingPod(pod(f"w{i}"), 100.0) for i in range(20_000)]
    memory = Memory()
    first = run(pending, pools(), catalog, memory=memory)
    (up,) = first.of(ScaleUp)
    assert up.count == 1000 and len(up.pods) == 1000
    h = held(first)
    assert h.limit == "max_new_nodes_per_decision" and len(h.pods) == 19_000
    assert "limit max_new_nodes_per_decision=1000 reached" in h.reason
    assert first.wake_at_s == pytest.approx(201.0)
    # The next decision, a second later, places the next thousand and tells nobody again.
    memory.launched(up, now=200.0, timeout_s=900.0)
    memory.batch_floor_s = 200.0
    second = run(pending, pools(small=1000), catalog, memory=memory, now=201.0, launching=1000)
    (up2,) = second.of(ScaleUp)
    assert up2.count == 1000 and not set(up2.pods) & set(up.pods)
    assert held(second).pods == ()


def test_max_nodes_total_counts_the_nodes_already_in_scalers_pools(catalog):
    pending = [PendingPod(pod(f"p{i}"), 100.0) for i in range(5)]
    d = run(pending, pools(small=5, big=3), catalog, max_nodes_total="10")
    (up,) = d.of(ScaleUp)
    assert up.pool == "small" and up.count == 2 and up.pods == ("default/p0", "default/p1")
    h = held(d)
    assert h.limit == "max_nodes_total"
    assert [p.name for p in h.pods] == ["p2", "p3", "p4"]
    assert h.reason == (
        "limit max_nodes_total=10 reached: 8 nodes in scaler's pools, 2 more in this decision"
    )
    assert d.wake_at_s is None, "nothing changes by waiting: the next node to leave wakes it"


def test_at_the_node_limit_nothing_is_launched_and_every_new_pod_is_told(catalog):
    pending = [PendingPod(pod(f"p{i}"), 100.0) for i in range(3)]
    d = run(pending, pools(small=10), catalog, max_nodes_total="10")
    assert d.of(ScaleUp) == []
    assert len(held(d).pods) == 3


def test_max_usd_per_hour_counts_what_scalers_nodes_cost_now(catalog):
    # One big node ($0.768/h) runs; $1/h leaves room for two small ones ($0.096/h each).
    pending = [PendingPod(pod(f"p{i}"), 100.0) for i in range(4)]
    d = run(pending, pools(big=1), catalog, max_usd_per_hour="1.0")
    (up,) = d.of(ScaleUp)
    assert up.pool == "small" and up.count == 2
    h = held(d)
    assert h.limit == "max_usd_per_hour" and len(h.pods) == 2
    assert h.reason.startswith("limit max_usd_per_hour=1 reached: $0.7680/h in scaler's pools")


def test_the_cut_is_in_placement_order_and_later_smaller_pods_do_not_jump_it(catalog):
    # Three 30 GiB pods (one big node each) arrive first, then small ones. $1/h buys one
    # big node; the small pods behind the cut wait too, though $0.232/h would buy two.
    pending = [PendingPod(pod(f"big{i}", 30.0), 100.0) for i in range(3)]
    pending += [PendingPod(pod(f"small{i}"), 100.0) for i in range(2)]
    decisions = [run(pending, pools(), catalog, max_usd_per_hour="1.0") for _ in range(2)]
    assert decisions[0] == decisions[1]
    (up,) = decisions[0].of(ScaleUp)
    assert (up.pool, up.count, up.pods) == ("big", 1, ("default/big0",))
    assert [p.name for p in held(decisions[0]).pods] == ["big1", "big2", "small0", "small1"]


def test_no_limits_set_means_the_whole_placement(catalog):
    pending = [PendingPod(pod(f"p{i}"), 100.0) for i in range(50)]
    d = run(pending, pools(small=40), catalog, max_new_nodes_per_decision="0")
    assert [u.count for u in d.of(ScaleUp)] == [50]
    assert not [a for a in d.of(NotifyUnplaceable) if a.limit]
