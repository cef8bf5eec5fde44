"""A mixed-instances group's Spot share is priced by what its SpotAllocationStrategy picks."""

from __future__ import annotations

import pytest

from scaler.core.model import ON_DEMAND, SPOT, PoolSpec
from scaler.core.offerings import build_offerings
from scaler.core.spot_allocation import spot_pick

# In the overrides' order. Spot $/h and Advisor bucket (catalog): r5.large 0.0504 (b0),
# m5n.large 0.0536 (b0), c5.large 0.0349 (b0), m7i.large 0.0323 (b3), m5.large 0.0326 (b3).
OVERRIDES = ("r5.large", "m5n.large", "c5.large", "m7i.large", "m5.large")


def spot(catalog, name: str) -> float:
    price = catalog[name].spot_usd_per_hour
    assert price is not None
    return price


@pytest.mark.parametrize(
    ("strategy", "pools", "expected"),
    [
        # The two cheapest types, instances spread evenly over them.
        ("lowest-price", 2, ("m7i.large", "m5.large")),
        ("lowest-price", 1, ("m7i.large",)),
        # Capacity (the lowest bucket: r5, m5n, c5), price ignored: the dearest of them.
        ("capacity-optimized", 2, ("m5n.large",)),
        # Capacity first, then the overrides' order.
        ("capacity-optimized-prioritized", 2, ("r5.large",)),
        # Capacity first, then the cheapest.
        ("price-capacity-optimized", 2, ("c5.large",)),
    ],
)
def test_each_strategy_prices_the_types_it_picks(catalog, strategy, pools, expected):
    types = [catalog[t] for t in OVERRIDES]
    price, picked = spot_pick(types, [spot(catalog, t) for t in OVERRIDES], strategy,
                              spot_instance_pools=pools)
    assert price == pytest.approx(sum(spot(catalog, t) for t in expected) / len(expected))
    if strategy == "capacity-optimized":
        assert {t.name for t in picked} == {"r5.large", "m5n.large", "c5.large"}
    else:
        assert tuple(t.name for t in picked) == expected


def test_an_unknown_strategy_is_an_error_naming_it(catalog):
    with pytest.raises(ValueError, match="'diversified'"):
        spot_pick([catalog["m5.large"]], [0.03], "diversified")


def group(strategy: str | None, **kw) -> PoolSpec:
    return PoolSpec("g", OVERRIDES, capacity_type=SPOT, spot_allocation_strategy=strategy, **kw)


def test_a_spot_group_is_priced_and_risked_by_the_types_its_strategy_picks(catalog):
    offerings, problems = build_offerings(
        [group(None), group("lowest-price"), group("price-capacity-optimized")], catalog
    )
    assert not problems
    # Pools sort by cost: the three are told apart by their prices.
    by_price = sorted(zip(offerings.price, offerings.risk, strict=True))
    (lp_price, lp_risk), (pco_price, pco_risk), (dear_price, _) = by_price
    assert lp_price == pytest.approx((spot(catalog, "m7i.large") + spot(catalog, "m5.large")) / 2)
    assert pco_price == pytest.approx(spot(catalog, "c5.large"))
    assert dear_price == pytest.approx(spot(catalog, "m5n.large"))  # no strategy: the dearest
    # lowest-price walks to the most reclaimed types (bucket 3); PCO stays in bucket 0.
    assert pco_risk < lp_risk


def test_a_partly_spot_group_prices_its_spot_share_by_the_strategy(catalog):
    pool = PoolSpec("half", OVERRIDES, capacity_type=ON_DEMAND, spot_share=0.5,
                    spot_allocation_strategy="price-capacity-optimized")
    offerings, problems = build_offerings([pool], catalog)
    assert not problems
    dearest_od = max(catalog[t].on_demand_usd_per_hour for t in OVERRIDES)
    assert offerings.price[0] == pytest.approx(0.5 * dearest_od + 0.5 * spot(catalog, "c5.large"))


def test_an_unknown_strategy_disables_the_pool_with_a_reason(catalog):
    offerings, problems = build_offerings([group("cheapest-please")], catalog)
    assert len(offerings) == 0
    assert "SpotAllocationStrategy 'cheapest-please'" in problems[0].reason
