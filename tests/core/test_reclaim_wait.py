"""After a Spot interruption: waiting out the reclaimed pool's backoff against taking the next
pool, by expected cost over the pod's expected remaining life (issue 11).

Pools from the bundled catalog: spot-a (m5.large Spot, the cheapest), od-a (m5.large
on-demand), big (m5.4xlarge on-demand).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from scaler.core.actions import Drain, ScaleUp
from scaler.core.catalog import Catalog
from scaler.core.decide import decide
from scaler.core.interruptions import SpotInterruption
from scaler.core.lifecycle import (
    PodCost,
    drained_lives,
    migrations,
    misplaced,
    respond,
    wait_for_reclaimed,
    worth_moving,
)
from scaler.core.memory import Memory
from scaler.core.model import PodSpec, PoolSpec, Resources
from scaler.core.offerings import build_offerings, pool_table
from scaler.core.pinning import pin_for
from scaler.core.settings import preset
from scaler.core.state import (
    ANNOTATION_PINNED_POOLS,
    ANNOTATION_RESTARTABLE,
    BoundPod,
    ClusterView,
    LaunchFailure,
    Node,
    PendingPod,
)

POOLS = [
    PoolSpec("spot-a", ("m5.large",), capacity_type="spot", max_size=10),
    PoolSpec("od-a", ("m5.large",), max_size=10),
    PoolSpec("big", ("m5.4xlarge",), max_size=10),
]
I1 = "i-0123456789abcdef0"
WEEK_S = 7 * 86400.0


@pytest.fixture(scope="module")
def offerings():
    off, problems = build_offerings(POOLS, Catalog.load())
    assert not problems
    return off


def pod(name: str) -> PodSpec:
    return PodSpec(name, requests=Resources(cpu_milli=500, memory_mib=2048, pods=1))


def spot_view(started_s: float, now: float = 1000.0) -> ClusterView:
    return ClusterView(
        now,
        nodes=(Node("spot-1", "spot-a", "m5.large", "spot", instance_id=I1),),
        bound=(BoundPod(pod("nb"), "spot-1", started_s=started_s),
               BoundPod(pod("ds"), "spot-1", daemonset=True)),
    )


def open_now(offerings):
    available = np.ones(len(offerings), dtype=bool)
    available[offerings.get("spot-a")] = False
    return available


def test_a_long_running_pod_waits_for_its_reclaimed_pool_and_a_young_one_takes_the_next(offerings):
    reclaimed = {offerings.get("spot-a"): 1180.0}
    pods = [pod("notebook"), pod("batch")]
    wait = wait_for_reclaimed(pods, [WEEK_S, 10.0], offerings, open_now(offerings), reclaimed,
                              preset("scaler"), now=1000.0)
    # A week on on-demand m5.large against 3 minutes' wait: wait. 10 s of expected life
    # does not pay for 3 minutes: take od-a now.
    assert wait == [True, False]


def test_no_life_known_or_the_setting_off_means_no_wait(offerings):
    reclaimed = {offerings.get("spot-a"): 1180.0}
    s = preset("scaler")
    off = dataclasses.replace(s, lifecycle=dataclasses.replace(s.lifecycle, wait_for_reclaimed_pool=False))
    assert wait_for_reclaimed([pod("a")], [0.0], offerings, open_now(offerings), reclaimed, s,
                              now=1000.0) == [False]
    assert wait_for_reclaimed([pod("a")], [WEEK_S], offerings, open_now(offerings), reclaimed, off,
                              now=1000.0) == [False]


def test_a_pod_with_nothing_else_to_run_on_waits_whatever_its_life(offerings):
    reclaimed = {offerings.get("spot-a"): 1180.0}
    nothing = np.zeros(len(offerings), dtype=bool)
    assert wait_for_reclaimed([pod("a")], [1.0], offerings, nothing, reclaimed, preset("scaler"),
                              now=1000.0) == [True]


def answer(v: ClusterView, offerings):
    notice = SpotInterruption(I1, "terminate", deadline_s=1120.0, event_id="e1", at_s=1000.0)
    return respond(notice, v, POOLS, offerings, Memory(), preset("scaler"), now=1000.0,
                   rng=np.random.default_rng(0))


def test_an_interrupted_long_running_pod_is_drained_but_not_replaced_on_a_dearer_pool(offerings):
    actions = answer(spot_view(started_s=1000.0 - 86400.0), offerings)
    (drain,) = [a for a in actions if isinstance(a, Drain)]
    assert [p.name for p in drain.pods] == ["nb"]
    # No on-demand node for it and no pin to one: it waits for spot-a (decide() launches).
    assert not [a for a in actions if isinstance(a, ScaleUp)]
    young = answer(spot_view(started_s=995.0), offerings)
    assert [a.pool for a in young if isinstance(a, ScaleUp)] == ["od-a"]


def test_drained_lives_are_the_workload_pods_ages():
    assert drained_lives(spot_view(started_s=400.0), "spot-1", now=1000.0) == {"default/nb": 600.0}


def test_decide_holds_the_drained_pod_until_the_backoff_ends_then_launches_on_the_reclaimed_pool(
    offerings,
):
    memory = Memory()
    memory.reclaimed("spot-a", now=1000.0, until_s=1180.0, lives={"default/nb": 86400.0})
    s = preset("scaler")

    def tick(now: float, *pods: PodSpec):
        v = ClusterView(now, pending=tuple(PendingPod(p, 1000.0) for p in pods))
        memory.forget(now=now, pending={p.key for p in pods})
        return decide(v, pool_table(POOLS, offerings), memory, s, now=now, rng=np.random.default_rng(0))

    d = tick(1100.0, pod("nb"), pod("fresh"))
    # The pod no interruption drained is placed at once, on the next pool (spot-a backs off).
    assert [(a.pool, a.pods) for a in d.actions if isinstance(a, ScaleUp)] == [("od-a", ("default/fresh",))]
    assert d.wake_at_s is not None and d.wake_at_s <= 1180.0
    d = tick(1180.0, pod("nb"))
    assert [(a.pool, a.pods) for a in d.actions if isinstance(a, ScaleUp)] == [("spot-a", ("default/nb",))]


def test_a_reclaimed_pool_is_readmitted_by_pins_but_not_after_a_failed_launch():
    memory = Memory()
    memory.reclaimed("spot-a", now=1000.0, until_s=1180.0, lives={})
    assert memory.backing_off("spot-a", 1100.0) and memory.reclaim_only("spot-a", 1100.0)
    memory.launch_failed(LaunchFailure("spot-a", 1100.0, "InsufficientInstanceCapacity"), ttl_s=300.0)
    assert memory.backing_off("spot-a", 1200.0) and not memory.reclaim_only("spot-a", 1200.0)


def test_a_pin_made_during_a_reclaim_admits_the_reclaimed_pool_first_then_the_next(offerings):
    s = preset("scaler")
    now_open = open_now(offerings)
    readmit = ~now_open
    assert pin_for(pod("a"), offerings, s, available=now_open) == ("od-a",)
    assert pin_for(pod("a"), offerings, s, available=now_open, readmit=readmit) == ("spot-a", "od-a")
    # Nothing reclaimed: the same tier as ever.
    assert pin_for(pod("a"), offerings, s, available=now_open,
                   readmit=np.zeros(len(offerings), dtype=bool)) == ("od-a",)


def restartable(name: str) -> PodSpec:
    return PodSpec(name, requests=Resources(cpu_milli=500, memory_mib=2048, pods=1),
                   annotations=((ANNOTATION_RESTARTABLE, "true"), (ANNOTATION_PINNED_POOLS, "spot-a")))


def test_a_restartable_replacement_goes_back_when_the_saving_over_its_life_beats_the_restart():
    # On a node at 1.5x its fit: under misplaced_factor (2), so misplaced() leaves it alone.
    # Saving $0.5/h; a restart costs 600 s of its $1.5/h node = $0.25: worth it after 30 min.
    s = preset("scaler")
    old = PodCost(restartable("old"), "od-1", "od-a", 1.5, 1.5, 1.0, started_s=0.0)
    young = PodCost(restartable("young"), "od-2", "od-a", 1.5, 1.5, 1.0, started_s=3600.0 - 600.0)
    stays = PodCost(pod("stays"), "od-3", "od-a", 1.5, 1.5, 1.0, started_s=0.0)
    at_fit = PodCost(restartable("fit"), "spot-1", "spot-a", 1.0, 1.0, 1.0, started_s=0.0)
    costs = [old, young, stays, at_fit]
    assert misplaced(costs, s) == []
    assert worth_moving(costs, s, now=3600.0) == [old]
    (evict,) = migrations(worth_moving(costs, s, now=3600.0), Memory(), s, costs=costs)
    assert evict.pod.name == "old" and evict.node == "od-1"


def test_a_partly_spot_on_demand_pool_is_priced_and_risked_by_its_mix():
    catalog = Catalog.load()
    half = PoolSpec("half", ("m5.large",), spot_share=0.5)
    off, problems = build_offerings([half, POOLS[0], POOLS[1]], catalog)
    assert not problems
    h, spot, od = off.get("half"), off.get("spot-a"), off.get("od-a")
    assert off.price[h] == pytest.approx((off.price[spot] + off.price[od]) / 2)
    # Half its nodes are interrupted at the Spot rate; redone work costs the pool's price.
    assert off.interruptions_per_h is not None
    assert off.interruptions_per_h[h] == pytest.approx(off.interruptions_per_h[spot] / 2)
    per_dollar = (off.cost[spot] - off.price[spot]) / off.price[spot]
    assert off.cost[h] - off.price[h] == pytest.approx(per_dollar / 2 * off.price[h])
    assert off.cost[spot] > off.price[spot]  # the Spot pool does carry a risk to halve


def test_a_rebalance_recommendation_launches_nothing_in_a_group_that_rebalances_itself():
    from scaler.core.actions import Cordon
    from scaler.core.interruptions import RebalanceRecommendation

    catalog = Catalog.load()
    notice = RebalanceRecommendation(I1, at_s=1000.0, event_id="r1")
    for rebalancing, launches in ((False, ["od-a"]), (True, [])):
        pools = [dataclasses.replace(POOLS[0], capacity_rebalance=rebalancing), *POOLS[1:]]
        off, _ = build_offerings(pools, catalog)
        actions = respond(notice, spot_view(started_s=0.0), pools, off, Memory(), preset("scaler"),
                          now=1000.0, rng=np.random.default_rng(0))
        assert [a.node for a in actions if isinstance(a, Cordon)] == ["spot-1"]
        assert [a.pool for a in actions if isinstance(a, ScaleUp)] == launches
