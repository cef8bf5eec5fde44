"""Reviews run in the simulator as the live leader runs them: misplaced restartable pods
migrate."""

from __future__ import annotations

from typing import Any

from scaler.core.state import ANNOTATION_RESTARTABLE
from scaler.loop.reconciler import Reconciler
from scaler.loop.review import REVIEW_INTERVAL_S
from scaler.ports import InsufficientCapacity
from simulations.testing import pod, pool, simulate

SMALL = pool("m5.large", name="small")  # $0.096/h
BIG = pool("r5.2xlarge", name="big")  # $0.504/h: over misplaced_factor (2x) the small pool


def _small_fails_once(**kwargs: Any) -> Reconciler:
    kwargs["fleet"].fail_next("set_desired", InsufficientCapacity("small: no capacity"))
    return Reconciler(**kwargs)


def _pods(restartable: bool) -> list:
    annotations = {ANNOTATION_RESTARTABLE: "true"} if restartable else {}
    return [
        # Its launch fails: the small pool backs off for launch_failure_ttl_s (180 s).
        pod("first", cpu="1", memory="2Gi", duration_s=3600),
        # Admitted while small backs off: pinned to big, where it runs.
        pod("mover", cpu="1", memory="2Gi", arrival_s=100, duration_s=7200,
            annotations=annotations),
    ]


def _spot_then_on_demand():
    """A restartable 4-hour job on Spot (hazard 3000x the Advisor's): the first seed whose
    job was replaced on the on-demand pool after a reclaim (young when interrupted, it did
    not wait for the Spot pool)."""
    spot = pool("m5.large", name="spot", capacity_type="spot")  # $0.033/h
    od = pool("m5.large", name="od")  # $0.096/h: misplaced at over 2x its Spot fit
    job = pod("job", cpu="1", memory="2Gi", duration_s=4 * 3600,
              annotations={ANNOTATION_RESTARTABLE: "true"})
    for seed in range(100):
        sim = simulate([job], pools=[spot, od], seed=seed, overrides={"hazard_scale": "3000"})
        if "od" in sim.world.pods["default/job"].pools:
            return sim
    raise AssertionError("no seed put the job on the on-demand pool")


def test_a_review_moves_a_reclaimed_pods_replacement_back_to_spot_once_it_reopens() -> None:
    sim = _spot_then_on_demand()
    job = sim.world.pods["default/job"]
    at = job.pools.index("od")
    assert job.pools[at + 1] == "spot"
    moved_at, left = sim.reconciler.memory.migrated["default/job"]
    assert left == "od"
    assert moved_at % REVIEW_INTERVAL_S == 0  # by a review, not a drain
    assert (moved_at, "evicted", "default/job") in sim.world.timeline
    # Not while Spot still backed off after the reclaim: the replacement would have been
    # admitted to spot,od again and bound back on the same on-demand node.
    notice = max(t for t, w, _ in sim.world.timeline if w == "spot-notice" and t < moved_at)
    assert moved_at >= notice + sim.settings.lifecycle.interrupted_pool_ttl_s
    assert sim.scorecard().pods_lost == 0


def test_a_pod_that_is_not_restartable_stays_and_no_review_runs() -> None:
    sim = simulate(_pods(False), pools=[SMALL, BIG], reconciler_factory=_small_fails_once)
    assert sim.world.pods["default/mover"].pools == ["big"]
    assert sim.reviews == 0
