"""TierCache: pin_for's answer per pod class, fresh whenever the offerings, the settings, a
pool's availability (backoff), its headroom or its readmission changes.

Pools (bundled catalog, on-demand): m5a.large $0.086/h, m5.large $0.096/h, m5.xlarge $0.192/h.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from scaler.core.catalog import Catalog
from scaler.core.model import PodSpec, PoolSpec, Resources
from scaler.core.offerings import build_offerings
from scaler.core.pinning import TierCache, pin_for
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
