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


def _dask_cluster(overrides: dict[str, str], seed: int) -> Counter[float]:
    # Eight like Dask workers on per-AZ Spot groups in one zone; a reclaim takes every node
    # of its capacity pool.
    types = ("m7i.large", "m5.large", "m5a.large", "c5.large")
    pools = [pool(t, name=f"{t}-1a", capacity_type="spot", zones=["us-east-1a"]) for t in types]
    pods = [pod(f"worker-{i}", cpu="1", memory="4Gi", duration_s=12 * 3600.0,
                capacity_types=["spot"]) for i in range(8)]
    sim = simulate(pods, pools=pools, seed=seed, overrides={
        "hazard_scale": "1000", "reclaim_fraction": "1", "diversify_band": "0.10", **overrides,
    })
    return Counter(t for t, what, _ in sim.world.timeline if what == "spot-notice")


def test_a_spread_dask_cluster_loses_a_third_of_its_workers_to_one_reclaim_not_all():
    for seed in (1, 2, 3):  # seed 0 has no reclaim within the 12 hours on one pool
        together = _dask_cluster({"diversify_max_pools": "1"}, seed)
        spread = _dask_cluster({}, seed)
        assert together and spread, "the test must actually reclaim"
        # The first reclaim: the whole cluster when it sits on one pool, a pool's share of it
        # (3, 3 and 2 workers) when spread. (Replacements are a burst of their own later.)
        assert together[min(together)] == 8
        assert spread[min(spread)] <= 3


def test_the_oracle_puts_every_pod_of_a_burst_on_the_cheapest_pool_unspread(catalog):
    from simulations.scorecard import fit_prices

    types = ("m7i.large", "m5.large", "m5a.large")
    pools = [pool(t, name=t, capacity_type="spot", zones=["us-east-1a"]) for t in types]
    pods = [pod(f"w-{i}", cpu="1", memory="4Gi") for i in range(8)]
    fits = fit_prices(pods, pools, catalog)[0]
    assert len(set(fits.values())) == 1
