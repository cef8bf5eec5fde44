"""TierCache: pin_for's answer per pod class, fresh whenever the offerings, the settings, a
pool's availability (backoff), its headroom, its readmission or, once some pool has an
interruption rate, the pod's expected lost work changes; a new answer scored from the
class's row is cost_matrix's, to the bit.

Pools (bundled catalog, on-demand): m5a.large $0.086/h, m5.large $0.096/h, m5.xlarge $0.192/h.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from scaler.core.catalog import Catalog
from scaler.core.model import SPOT, PodSpec, PoolSpec, Resources
from scaler.core.offerings import build_offerings, pool_table
from scaler.core.pinning import TierCache, class_row, pin_for
from scaler.core.placement import cost_matrix
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


def test_a_tables_room_keys_tiers_as_its_headroom_does_and_follows_its_updates():
    off, settings, tiers = offerings(), preset("scaler"), TierCache()
    sized = [dataclasses.replace(p, max_size=3) for p in POOLS]
    table = pool_table(sized, off)
    assert tiers.pin(POD, off, settings, headroom=table.headroom, room=table.room) == ("a", "b")
    # "a" at its max: the updated table's room leaves it out, as its headroom does.
    full = [dataclasses.replace(sized[0], current_size=3), *sized[1:]]
    later = table.updated(full)
    assert later.room[0].tolist() == (later.headroom >= 1).tolist() == [False, True, True]
    got = tiers.pin(POD, off, settings, headroom=later.headroom, room=later.room)
    assert got == pin_for(POD, off, settings, headroom=later.headroom) == ("b", "x")
    assert tiers.pin(POD, off, settings, headroom=table.headroom, room=table.room) == ("a", "b")


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


def test_a_class_row_prices_lost_work_as_the_full_row_does():
    # A hand-built table whose on-demand pool "b" carries a risk although it has no
    # interruption rate. An on-demand pod runs on a, b and x only; once some pool has a
    # rate, cost_matrix charges every pool its rate x the pod's lost work (for b: none), so
    # neither the pools' own risk nor whether the class's pools have a rate decides.
    built = offerings([*POOLS, PoolSpec("s", ("m5.large",), SPOT, price_usd_per_hour=0.5)])
    risk = built.risk.copy()
    risk[built.index("b")] = 1.0
    off = dataclasses.replace(built, risk=risk, cost=built.price + risk)
    settings = preset("scaler")
    pod = dataclasses.replace(POD, capacity_types=("on-demand",))
    full = pin_for(pod, off, settings, lost_work_h=2.0)
    assert full == ("a", "b")
    assert TierCache().pin(pod, off, settings, lost_work_h=2.0) == full


def test_a_pool_whose_own_cost_is_not_finite_is_still_scored_by_the_pods_lost_work():
    # Spot pool "c" with an infinite risk for a pod nothing is known of: a pod whose lost
    # work is known is charged by it instead, and c is then the cheapest.
    built = offerings([*POOLS, PoolSpec("c", ("c5.large",), SPOT, price_usd_per_hour=0.02)])
    risk = built.risk.copy()
    risk[built.index("c")] = np.inf
    off = dataclasses.replace(built, risk=risk, cost=built.price + risk)
    settings = preset("scaler")
    small = dataclasses.replace(POD, requests=Resources(cpu_milli=500, memory_mib=1024, pods=1))
    full = pin_for(small, off, settings, lost_work_h=1.0)
    assert full[0] == "c"
    assert TierCache().pin(small, off, settings, lost_work_h=1.0) == full


# Spot and on-demand pools, two of them packing; pods of each kind the row handles.
MIXED = [PoolSpec("a", ("m5a.large",)), PoolSpec("b", ("m5.large",)),
         PoolSpec("x", ("m5.xlarge",), pack=True), PoolSpec("g", ("g4dn.xlarge",)),
         PoolSpec("c", ("c5.large",), SPOT), PoolSpec("r", ("r5.large",), SPOT, pack=True),
         PoolSpec("m", ("m5.2xlarge",), SPOT), *SPOT_POOLS]
PODS = [POD, TRAIN, dataclasses.replace(TRAIN, name="solo", one_per_node=True),
        PodSpec("big", requests=Resources(cpu_milli=3000, memory_mib=12000, pods=1)),
        PodSpec("gpu", requests=Resources(cpu_milli=1000, memory_mib=4096, gpu=1, pods=1)),
        PodSpec("huge", requests=Resources(cpu_milli=64000, pods=1))]


def lost_hours(rng: np.random.Generator) -> float | None:
    # None, the ends, and anywhere in between (where two pools' charges cross).
    return [None, 0.0, 1e6, float(rng.uniform(0.0, 2000.0))][rng.integers(4)]


def test_a_class_row_costs_what_cost_matrix_gives_to_the_bit():
    rng = np.random.default_rng(11)
    off, settings = offerings(MIXED), preset("scaler")
    for pod in PODS:
        row = class_row(pod, off, settings)
        assert row is not None
        req = pod.requests.as_array()[None, :]
        for _ in range(60):
            ok = rng.random(len(off)) < 0.7
            lost = lost_hours(rng)
            full = cost_matrix([pod], req, off, ok, settings.placement,
                               lost_work_h=None if lost is None else np.array([lost]))[0][0]
            cost, columns = row.cost(off, ok, lost)
            assert full[columns].tobytes() == cost.tobytes()
            assert not np.isfinite(np.delete(full, columns)).any()


def test_cached_answers_are_pin_for_s_across_masks_readmissions_and_lost_work():
    rng = np.random.default_rng(7)
    off, settings, tiers = offerings(MIXED), preset("scaler"), TierCache()
    for _ in range(600):
        pod = PODS[rng.integers(len(PODS))]
        available = rng.random(len(off)) < 0.7
        headroom = rng.choice([0.0, 1.0, np.inf], size=len(off))
        readmit = ~available & (rng.random(len(off)) < 0.5)
        lost = lost_hours(rng)
        got = tiers.pin(pod, off, settings, available=available, headroom=headroom,
                        readmit=readmit, lost_work_h=lost)
        want = pin_for(pod, off, settings, available=available, headroom=headroom,
                       readmit=readmit, lost_work_h=lost)
        assert (got, got.exclusive) == (want, want.exclusive)
