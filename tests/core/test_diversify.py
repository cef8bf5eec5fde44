"""A burst of like pods bound for one Spot pool is spread over near-equal Spot pools, so one
reclaim of a capacity pool does not hit every node of it (scaler.core.diversify)."""

from __future__ import annotations

import dataclasses

from scaler.core.model import ON_DEMAND, SPOT, PodSpec, PoolSpec, Resources
from scaler.core.offerings import build_offerings
from scaler.core.placement import Placement, place
from scaler.core.settings import PlacementSettings, preset

# Spot in one zone, cheapest first with the default Spot risk: m7i.large, m5.large, then
# m5a.large and c5.large about 6% above m7i.large.
TYPES = ("m7i.large", "m5.large", "m5a.large", "c5.large", "r5.large")


def spot_pools(types=TYPES, zones=("us-east-1a",), **kw) -> list[PoolSpec]:
    return [PoolSpec(f"{t}-spot", (t,), capacity_type=SPOT, zones=zones, **kw) for t in types]


def burst(n: int) -> list[PodSpec]:
    return [PodSpec(f"w{i}", Resources(cpu_milli=500, memory_mib=1024, pods=1))
            for i in range(n)]


def placed(pools, pods, catalog, **settings) -> Placement:
    offerings, problems = build_offerings(pools, catalog)
    assert not problems
    return place(pods, offerings, settings=PlacementSettings(**settings))


def test_a_burst_is_spread_evenly_over_spot_pools_within_the_band(catalog):
    p = placed(spot_pools(), burst(8), catalog, diversify_band=0.10)
    assert p.nodes_by_pool() == {"m7i.large-spot": 3, "m5.large-spot": 3, "m5a.large-spot": 2}
    costs = [g.cost_usd_per_hour for g in p.groups]
    assert max(costs) <= min(costs) * 1.10
    for g in p.groups:
        assert g.reason.startswith("8 like pods spread over 3 Spot pools")


def test_only_pools_within_the_band_take_part(catalog):
    # At 5% only m5.large is near enough to m7i.large.
    p = placed(spot_pools(), burst(8), catalog, diversify_band=0.05)
    assert p.nodes_by_pool() == {"m7i.large-spot": 4, "m5.large-spot": 4}


def test_a_burst_smaller_than_the_minimum_stays_on_the_cheapest_pool(catalog):
    p = placed(spot_pools(), burst(3), catalog, diversify_band=0.10)
    assert p.nodes_by_pool() == {"m7i.large-spot": 3}


def test_spreading_off_by_one_pool_as_karpenter_like_and_ca_least_waste(catalog):
    assert preset("karpenter-like").placement.diversify_max_pools == 1
    assert preset("ca-least-waste").placement.diversify_max_pools == 1
    p = placed(spot_pools(), burst(8), catalog, diversify_band=0.10, diversify_max_pools=1)
    assert p.nodes_by_pool() == {"m7i.large-spot": 8}


def test_a_pool_in_three_zones_already_spreads_its_nodes_and_is_left_alone(catalog):
    zones = ("us-east-1a", "us-east-1b", "us-east-1c")
    p = placed(spot_pools(zones=zones), burst(8), catalog, diversify_band=0.10)
    assert p.nodes_by_pool() == {"m7i.large-spot": 8}


def test_a_second_group_of_the_same_type_and_zone_adds_no_capacity_pool(catalog):
    twin = PoolSpec("m7i.large-spot-b", ("m7i.large",), capacity_type=SPOT,
                    zones=("us-east-1a",), labels=(("team", "b"),))
    p = placed([*spot_pools(), twin], burst(8), catalog, diversify_band=0.05)
    assert "m7i.large-spot-b" not in p.nodes_by_pool()
    assert p.nodes_by_pool() == {"m7i.large-spot": 4, "m5.large-spot": 4}


def test_a_burst_on_demand_is_not_spread(catalog):
    pools = [dataclasses.replace(p, capacity_type=ON_DEMAND, name=p.name.replace("spot", "od"))
             for p in spot_pools()]
    p = placed(pools, burst(8), catalog, diversify_band=0.50)
    assert len(p.nodes_by_pool()) == 1


def test_a_full_pool_still_falls_back_to_the_next_without_losing_pods(catalog):
    pools = [dataclasses.replace(p, max_size=2) for p in spot_pools()]
    p = placed(pools, burst(8), catalog, diversify_band=0.10)
    assert sum(p.nodes_by_pool().values()) == 8 and not p.unplaceable
