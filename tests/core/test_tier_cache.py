"""TierCache: pin_for's answer per pod class, fresh whenever the offerings, the settings, a
pool's availability (backoff), its headroom or its readmission changes.

Pools (bundled catalog, on-demand): m5a.large $0.086/h, m5.large $0.096/h, m5.xlarge $0.192/h.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from scaler.core.catalog import Catalog
from scaler.core.model import SPOT, PodSpec, PoolSpec, Resources
from scaler.core.offerings import build_offerings
from scaler.core.pinning import TierCache, pin_for, pin_tier
from scaler.core.settings import preset

POOLS = [PoolSpec("a", ("m5a.large",)), PoolSpec("b", ("m5.large",)), PoolSpec("x", ("m5.xlarge",))]
POD = PodSpec("nb", requests=Resources(cpu_milli=500, memory_mib=4096, pods=1))


def offerings(pools=POOLS):
    built, problems = build_offerings(pools, Catalog.load())
    assert not problems
    return built


def test_like_pods_share_one_answer_and_a_different_pod_gets_its_own():
    off, settings, tiers = offerings(), preset("scaler"), TierCache()
    first = tiers.pin(POD, off, settings)
    assert tiers.pin(dataclasses.replace(POD, name="nb-2"), off, settings) is first
    big = dataclasses.replace(POD, name="big", requests=Resources(cpu_milli=3000, memory_mib=8192,
                                                                   pods=1))
    assert tiers.pin(big, off, settings) == pin_for(big, off, settings) == ("x",)


def test_a_pool_backing_off_gives_a_fresh_tier():
    off, settings, tiers = offerings(), preset("scaler"), TierCache()
    everything = np.ones(len(off), dtype=bool)
    assert tiers.pin(POD, off, settings, available=everything) == ("a", "b")
    backing_off = np.array([p.name != "a" for p in off.pools])
    assert tiers.pin(POD, off, settings, available=backing_off) == ("b", "x")
    readmit = ~backing_off
    back = tiers.pin(POD, off, settings, available=backing_off, readmit=readmit)
    assert back == pin_for(POD, off, settings, available=backing_off, readmit=readmit)
    assert back[0] == "a"
    assert tiers.pin(POD, off, settings, available=everything) == ("a", "b")


def test_a_full_pool_gives_a_fresh_tier():
    off, settings, tiers = offerings(), preset("scaler"), TierCache()
    room = np.full(len(off), np.inf)
    assert tiers.pin(POD, off, settings, headroom=room) == ("a", "b")
    room[off.index("a")] = 0.0
    assert tiers.pin(POD, off, settings, headroom=room) == ("b", "x")


def test_new_offerings_or_settings_give_a_fresh_tier():
    settings, tiers = preset("scaler"), TierCache()
    assert tiers.pin(POD, offerings(), settings) == ("a", "b")
    assert tiers.pin(POD, offerings(POOLS[1:]), settings) == ("b", "x")
    narrow = dataclasses.replace(settings, pinning=dataclasses.replace(settings.pinning,
                                                                        tier_max_pools=1))
    off = offerings()
    assert tiers.pin(POD, off, narrow) == pin_for(POD, off, narrow) == ("a",)


# --- expected lost work, and the pools a miss scores -------------------------------------

# flaky (c7i.large Spot, 0.25 interruptions a month) at $0.100/h, steady (c5.large Spot,
# 0.025) at $0.120/h: at 24 h of lost work flaky is cheaper, at 1,000 h steady is.
SPOT_POOLS = [PoolSpec("flaky", ("c7i.large",), SPOT, price_usd_per_hour=0.100),
              PoolSpec("steady", ("c5.large",), SPOT, price_usd_per_hour=0.120)]
TRAIN = PodSpec("train", requests=Resources(cpu_milli=500, memory_mib=1024, pods=1))


def test_on_demand_pools_answer_pods_of_a_class_alike_whatever_their_lost_work():
    off, settings, tiers = offerings(), preset("scaler"), TierCache()
    first = tiers.pin(POD, off, settings, lost_work_h=0.5)
    assert tiers.pin(POD, off, settings, lost_work_h=700.0) is first
    assert first == pin_for(POD, off, settings, lost_work_h=700.0)


def test_spot_pools_give_a_fresh_tier_when_the_lost_work_changes():
    off, settings, tiers = offerings(SPOT_POOLS), preset("scaler"), TierCache()
    assert tiers.pin(TRAIN, off, settings, lost_work_h=24.0) == ("flaky", "steady")
    assert tiers.pin(TRAIN, off, settings, lost_work_h=1000.0) == ("steady", "flaky")
    assert tiers.pin(TRAIN, off, settings, lost_work_h=24.0) == ("flaky", "steady")


def test_a_tier_found_while_a_pool_was_out_does_not_hide_it_once_back():
    # The pools a miss scores are found with every pool available, not with the masks of
    # the first pod of the class.
    off, settings, tiers = offerings(), preset("scaler"), TierCache()
    without_a = np.array([p.name != "a" for p in off.pools])
    assert tiers.pin(POD, off, settings, available=without_a) == ("b", "x")
    room = np.full(len(off), np.inf)
    room[off.index("b")] = 0.0
    assert tiers.pin(POD, off, settings, headroom=room) == pin_for(POD, off, settings,
                                                                headroom=room) == ("a",)


def test_scoring_only_the_pools_a_class_can_run_prices_lost_work_as_the_full_row():
    # A hand-built table whose on-demand pool "b" carries a risk although it has no
    # interruption rate. An on-demand pod can run on a, b and x only: scored over those
    # alone, b would be charged that risk; in the full row it is charged its rate x the
    # pod's lost work (none), as cost_matrix prices every pool once some pool has a rate.
    built = offerings([*POOLS, PoolSpec("s", ("m5.large",), SPOT, price_usd_per_hour=0.5)])
    risk = built.risk.copy()
    risk[built.index("b")] = 1.0
    off = dataclasses.replace(built, risk=risk, cost=built.price + risk)
    settings = preset("scaler")
    pod = dataclasses.replace(POD, capacity_types=("on-demand",))
    columns = np.array(sorted(off.index(name) for name in ("a", "b", "x")))
    full = pin_tier(pod, off, settings, lost_work_h=2.0)
    assert full == ("a", "b")
    assert pin_tier(pod, off, settings, lost_work_h=2.0, columns=columns) == full


def test_cached_answers_are_pin_for_s_across_masks_readmissions_and_lost_work():
    rng = np.random.default_rng(7)
    pools = [PoolSpec("a", ("m5a.large",)), PoolSpec("b", ("m5.large",)),
             PoolSpec("x", ("m5.xlarge",), pack=True), PoolSpec("g", ("g4dn.xlarge",)),
             PoolSpec("c", ("c5.large",), SPOT), PoolSpec("r", ("r5.large",), SPOT, pack=True),
             PoolSpec("m", ("m5.2xlarge",), SPOT)]
    off, settings, tiers = offerings(pools), preset("scaler"), TierCache()
    pods = [POD, TRAIN, dataclasses.replace(TRAIN, name="solo", one_per_node=True),
            PodSpec("big", requests=Resources(cpu_milli=3000, memory_mib=12000, pods=1)),
            PodSpec("gpu", requests=Resources(cpu_milli=1000, memory_mib=4096, gpu=1, pods=1)),
            PodSpec("huge", requests=Resources(cpu_milli=64000, pods=1))]
    for _ in range(400):
        pod = pods[rng.integers(len(pods))]
        available = rng.random(len(off)) < 0.7
        headroom = rng.choice([0.0, 1.0, np.inf], size=len(off))
        readmit = ~available & (rng.random(len(off)) < 0.5)
        lost = float(rng.choice([0.1, 24.0, 1000.0]))
        got = tiers.pin(pod, off, settings, available=available, headroom=headroom,
                        readmit=readmit, lost_work_h=lost)
        want = pin_for(pod, off, settings, available=available, headroom=headroom,
                       readmit=readmit, lost_work_h=lost)
        assert (got, got.exclusive) == (want, want.exclusive)
