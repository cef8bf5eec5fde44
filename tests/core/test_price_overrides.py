"""Per-pool price overrides (ASG tags scaler.io/price-discount, scaler.io/price-usd-per-hour):
placement follows what the company pays, not the list price.

Catalog (us-east-1): m5.large $0.096/h, m5a.large $0.086/h; both 2 vCPU / 8 GiB, so a pod
fits either and the cheaper node wins.
"""

from __future__ import annotations

from scaler.core.catalog import Catalog
from scaler.core.model import PodSpec, PoolSpec, Resources
from scaler.core.offerings import Prices, build_offerings
from scaler.core.placement import place

ZONES = ("us-east-1a",)


def _pod() -> PodSpec:
    return PodSpec(name="web", requests=Resources(cpu_milli=1000, memory_mib=2048, pods=1))


def _chosen(pools: list[PoolSpec], catalog: Catalog, prices: Prices | None = None) -> str:
    offerings, problems = build_offerings(pools, catalog, prices=prices)
    assert problems == []
    placement = place([_pod()], offerings)
    (group,) = placement.groups
    return group.pool.name


def test_without_overrides_the_cheaper_list_price_wins(catalog: Catalog):
    pools = [PoolSpec("m5", ("m5.large",), zones=ZONES), PoolSpec("m5a", ("m5a.large",), zones=ZONES)]
    assert _chosen(pools, catalog) == "m5a"


def test_a_savings_plan_discount_makes_the_dearer_list_price_win(catalog: Catalog):
    # 0.096 x (1 - 0.2) = 0.0768 < 0.086
    pools = [
        PoolSpec("m5", ("m5.large",), zones=ZONES, price_multiplier=0.8),
        PoolSpec("m5a", ("m5a.large",), zones=ZONES),
    ]
    assert _chosen(pools, catalog) == "m5"
    offerings, _ = build_offerings(pools, catalog)
    assert offerings.price[offerings.index("m5")] == 0.096 * 0.8


def test_a_small_discount_does_not_flip_the_choice(catalog: Catalog):
    # 0.096 x (1 - 0.05) = 0.0912 > 0.086
    pools = [
        PoolSpec("m5", ("m5.large",), zones=ZONES, price_multiplier=0.95),
        PoolSpec("m5a", ("m5a.large",), zones=ZONES),
    ]
    assert _chosen(pools, catalog) == "m5a"


def test_the_discount_applies_to_the_live_price_too(catalog: Catalog):
    # Live on-demand m5.large 0.2 x 0.5 = 0.1 > 0.086: the discount scales the live figure,
    # not the catalog's (which would give 0.048 and win).
    pools = [
        PoolSpec("m5", ("m5.large",), zones=ZONES, price_multiplier=0.5),
        PoolSpec("m5a", ("m5a.large",), zones=ZONES),
    ]
    live = Prices({("m5.large", "on-demand"): 0.2})
    assert _chosen(pools, catalog, live) == "m5a"


def test_a_capacity_reservation_at_zero_marginal_cost_wins_over_any_list_price(catalog: Catalog):
    pools = [
        PoolSpec("reserved-m5", ("m5.xlarge",), zones=ZONES, price_usd_per_hour=0.0),
        PoolSpec("m5a", ("m5a.large",), zones=ZONES),
    ]
    assert _chosen(pools, catalog) == "reserved-m5"
