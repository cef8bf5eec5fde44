"""Spot reclaims hit a capacity pool (type x zone): several nodes warned at one instant."""

from __future__ import annotations

from collections import Counter

from simulations.testing import pod, pool, simulate


def _notices_per_instant(overrides: dict[str, str]) -> Counter[float]:
    # Six 12-hour jobs at once on one Spot pool: six nodes of one capacity pool.
    pods = [pod(f"w-{i}", cpu="1", memory="2Gi", duration_s=12 * 3600.0,
                capacity_types=["spot"]) for i in range(6)]
    sim = simulate(pods, pools=[pool("m5.large", name="spot", capacity_type="spot")],
                   overrides={"hazard_scale": "1000", **overrides}, seed=1)
    return Counter(t for t, what, _ in sim.world.timeline if what == "spot-notice")


def test_a_reclaim_warns_every_node_of_the_pool_at_the_same_instant():
    per_instant = _notices_per_instant({"reclaim_fraction": "1"})
    assert per_instant, "the test must actually reclaim"
    # The first reclaim finds all six nodes running and takes them all.
    assert max(per_instant.values()) == 6


def test_independent_draws_warn_one_node_at_a_time():
    per_instant = _notices_per_instant({"reclaim_by_pool": "false"})
    assert per_instant and max(per_instant.values()) == 1


def test_a_partial_reclaim_takes_some_nodes_of_the_pool_not_all():
    per_instant = _notices_per_instant({"reclaim_fraction": "0.5"})
    assert any(1 < n < 6 for n in per_instant.values())
