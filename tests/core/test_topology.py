"""Zone spread and pod (anti-)affinity by zone pin pending pods to the zones kube-scheduler
will need, counting pods already bound; hostname anti-affinity means one pod per node;
preferred node affinity breaks ties among equal-cost pools."""

from __future__ import annotations

import numpy as np

from scaler.core.actions import NotifyUnplaceable, ScaleUp
from scaler.core.decide import decide
from scaler.core.memory import Memory
from scaler.core.model import (
    PodSpec,
    PodTerm,
    PoolSpec,
    Requirement,
    Resources,
    SelectorTerm,
    ZoneSpread,
)
from scaler.core.offerings import build_offerings, pool_table
from scaler.core.placement import place
from scaler.core.settings import preset
from scaler.core.state import BoundPod, ClusterView, Node, PendingPod
from scaler.core.topology import pin_zones

ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")
WEB = (Requirement("app", "In", ("web",)),)


def zonal(itype: str = "m5.large", **kw) -> list[PoolSpec]:
    return [PoolSpec(f"cpu-{z[-2:]}", (itype,), zones=(z,), max_size=50, **kw) for z in ZONES]


def web(name: str, **kw) -> PodSpec:
    return PodSpec(name, Resources(cpu_milli=1000, memory_mib=1024, pods=1),
                   labels=(("app", "web"),), **kw)


def node(name: str, zone: str) -> Node:
    return Node(name, f"cpu-{zone[-2:]}", "m5.large", "on-demand", zone=zone,
                labels=(("topology.kubernetes.io/zone", zone),))


def scale_ups(view: ClusterView, pools: list[PoolSpec], catalog) -> dict[str, int]:
    offerings, _ = build_offerings(pools, catalog)
    d = decide(view, pool_table(pools, offerings), Memory(), preset("scaler"), now=view.now_s,
               rng=np.random.default_rng(0))
    return {u.pool: u.count for u in d.of(ScaleUp)}


def test_a_zone_spread_counts_the_replicas_already_running(catalog):
    # Two replicas run in 1a; three more must go to 1b and 1c, never 1a (skew 3 > 1).
    spread = (ZoneSpread(1, WEB),)
    view = ClusterView(
        100.0,
        nodes=(node("n1", "us-east-1a"), node("n2", "us-east-1a")),
        bound=(BoundPod(web("w1"), "n1"), BoundPod(web("w2"), "n2")),
        pending=tuple(PendingPod(web(f"w{i}", zone_spread=spread), 10.0) for i in (3, 4, 5)),
    )
    assert scale_ups(view, zonal(), catalog) == {"cpu-1b": 2, "cpu-1c": 1}


def test_a_spread_zone_no_pool_can_serve_is_reported_not_bought_elsewhere(catalog):
    # Nodes exist in 1c (so 1c counts, with 0 replicas) but no group can launch there.
    spread = (ZoneSpread(1, WEB),)
    pools = zonal()[:2]
    view = ClusterView(
        100.0,
        nodes=(node("n1", "us-east-1a"), node("n2", "us-east-1b"), node("n3", "us-east-1c")),
        bound=(BoundPod(web("w1"), "n1"), BoundPod(web("w2"), "n2")),
        pending=(PendingPod(web("w3", zone_spread=spread), 10.0),),
    )
    offerings, _ = build_offerings(pools, catalog)
    d = decide(view, pool_table(pools, offerings), Memory(), preset("scaler"), now=100.0,
               rng=np.random.default_rng(0))
    assert d.of(ScaleUp) == []
    (note,) = d.of(NotifyUnplaceable)
    assert "zone us-east-1c" in note.reason


def test_zone_anti_affinity_keeps_replicas_in_distinct_zones_and_away_from_matches(catalog):
    anti = (PodTerm(WEB),)
    pods = [web(f"w{i}", zone_anti_affinity=anti) for i in range(3)]
    offerings, _ = build_offerings(zonal(), catalog)
    bound = [(web("old"), "us-east-1b")]
    pinned = pin_zones(pods, offerings, bound=bound)
    assert [p.zone for p in pinned] == ["us-east-1a", "us-east-1c", "none-left"]
    placement = place(pinned, offerings)
    assert placement.nodes_by_pool() == {"cpu-1a": 1, "cpu-1c": 1}
    assert [p.name for p, _ in placement.unplaceable_pods()] == ["w2"]


def test_zone_affinity_follows_the_pods_it_names(catalog):
    cache = PodSpec("redis", labels=(("app", "cache"),), namespace="data")
    term = PodTerm((Requirement("app", "In", ("cache",)),), ("data",))
    pods = [web(f"w{i}", zone_affinity=(term,)) for i in range(2)]
    offerings, _ = build_offerings(zonal(), catalog)
    pinned = pin_zones(pods, offerings, bound=[(cache, "us-east-1c")])
    assert {p.zone for p in pinned} == {"us-east-1c"}


def test_hostname_anti_affinity_means_one_pod_per_node_on_a_packing_pool(catalog):
    small = Resources(cpu_milli=100, memory_mib=128, pods=1)
    pools = [PoolSpec("pack", ("m5.xlarge",), pack=True, max_size=50)]
    offerings, _ = build_offerings(pools, catalog)
    packed = place([PodSpec(f"d{i}", small) for i in range(4)], offerings)
    assert packed.nodes_by_pool() == {"pack": 1}
    solo = place([PodSpec(f"d{i}", small, one_per_node=True) for i in range(4)], offerings)
    assert solo.nodes_by_pool() == {"pack": 4}


def test_preferred_affinity_breaks_a_tie_between_equal_cost_pools(catalog):
    pools = [
        PoolSpec("a-general", ("m5.large",), max_size=5),
        PoolSpec("b-user", ("m5.large",), labels=(("node-purpose", "user"),), max_size=5),
    ]
    offerings, _ = build_offerings(pools, catalog)
    plain = PodSpec("nb", Resources(memory_mib=1024, pods=1))
    assert place([plain], offerings).nodes_by_pool() == {"a-general": 1}
    prefers = PodSpec(
        "nb", Resources(memory_mib=1024, pods=1),
        preferred=((100, SelectorTerm((Requirement("node-purpose", "In", ("user",)),))),),
    )
    assert place([prefers], offerings).nodes_by_pool() == {"b-user": 1}
    # A preference never buys a dearer node.
    dear = [pools[0], PoolSpec("b-user", ("m5.xlarge",), labels=(("node-purpose", "user"),))]
    assert place([prefers], build_offerings(dear, catalog)[0]).nodes_by_pool() == {"a-general": 1}


def test_spread_pods_whose_pools_pick_their_own_zone_are_left_unpinned(catalog):
    # Multi-zone groups (or the catalog's zoneless default pools): AWS picks the zone, so
    # scaler has no zone to pin and places the pods as before.
    pools = [PoolSpec("multi", ("m5.large",), zones=ZONES, max_size=50)]
    offerings, _ = build_offerings(pools, catalog)
    pods = [web(f"w{i}", zone_spread=(ZoneSpread(1, WEB),)) for i in range(3)]
    assert [p.zone for p in pin_zones(pods, offerings)] == [None, None, None]
    assert place(pin_zones(pods, offerings), offerings).nodes_by_pool() == {"multi": 3}
