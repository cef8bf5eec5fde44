"""Placement: every pod on the pool whose node costs the fewest dollars, for the right reasons.

Everything runs on a hand-made catalog of six invented types, so each expected answer can be
worked out by hand (the arithmetic is in the comments). EKS allocatable (catalog.py):
cpu = vcpus*1000 - (60 + 10 [+ 10 for cores 3-4] [+ 2.5 per core above 4]),
memory = MiB - (255 + 11*max_pods) - 100 eviction.

    type       arch   vCPU  MiB    pods  GPU       $/h on-demand  Spot: savings, bucket
    a1.large   arm64  2     4096   10    -         0.03           none
    g2.xlarge  amd64  4     16384  20    1 T4      0.04           none
    c1.small   amd64  2     4096   10    -         0.05           60% (0.02), 0 (<5%)
    m1.large   amd64  4     16384  20    -         0.20           70% (0.06), 4 (>20%)
    r1.xlarge  amd64  4     32768  20    -         0.30           70% (0.09), 0 (<5%)
    g1.xlarge  amd64  4     16384  20    1 A10G    0.80           50% (0.40), 2 (10-15%)

    allocatable   cpu   memory MiB
    c1, a1        1930  4096 - 365 - 100 = 3631
    m1, g1, g2    3920  16384 - 475 - 100 = 15809
    r1            3920  32768 - 475 - 100 = 32193

Spot risk = interruptions per month (bucket midpoints 0.025, 0.075, 0.125, 0.175, 0.25)
/ 730 h x 24 h of lost work (``spot_lost_work_h``, a pod nothing is known of) x the pool's
price: m1 (>20%) 0.25/730*24*0.06 = 0.00049315, r1 (<5%) 0.025/730*24*0.09 = 0.000073973.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scaler.bench_reference import preference, reference_place, reference_pools, sized
from scaler.core.catalog import GPU_TAINT, Catalog
from scaler.core.model import (
    LABEL_ARCH,
    NO_EXECUTE,
    NO_SCHEDULE,
    ON_DEMAND,
    PREFER_NO_SCHEDULE,
    SPOT,
    PodSpec,
    PoolSpec,
    Requirement,
    Resources,
    SelectorTerm,
    Taint,
    Toleration,
)
from scaler.core.offerings import Offerings, build_offerings
from scaler.core.placement import Placement, group_pods, place
from scaler.core.settings import PlacementSettings
from scaler.core.spec import parse_pod

ZONES = ["us-east-1a", "us-east-1b"]


def _type(
    name: str,
    vcpus: int,
    mib: int,
    pods: int,
    usd: float,
    *,
    arch: str = "amd64",
    gpu: str | None = None,
    spot: tuple[float, int] | None = None,
) -> dict[str, Any]:
    return {
        "name": name,
        "vcpus": vcpus,
        "memory_mib": mib,
        "gpu_count": 1 if gpu else 0,
        "gpu_model": gpu,
        "gpu_memory_mib": 16384 if gpu else 0,
        "arch": arch,
        "bare_metal": False,
        "max_pods": pods,
        "on_demand_usd_per_hour": usd,
        "spot_savings_pct": spot[0] if spot else None,
        "spot_interruption_bucket": spot[1] if spot else None,
        "zones": ZONES,
    }


TINY_CATALOG: dict[str, Any] = {
    "format": "scaler-catalog",
    "version": 1,
    "region": "us-east-1",
    "built_at": "2026-07-24",
    "sources": [{"name": "by hand", "license": "Apache-2.0", "data_date": "2026", "file": "-"}],
    "instance_types": [
        _type("a1.large", 2, 4096, 10, 0.03, arch="arm64"),
        _type("g2.xlarge", 4, 16384, 20, 0.04, gpu="T4"),
        _type("c1.small", 2, 4096, 10, 0.05, spot=(60, 0)),
        _type("m1.large", 4, 16384, 20, 0.20, spot=(70, 4)),
        _type("r1.xlarge", 4, 32768, 20, 0.30, spot=(70, 0)),
        _type("g1.xlarge", 4, 16384, 20, 0.80, gpu="A10G", spot=(50, 2)),
    ],
}
CATALOG = Catalog.from_dict(TINY_CATALOG, source="tiny")
TYPES = [t["name"] for t in TINY_CATALOG["instance_types"]]


# ------------------------------------------------------------------ factories


def pool(
    itype: str, capacity_type: str = ON_DEMAND, *, name: str | None = None, **kw: Any
) -> PoolSpec:
    suffix = "od" if capacity_type == ON_DEMAND else "spot"
    return PoolSpec(
        name=name or f"{itype.split('.')[0]}-{suffix}",
        instance_types=(itype,),
        capacity_type=capacity_type,
        **kw,
    )


def on_demand_pools() -> list[PoolSpec]:
    """a1-od, g2-od, c1-od, m1-od, r1-od, g1-od."""
    return [pool(t) for t in TYPES]


def pod(name: str = "p", *, cpu: float = 0, mem: float = 0, gpu: float = 0, **kw: Any) -> PodSpec:
    return PodSpec(
        name=name, requests=Resources(cpu_milli=cpu, memory_mib=mem, gpu=gpu, pods=1), **kw
    )


def offer(pools: Sequence[PoolSpec], settings: PlacementSettings | None = None) -> Offerings:
    offerings, problems = build_offerings(pools, CATALOG, settings=settings)
    assert problems == []
    return offerings


def chosen(placement: Placement) -> dict[str, str | None]:
    out: dict[str, str | None] = {p.name: g.pool.name for p, g in placement.by_pod()}
    out.update({p.name: None for p, _ in placement.unplaceable_pods()})
    return out


def place_one(p: PodSpec, pools: Sequence[PoolSpec], **kw: Any) -> str | None:
    return chosen(place([p], offer(pools), **kw))[p.name]


def reason_for(p: PodSpec, pools: Sequence[PoolSpec], **kw: Any) -> str:
    placement = place([p], offer(pools), **kw)
    assert not placement.groups, f"expected {p.name} unplaceable, got {chosen(placement)}"
    ((_, reason),) = placement.unplaceable_pods()
    return reason


GIB = 1024.0


# ------------------------------------------------------------------ the hand-made catalog


def test_the_hand_made_catalog_resolves_to_the_figures_worked_out_above() -> None:
    o = offer(
        on_demand_pools()
        + [pool(t, SPOT) for t in ("c1.small", "m1.large", "r1.xlarge", "g1.xlarge")]
    )
    by = {p.name: i for i, p in enumerate(o.pools)}
    assert o.allocatable[by["c1-od"], :2].tolist() == [1930, 3631]
    assert o.allocatable[by["m1-od"], :2].tolist() == [3920, 15809]
    assert o.allocatable[by["r1-od"], :2].tolist() == [3920, 32193]
    # Spot price x (1 + interruptions/month / 730 h x 24 h).
    assert o.cost[by["c1-spot"]] == pytest.approx(0.02 + 0.025 / 730 * 24 * 0.02)
    assert o.cost[by["m1-spot"]] == pytest.approx(0.06 + 0.25 / 730 * 24 * 0.06)
    assert o.cost[by["r1-spot"]] == pytest.approx(0.09 + 0.025 / 730 * 24 * 0.09)
    assert o.cost[by["g1-spot"]] == pytest.approx(0.40 + 0.125 / 730 * 24 * 0.40)
    assert o.interruptions_per_h is not None
    assert o.interruptions_per_h[by["m1-spot"]] == pytest.approx(0.25 / 730)
    assert o.interruptions_per_h[by["m1-od"]] == 0.0
    # Columns are in tie-break order: cost first.
    assert list(o.cost) == sorted(o.cost)


# ------------------------------------------------------------------ cheapest wins


@pytest.mark.parametrize(
    ("mem_gib", "pool_name", "price"),
    [
        (2, "c1-od", 0.05),  # 2Gi fits c1 (3631 MiB): the cheapest amd64 CPU node
        (8, "m1-od", 0.20),  # c1 too small; m1 0.20 < r1 0.30
        (20, "r1-od", 0.30),  # m1 15809 MiB < 20480; only r1 holds it
    ],
)
def test_the_cheapest_node_that_fits_wins_in_absolute_dollars(
    mem_gib: float, pool_name: str, price: float
) -> None:
    placement = place([pod(cpu=1000, mem=mem_gib * GIB)], offer(on_demand_pools()))
    (g,) = placement.groups
    assert g.pool.name == pool_name
    assert g.price_usd_per_hour == pytest.approx(price)
    assert g.nodes == 1


def test_a_pod_with_no_requests_goes_to_the_cheapest_allowed_pool_every_time() -> None:
    # a1 (0.03) is arm64, g2 (0.04) is a GPU node: the cheapest allowed is c1 at 0.05,
    # never a random pick among "equal waste" groups.
    o = offer(on_demand_pools())
    for _ in range(20):
        placement = place([PodSpec(name="empty")], o)
        (g,) = placement.groups
        assert g.pool.name == "c1-od"
        assert g.price_usd_per_hour == pytest.approx(0.05)
        assert "cheapest of 3 fitting pools" in g.reason  # c1, m1, r1


def test_a_gpu_pod_gets_the_cheapest_gpu_pool() -> None:
    # g2 (T4, 0.04) before g1 (A10G, 0.80).
    assert place_one(pod(gpu=1), on_demand_pools()) == "g2-od"


@pytest.mark.parametrize("models", [["A10G"], ["a10g"], ["A10g", "H100"]])
def test_a_gpu_pod_honours_its_gpu_models_case_insensitively(models: list[str]) -> None:
    parsed = parse_pod({"name": "p", "requests": {"nvidia.com/gpu": 1}, "gpu_models": models})
    assert place_one(parsed, on_demand_pools()) == "g1-od"
    # A PodSpec built by hand (the Kubernetes adapter) is matched case-insensitively too.
    assert place_one(pod(gpu=1, gpu_models=tuple(models)), on_demand_pools()) == "g1-od"


def test_a_cpu_pod_never_lands_on_a_gpu_node_even_if_it_is_cheaper() -> None:
    # g2 costs 0.04 < c1 0.05 and is not tainted here; even a pod tolerating everything stays off it.
    p = pod(cpu=500, tolerations=(Toleration(operator="Exists"),))
    assert place_one(p, on_demand_pools()) == "c1-od"


def test_gpu_pools_from_the_catalog_are_tainted_and_gpu_pods_tolerate_the_taint() -> None:
    pools = CATALOG.default_pools([ON_DEMAND])  # a1 (arm64) left out; GPU pools tainted
    assert place_one(pod(gpu=1), pools) == "g2.xlarge-on-demand"
    assert place_one(pod(cpu=100), pools) == "c1.small-on-demand"


def test_an_arm64_pod_goes_to_the_arm_pool_and_amd64_pods_never_do() -> None:
    assert place_one(pod(arch="arm64"), on_demand_pools()) == "a1-od"
    assert place_one(pod(), on_demand_pools()) == "c1-od"


def test_a_pod_selecting_an_architecture_is_matched_by_labels() -> None:
    p = parse_pod({"name": "p", "node_selector": {LABEL_ARCH: "arm64"}})
    assert p.arch is None
    assert place_one(p, on_demand_pools()) == "a1-od"


# ------------------------------------------------------------------ Spot


def spot_and_on_demand() -> list[PoolSpec]:
    return [pool(t, ct) for t in ("m1.large", "r1.xlarge") for ct in (ON_DEMAND, SPOT)]


def test_spot_risk_changes_the_order_between_nearly_equal_spot_pools() -> None:
    # Two Spot pools four hundredths of a cent apart: m1 (reclaimed >20% a month) at
    # $0.0600/h, r1 (<5%) at $0.0604/h. Expected redone work: m1 +0.25/730*24*0.06 =
    # 0.00049315 -> 0.06049315; r1 +0.025/730*24*0.0604 = 0.00004964 -> 0.06044964: the
    # slightly dearer, far steadier pool wins.
    pools = [pool("m1.large", SPOT, price_usd_per_hour=0.0600),
             pool("r1.xlarge", SPOT, price_usd_per_hour=0.0604)]
    placement = place([pod(cpu=1000, mem=8 * GIB)], offer(pools))
    (g,) = placement.groups
    assert g.pool.name == "r1-spot"
    assert g.risk_usd_per_hour == pytest.approx(0.025 / 730 * 24 * 0.0604)
    assert g.cost_usd_per_hour == pytest.approx(0.0604 + 0.025 / 730 * 24 * 0.0604)
    assert g.runner_up == "m1-spot"
    assert "Spot risk" in g.reason


def test_spot_risk_does_not_outweigh_a_real_price_gap() -> None:
    # m1-spot 0.06 (+0.0005 risk) against r1-spot 0.09: the expected loss is small next to
    # a 50% price difference, so the cheaper node wins (see spot_lost_work_h's docstring).
    assert place_one(pod(cpu=1000, mem=8 * GIB), spot_and_on_demand()) == "m1-spot"


def test_without_a_risk_penalty_the_cheapest_spot_node_wins() -> None:
    no_risk = PlacementSettings(
        spot_lost_work_h=0.0
    )
    p = pod(cpu=1000, mem=8 * GIB)
    assert chosen(place([p], offer(spot_and_on_demand(), no_risk)))["p"] == "m1-spot"  # 0.06 < 0.09


def test_an_on_demand_only_pod_never_sees_spot() -> None:
    p = pod(cpu=1000, mem=8 * GIB, capacity_types=(ON_DEMAND,))
    assert place_one(p, spot_and_on_demand()) == "m1-od"  # 0.20, though every Spot pool is cheaper


def test_a_spot_only_pod_gets_the_cheapest_spot_pool() -> None:
    p = pod(cpu=1000, mem=20 * GIB, capacity_types=(SPOT,))
    assert place_one(p, spot_and_on_demand()) == "r1-spot"


# ------------------------------------------------------------------ ties


def test_equal_prices_go_to_the_smaller_node() -> None:
    # Both at $0.10 (price override): m1 has 15809 MiB, r1 32193 MiB -> m1.
    pools = [
        pool("r1.xlarge", name="a-big", price_usd_per_hour=0.10),
        pool("m1.large", name="b-small", price_usd_per_hour=0.10),
    ]
    placement = place([pod(mem=GIB)], offer(pools))
    (g,) = placement.groups
    assert g.pool.name == "b-small"
    assert g.runner_up == "a-big"


def test_equal_price_and_memory_go_to_the_node_with_less_cpu() -> None:
    pools = [
        pool("m1.large", name="a-full-cpu", price_usd_per_hour=0.10),
        # Explicit allocatable replaces only the CPU: 2000m < 3920m.
        pool(
            "m1.large",
            name="z-less-cpu",
            price_usd_per_hour=0.10,
            allocatable=Resources(cpu_milli=2000),
        ),
    ]
    assert place_one(pod(mem=GIB), pools) == "z-less-cpu"


def test_identical_pools_are_told_apart_by_name() -> None:
    pools = [pool("m1.large", name="pool-b"), pool("m1.large", name="pool-a")]
    for _ in range(5):
        assert place_one(pod(mem=GIB), pools) == "pool-a"


# ------------------------------------------------------------------ pool sizes and backoff


def test_when_the_cheapest_pool_is_full_the_next_cheapest_takes_the_rest() -> None:
    # 5 pods of 8Gi; m1 (0.20) may add 2 nodes, r1 (0.30) is unlimited: 2 + 3.
    pods = [pod(f"p{i}", mem=8 * GIB) for i in range(5)]
    placement = place(pods, offer([pool("m1.large", max_size=2), pool("r1.xlarge")]))
    assert placement.nodes_by_pool() == {"m1-od": 2, "r1-od": 3}
    assert not placement.unplaceable


def test_nodes_already_in_a_pool_count_against_its_max_size() -> None:
    # max 2 with 1 node running: room for 1 more.
    pods = [pod(f"p{i}", mem=8 * GIB) for i in range(5)]
    placement = place(
        pods, offer([pool("m1.large", max_size=2, current_size=1), pool("r1.xlarge")])
    )
    assert placement.nodes_by_pool() == {"m1-od": 1, "r1-od": 4}


def test_pods_beyond_every_pools_max_size_are_unplaceable_and_told_why() -> None:
    pods = [pod(f"p{i}", mem=8 * GIB) for i in range(4)]
    placement = place(pods, offer([pool("m1.large", max_size=1), pool("r1.xlarge", max_size=1)]))
    assert placement.nodes_by_pool() == {"m1-od": 1, "r1-od": 1}
    stuck = list(placement.unplaceable_pods())
    assert len(stuck) == 2
    assert all("at its max size" in r and "m1-od (max 1)" in r for _, r in stuck)


def test_pools_that_are_full_already_leave_a_pod_unplaceable() -> None:
    p = pod(mem=8 * GIB)
    reason = reason_for(p, [pool("m1.large", max_size=3, current_size=3)])
    assert "every pool that fits is at its max size" in reason
    assert "m1-od (max 3)" in reason


def test_a_pool_backing_off_is_skipped() -> None:
    o = offer([pool("m1.large"), pool("r1.xlarge")])
    available = np.array([p.name != "m1-od" for p in o.pools])
    placement = place([pod(mem=8 * GIB)], o, available=available)
    assert chosen(placement) == {"p": "r1-od"}


def test_when_every_fitting_pool_backs_off_the_reason_says_so() -> None:
    o = offer([pool("m1.large"), pool("r1.xlarge")])
    placement = place([pod(mem=8 * GIB)], o, available=np.zeros(len(o), dtype=bool))
    ((_, reason),) = placement.unplaceable_pods()
    assert "backing off" in reason
    assert "m1-od" in reason and "r1-od" in reason


# ------------------------------------------------------------------ packing


def test_a_packing_pool_puts_several_pods_on_a_node_and_costs_a_share() -> None:
    # 500m / 1Gi on c1 (1930m, 3631 MiB, 10 pods): min(3.86, 3.55, 10) -> 3 per node,
    # $0.05 / 3 = $0.01667 per pod < m1's $0.20. 7 pods -> ceil(7/3) = 3 nodes.
    pods = [pod(f"p{i}", cpu=500, mem=GIB) for i in range(7)]
    placement = place(pods, offer([pool("c1.small", pack=True), pool("m1.large")]))
    (g,) = placement.groups
    assert g.pool.name == "c1-od"
    assert g.nodes == 3
    assert g.cost_usd_per_hour == pytest.approx(0.05 / 3)
    assert "3 pods per node" in g.reason


def test_a_packing_pool_respects_its_max_size_in_nodes() -> None:
    # 3 per node, room for 2 nodes: 6 pods there, the 7th to m1.
    pods = [pod(f"p{i}", cpu=500, mem=GIB) for i in range(7)]
    placement = place(pods, offer([pool("c1.small", pack=True, max_size=2), pool("m1.large")]))
    assert placement.nodes_by_pool() == {"c1-od": 2, "m1-od": 1}
    assert sum(len(g.pods) for g in placement.groups if g.pool.name == "c1-od") == 6


# ------------------------------------------------------------------ unplaceable reasons


def test_memory_too_big_names_the_largest_pool() -> None:
    # 64Gi > r1's 32193 MiB = 31.44Gi, the largest CPU pool.
    reason = reason_for(pod(mem=64 * GIB), on_demand_pools())
    assert (
        reason == "needs memory 64Gi; the largest pool it may use, r1-od, has 31.44Gi allocatable"
    )


def test_too_many_gpus_names_the_largest_gpu_pool() -> None:
    reason = reason_for(pod(gpu=2), on_demand_pools())
    assert reason.startswith("needs nvidia.com/gpu 2; the largest pool it may use, g2-od, has 1")


def test_a_node_selector_no_pool_matches() -> None:
    reason = reason_for(pod(node_selector=(("team", "ml"),)), on_demand_pools())
    assert "node selector team=ml matches no pool" in reason
    assert "no pool has the label team" in reason


def test_a_node_selector_names_the_values_the_pools_have() -> None:
    pools = [
        pool("c1.small", labels=(("team", "ds"),)),
        pool("m1.large", labels=(("team", "web"),)),
    ]
    assert place_one(pod(node_selector=(("team", "ds"),)), pools) == "c1-od"
    reason = reason_for(pod(node_selector=(("team", "ml"),)), pools)
    assert "team in {ds, web}" in reason


def test_node_affinity_no_pool_matches() -> None:
    aff = (SelectorTerm((Requirement("gen", "Gt", ("4",)),)),)
    pools = [pool("c1.small", labels=(("gen", "3"),)), pool("m1.large", labels=(("gen", "x"),))]
    reason = reason_for(pod(affinity=aff), pools)
    assert "required node affinity (gen Gt (4)) matches no pool" in reason
    pools.append(pool("r1.xlarge", labels=(("gen", "5"),)))
    assert place_one(pod(affinity=aff), pools) == "r1-od"


def test_a_taint_not_tolerated() -> None:
    tainted = [pool("c1.small", taints=(Taint("dedicated", "ml", NO_SCHEDULE),))]
    reason = reason_for(pod(), tainted)
    assert "tolerates no pool's taints (dedicated=ml:NoSchedule)" in reason
    tolerant = pod(tolerations=(Toleration("dedicated", "Equal", "ml"),))
    assert place_one(tolerant, tainted) == "c1-od"


def test_prefer_no_schedule_taints_do_not_block() -> None:
    assert (
        place_one(pod(), [pool("c1.small", taints=(Taint("soft", "", PREFER_NO_SCHEDULE),))])
        == "c1-od"
    )


def test_a_no_execute_taint_blocks_unless_its_effect_is_tolerated() -> None:
    pools = [pool("c1.small", taints=(Taint("dedicated", "ml", NO_EXECUTE),))]
    wrong_effect = pod(tolerations=(Toleration("dedicated", "Exists", effect=NO_SCHEDULE),))
    assert "tolerates no pool's taints" in reason_for(wrong_effect, pools)
    assert place_one(pod(tolerations=(Toleration(operator="Exists"),)), pools) == "c1-od"


def test_a_zone_only_multi_zone_asgs_offer() -> None:
    # An ASG spanning a and b picks the zone itself: it cannot honour a pod pinned to b.
    asgs = [pool("c1.small", zones=tuple(ZONES)), pool("m1.large", zones=tuple(ZONES))]
    reason = reason_for(pod(zone="us-east-1b"), asgs)
    assert "pinned to zone us-east-1b" in reason
    assert "a pool must be in that one zone" in reason


def test_a_zoned_pod_goes_to_a_pool_in_that_zone_or_one_that_chooses_its_zone() -> None:
    pools = [
        pool("c1.small", zones=tuple(ZONES)),
        pool("m1.large", zones=("us-east-1b",)),
        pool("r1.xlarge", zones=tuple(ZONES), choose_zone=True),
    ]
    placement = place([pod(zone="us-east-1b")], offer(pools))
    (g,) = placement.groups
    assert (g.pool.name, g.zone) == ("m1-od", "us-east-1b")  # 0.20 < 0.30; c1 cannot
    assert place_one(pod(zone="us-east-1a"), pools) == "r1-od"


def test_a_gpu_model_not_offered() -> None:
    reason = reason_for(pod(gpu=1, gpu_models=("H100",)), on_demand_pools())
    assert reason.startswith("allows GPU models H100; the pools it may use have A10G, T4")


def test_an_architecture_no_pool_offers() -> None:
    amd_only = [pool(t) for t in TYPES if t != "a1.large"]
    reason = reason_for(pod(arch="arm64"), amd_only)
    assert reason.startswith("runs on arm64 only")
    assert "amd64" in reason


def test_a_capacity_type_no_pool_offers() -> None:
    reason = reason_for(pod(capacity_types=(SPOT,)), on_demand_pools())
    assert reason == "allows only spot capacity, and no pool offers it"


def test_a_cpu_pod_whose_constraints_leave_only_gpu_pools() -> None:
    reason = reason_for(pod(), [pool("g1.xlarge"), pool("g2.xlarge")])
    assert "only GPU pools match" in reason


def test_no_pools_at_all() -> None:
    assert reason_for(pod(), []) == "there are no pools to choose from"


def test_resources_that_fit_only_in_different_pools_are_told_together() -> None:
    # 3 CPUs fit m1 (3920m) but not c1 (1930m); 3Gi fit c1 (3631 MiB) but not this m1, whose
    # memory is overridden to 2048 MiB. Each alone fits somewhere; both together nowhere.
    pools = [pool("c1.small"), pool("m1.large", allocatable=Resources(memory_mib=2048))]
    reason = reason_for(pod(cpu=3000, mem=3 * GIB), pools)
    assert reason == "needs cpu 3, memory 3Gi together; no pool it may use has all of it"


# ------------------------------------------------------------------ mixed-instance pools


def test_a_mixed_instance_pool_is_scored_with_the_smallest_allocatable_and_highest_price() -> None:
    mixed = PoolSpec(name="mixed", instance_types=("m1.large", "r1.xlarge"))
    o = offer([mixed])
    assert o.allocatable[0, 1] == 15809  # m1's memory: either type may launch
    assert o.price[0] == pytest.approx(0.30)  # r1's price: what a node may cost
    placement = place([pod(mem=8 * GIB)], o)
    (g,) = placement.groups
    assert (g.pool.name, g.instance_type, g.price_usd_per_hour) == (
        "mixed",
        "r1.xlarge",
        pytest.approx(0.30),
    )
    # 20Gi would fit an r1 node, but the pool may launch an m1: not placeable there.
    assert "15.44Gi" in reason_for(pod(mem=20 * GIB), [mixed])
    # A plain m1 pool at 0.20 beats the mixed pool's 0.30.
    assert place_one(pod(mem=8 * GIB), [mixed, pool("m1.large")]) == "m1-od"


# ------------------------------------------------------------------ equivalence classes


def test_identical_pods_form_one_class_and_go_to_the_same_pool() -> None:
    pods = [pod(f"nb-{i}", cpu=2000, mem=8 * GIB) for i in range(1000)]
    assert len(group_pods(pods)) == 1
    placement = place(pods, offer(on_demand_pools()))
    (g,) = placement.groups
    assert g.pool.name == "m1-od"
    assert len(g.pods) == 1000 and g.nodes == 1000
    assert [p.name for p in g.pods] == [p.name for p in pods]


def test_pods_differing_only_in_name_arrival_or_annotations_share_a_class() -> None:
    a = pod("a", mem=GIB)
    b = PodSpec(
        name="b", namespace="x", requests=a.requests, arrival_s=5.0, annotations=(("k", "v"),)
    )
    c = pod("c", mem=GIB, zone="us-east-1a")
    assert [len(k) for k in group_pods([a, b, c])] == [2, 1]


# ------------------------------------------------------------------ property: place == reference

CPU_CHOICES = [0, 250, 1000, 1930, 2000, 3920, 4000]
MEM_CHOICES = [0, 512, 3631, 4096, 8192, 15809, 20000, 32193, 40000]
LABELS = {"team": ["ds", "ml"], "gen": ["3", "5", "x"]}
TAINTS = [
    Taint("dedicated", "ml", NO_SCHEDULE),
    Taint("dedicated", "ds", NO_EXECUTE),
    Taint("soft", "", PREFER_NO_SCHEDULE),
    Taint("nvidia.com/gpu", "true", NO_SCHEDULE),
]
TOLERATIONS = [
    Toleration(operator="Exists"),
    Toleration("dedicated", "Equal", "ml"),
    Toleration("dedicated", "Exists", effect=NO_EXECUTE),
    Toleration("nvidia.com/gpu", "Exists"),
]
REQUIREMENTS = [
    Requirement("team", "In", ("ds",)),
    Requirement("team", "NotIn", ("ml",)),
    Requirement("team", "Exists"),
    Requirement("gen", "DoesNotExist"),
    Requirement("gen", "Gt", ("4",)),
    Requirement("gen", "Lt", ("4",)),
    Requirement(LABEL_ARCH, "In", ("arm64",)),
    Requirement("node.kubernetes.io/instance-type", "NotIn", ("c1.small",)),
]


def sometimes(draw: st.DrawFn, strategy: st.SearchStrategy[Any], default: Any) -> Any:
    """``strategy`` one time in four, else ``default``: most pods and pools stay placeable."""
    return draw(strategy) if draw(st.integers(0, 3)) == 0 else default


@st.composite
def pools_strategy(draw: st.DrawFn) -> list[PoolSpec]:
    n = draw(st.integers(2, 8))
    pools = []
    for i in range(n):
        itype = draw(st.sampled_from(TYPES))
        spot_ok = CATALOG[itype].spot_savings_pct is not None
        ct = draw(st.sampled_from([ON_DEMAND, SPOT])) if spot_ok else ON_DEMAND
        labels = {k: draw(st.sampled_from(v)) for k, v in LABELS.items() if draw(st.booleans())}
        zones = draw(st.sampled_from([(), ("us-east-1a",), ("us-east-1b",), tuple(ZONES)]))
        taints = sometimes(draw, st.lists(st.sampled_from(TAINTS), max_size=2, unique=True), [])
        if CATALOG[itype].gpu_count and GPU_TAINT not in taints and draw(st.booleans()):
            taints = [*taints, GPU_TAINT]  # as the catalog's default GPU pools are
        pools.append(
            PoolSpec(
                name=f"p{i}",
                instance_types=(itype,),
                capacity_type=ct,
                zones=zones,
                labels=tuple(sorted(labels.items())),
                taints=tuple(taints),
                # A few fixed prices make exact ties common.
                price_usd_per_hour=draw(st.sampled_from([None, None, 0.1, 0.2])),
                pack=draw(st.booleans()),
                choose_zone=draw(st.booleans()),
            )
        )
    return pools


@st.composite
def pods_strategy(draw: st.DrawFn) -> list[PodSpec]:
    n = draw(st.integers(1, 12))
    pods = []
    for i in range(n):
        term = st.lists(st.sampled_from(REQUIREMENTS), min_size=1, max_size=2).map(
            lambda rs: SelectorTerm(tuple(rs))
        )
        selector = st.dictionaries(
            st.sampled_from(sorted(LABELS)), st.sampled_from(["ds", "ml", "3", "5"])
        )
        models = st.lists(
            st.sampled_from(["A10G", "a10g", "T4", "t4", "H100"]),
            min_size=1,
            max_size=2,
            unique=True,
        )
        pods.append(
            PodSpec(
                name=f"pod{i}",
                requests=Resources(
                    cpu_milli=draw(st.sampled_from(CPU_CHOICES)),
                    memory_mib=draw(st.sampled_from(MEM_CHOICES)),
                    gpu=draw(st.sampled_from([0, 0, 1, 2])),
                    pods=1,
                ),
                node_selector=tuple(sorted(sometimes(draw, selector, {}).items())),
                affinity=tuple(sometimes(draw, st.lists(term, min_size=1, max_size=2), [])),
                tolerations=tuple(
                    sometimes(
                        draw, st.lists(st.sampled_from(TOLERATIONS), max_size=2, unique=True), []
                    )
                ),
                zone=sometimes(draw, st.sampled_from(ZONES), None),
                arch=sometimes(draw, st.sampled_from(["arm64", None]), "amd64"),
                gpu_models=tuple(draw(st.one_of(st.just([]), models))),
                capacity_types=sometimes(
                    draw, st.sampled_from([(ON_DEMAND,), (SPOT,), (ON_DEMAND, SPOT)]), ()
                ),
            )
        )
    return pods


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pods=pods_strategy(), pools=pools_strategy(), data=st.data())
def test_place_agrees_with_a_per_pod_python_loop(
    pods: list[PodSpec], pools: list[PoolSpec], data: st.DataObject
) -> None:
    o = offer(pools)
    available = np.array(
        data.draw(st.lists(st.booleans(), min_size=len(o), max_size=len(o))), dtype=bool
    )
    placement = place(pods, o, available=available)
    ref_pools = reference_pools(o, available.tolist())
    expected = {p.name: (r.name if (r := reference_place(p, ref_pools)) else None) for p in pods}
    got = chosen(placement)
    # The reference takes the first of equal pools; a class of several pods is spread over
    # equals that differ only by zone (balance_similar): another of those is as right.
    similar = {q.name: int(o.similar[i]) for i, q in enumerate(o.pools)}
    for name, want in expected.items():
        if want is not None and got[name] is not None and got[name] != want:
            assert similar[got[name]] == similar[want], (name, got[name], want)
            got[name] = want
    assert got == expected
    # The per-pod cost is the reference's too.
    by_name = {r.name: r for r in ref_pools}
    for p, g in placement.by_pod():
        want = preference(sized(p), by_name[g.pool.name])[0]
        assert g.cost_usd_per_hour == pytest.approx(want)


def test_no_availability_mask_places_and_explains_as_an_all_open_one() -> None:
    """decide() passes no mask when no pool backs off; place() must answer exactly as with
    an all-True one, on every path (placed, unplaceable, over a max size)."""
    offerings = offer([pool("m1.large", max_size=2), pool("r1.xlarge", max_size=1)])
    pods = [pod(f"p{i}", cpu=500, mem=GIB) for i in range(4)] + [pod("huge", cpu=10**7)]
    open_all = np.ones(len(offerings), dtype=bool)
    assert place(pods, offerings) == place(pods, offerings, available=open_all)
    assert place(pods[:1], offerings) == place(pods[:1], offerings, available=open_all)


def test_the_kept_all_open_mask_cannot_be_written_through() -> None:
    """The mask place() uses for "every pool open" is the offerings' own, shared between
    calls: a write to it would close a pool for every later decision, so it refuses
    writes."""
    offerings = offer([pool("m1.large"), pool("r1.xlarge")])
    mask = offerings.all_open
    assert mask.shape == (2,) and mask.all()
    with pytest.raises(ValueError):
        mask[0] = False


def test_one_class_placed_on_its_row_as_the_whole_matrix_places_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """place() answers a lone class from its kept row with scalars (_place_one); with that
    path turned off it must answer the same, for any headroom (zero, short, negative, NaN),
    any pools backing off, packing pools and Spot pools (which go on to the spread)."""
    import random

    import scaler.core.placement as placement

    rng = random.Random(5)
    pools = [
        pool("a1.large"), pool("c1.small", pack=True), pool("m1.large"),
        pool("m1.large", SPOT, name="m1-spot", price_usd_per_hour=0.0600),
        pool("r1.xlarge", SPOT, name="r1-spot", price_usd_per_hour=0.0604),
        pool("r1.xlarge", max_size=3, current_size=1),
        pool("g1.xlarge"),
    ]
    offerings = offer(pools)
    shapes = [dict(cpu=500, mem=GIB), dict(cpu=1500, mem=6 * GIB), dict(cpu=3000, mem=20 * GIB),
              dict(gpu=1, tolerations=(Toleration(key=GPU_TAINT.key, operator="Exists"),)),
              dict(cpu=500, mem=GIB, capacity_types=(SPOT,)), dict(cpu=10**7)]
    head_values = [0.0, 1.0, 2.0, np.inf, -1.0, np.nan]
    for k in range(400):
        shape = rng.choice(shapes)
        pods = [pod(f"p{k}-{i}", **shape) for i in range(rng.choice([1, 1, 2, 5]))]
        headroom = np.array([rng.choice(head_values) if rng.random() < 0.3 else np.inf
                             for _ in pools])
        available = (None if rng.random() < 0.5 else
                     np.array([rng.random() < 0.8 for _ in pools]))
        kw: dict[str, Any] = dict(headroom=headroom, available=available)
        fast = place(pods, offerings, **kw)
        with monkeypatch.context() as m:
            m.setattr(placement, "_place_one", lambda *a, **k: None)
            slow = place(pods, offerings, **kw)
        assert fast == slow, (shape, headroom, available)


def test_a_class_placed_again_gets_the_answer_fresh_offerings_give() -> None:
    # What a class's kept row alone decides (its cheapest pool, that group's terms) is kept
    # with the offerings: class after class, and with that pool out, each answer must be
    # the one offerings built afresh (nothing kept) give.
    pools = on_demand_pools()
    kept, same = offer(pools), PlacementSettings()  # rows are kept per settings object

    def summary(placement: Placement) -> list[object]:
        return [
            (g.pool.name, g.nodes, g.reason, g.runner_up, g.runner_up_cost_usd_per_hour,
             g.cost_usd_per_hour, g.zone, [p.name for p in g.pods])
            for g in placement.groups
        ] + [u.reason for u in placement.unplaceable]

    small = [pod("s1", cpu=500, mem=GIB), pod("s2", cpu=500, mem=GIB)]
    big = [pod("b", cpu=3000, mem=20 * GIB)]
    gpu = [pod("g", cpu=1000, mem=GIB, gpu=1)]
    huge = [pod("h", cpu=64000)]
    seen: set[str] = set()
    for pods in [small, big, small[:1], gpu, big, huge, small, gpu]:
        first = place(pods, offer(pools)).groups
        without = np.ones(len(kept), dtype=bool)
        if first:
            without[kept.index(first[0].pool.name)] = False
            seen.add(first[0].pool.name)
        for available in (None, without, None):
            assert summary(place(pods, kept, available=available, settings=same)) == summary(
                place(pods, offer(pools), available=available, settings=same)
            )
    assert len(seen) >= 3  # the classes went to different pools
    assert len(kept.open_rows.terms) >= 3
