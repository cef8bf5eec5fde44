"""pin_tier: the pools the webhook lets a new pod be scheduled on.

Pools (bundled catalog, on-demand): m5a.large $0.086/h, m5.large $0.096/h, m5.xlarge $0.192/h,
m5.4xlarge $0.768/h.
"""

from __future__ import annotations

import numpy as np

from scaler.core.catalog import Catalog
from scaler.core.model import PodSpec, PoolSpec, Resources
from scaler.core.offerings import build_offerings
from scaler.core.pinning import pin_tier
from scaler.core.settings import preset

POOLS = [PoolSpec("a", ("m5a.large",)), PoolSpec("b", ("m5.large",)),
         PoolSpec("x", ("m5.xlarge",)), PoolSpec("big", ("m5.4xlarge",))]
POD = PodSpec("nb", requests=Resources(cpu_milli=500, memory_mib=4096, pods=1))


def offerings(pools=POOLS):
    built, problems = build_offerings(pools, Catalog.load())
    assert not problems
    return built


def test_the_tier_is_every_pool_within_the_tolerance_cheapest_first():
    # b is 11.6% dearer than a (within 25%); x is 2.2x: out.
    assert pin_tier(POD, offerings(), preset("scaler")) == ("a", "b")


def test_a_lone_pool_gets_a_fallback_within_the_misplaced_factor_but_never_a_far_bigger_node():
    off = offerings()
    available = np.array([p.name != "a" for p in off.pools])
    # b alone is within 25%; x is exactly 2x b: the fallback. big (8x) never.
    assert pin_tier(POD, off, preset("scaler"), available=available) == ("b", "x")
    two = offerings([PoolSpec("b", ("m5.large",)), PoolSpec("big", ("m5.4xlarge",))])
    assert pin_tier(POD, two, preset("scaler")) == ("b",)


def test_pools_at_max_size_and_pods_nothing_fits_are_left_out():
    off = offerings()
    headroom = np.array([0.0 if p.name in ("a", "b") else np.inf for p in off.pools])
    assert pin_tier(POD, off, preset("scaler"), headroom=headroom) == ("x",)
    huge = PodSpec("huge", requests=Resources(memory_mib=10_000_000, pods=1))
    assert pin_tier(huge, off, preset("scaler")) == ()


def test_pin_for_is_exclusive_unless_the_tiers_pools_pack():
    from scaler.core.pinning import pin_for

    pin = pin_for(POD, offerings(), preset("scaler"))
    assert pin == ("a", "b") and pin.pools == ("a", "b") and pin.exclusive
    packing = offerings([PoolSpec(p.name, p.instance_types, pack=True) for p in POOLS])
    pin = pin_for(POD, packing, preset("scaler"))
    # Per pod, a packed m5.4xlarge is the cheapest now; whatever the tier, it is shared.
    assert pin and not pin.exclusive
    huge = PodSpec("huge", requests=Resources(memory_mib=10_000_000, pods=1))
    assert pin_for(huge, offerings(), preset("scaler")) == () and not pin_for(
        huge, offerings(), preset("scaler")
    ).exclusive


def test_a_tier_never_mixes_packing_and_one_per_node_pools():
    # b (one per node) is within 25% of a (packs): left out, so the pod is not exclusive on a
    # and shared on b. With a one-per-node cheapest pool, packing ones are left out likewise.
    mixed = offerings([PoolSpec("a", ("m5a.large",), pack=True), PoolSpec("b", ("m5.large",)),
                       PoolSpec("x", ("m5.xlarge",))])
    assert pin_tier(POD, mixed, preset("scaler")) == ("a",)
    mixed = offerings([PoolSpec("a", ("m5a.large",)), PoolSpec("b", ("m5.large",), pack=True),
                       PoolSpec("x", ("m5.xlarge",))])
    assert pin_tier(POD, mixed, preset("scaler")) == ("a",)
