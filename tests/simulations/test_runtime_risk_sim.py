"""Spot risk by expected runtime in the simulator: the history a pod is judged by is the
simulated cluster's own (runs that finished), read from the view as the live one is.

Two Spot pools of 2-vCPU nodes, prices set by hand: ``flaky`` (c7i.large, Spot Advisor
bucket 4: 0.25 interruptions a month) at $0.100/h and ``steady`` (c5.large, bucket 0: 0.025)
at $0.105/h. A pod expected to lose L hours costs 0.100 x (1 + 0.25/730 x L) on flaky and
0.105 x (1 + 0.025/730 x L) on steady: steady wins once L > 0.005 / (0.025/730 -
0.002625/730) = 163 h. A pod nothing is known of loses ``spot_lost_work_h`` (24 h): flaky.
"""

from __future__ import annotations

from simulations.testing import pod, pool, simulate

POOLS = [
    pool("c7i.large", name="flaky", capacity_type="spot", price_usd_per_hour=0.100),
    pool("c5.large", name="steady", capacity_type="spot", price_usd_per_hour=0.105),
]
NO_DRAWS = {"interruptions": "false"}  # placement is under test, not luck


def pools_of(sim) -> dict[str, list[str]]:
    return {p.spec.name: p.pools for p in sim.world.pods.values()}


def test_a_workloads_finished_run_sends_its_next_pod_to_the_steadier_pool():
    # train-bbbbb runs 2,000 h; its successor (the same Job's next pod) arrives after it
    # finished: a run of 2,000 h expects 1,000 h lost to an interruption, so it goes to
    # the pool reclaimed a tenth as often. The first knew nothing: 24 h, the cheaper pool.
    pods = [
        pod("train-bbbbb", cpu="1", memory="1Gi", duration_s=2000 * 3600.0),
        pod("train-ccccc", cpu="1", memory="1Gi", arrival_s=2001 * 3600.0, duration_s=3600.0),
        pod("other", cpu="1", memory="1Gi", arrival_s=2001 * 3600.0, duration_s=3600.0),
    ]
    sim = simulate(pods, pools=POOLS, overrides=NO_DRAWS)
    assert pools_of(sim) == {
        "train-bbbbb": ["flaky"],
        "train-ccccc": ["steady"],
        # Another workload of the namespace: one run is too little namespace history.
        "other": ["flaky"],
    }
    history = sim.world.snapshot(sim.clock.now()).runtimes
    assert history.workloads["default/train"] == (2000 * 3600.0, 3600.0)
    assert sim.scorecard().pods_lost == 0


def test_with_risk_by_runtime_off_every_pod_is_charged_spot_lost_work_h():
    pods = [
        pod("train-bbbbb", cpu="1", memory="1Gi", duration_s=2000 * 3600.0),
        pod("train-ccccc", cpu="1", memory="1Gi", arrival_s=2001 * 3600.0, duration_s=3600.0),
    ]
    sim = simulate(pods, pools=POOLS, overrides={**NO_DRAWS, "spot_risk_by_runtime": "false"})
    assert pools_of(sim) == {"train-bbbbb": ["flaky"], "train-ccccc": ["flaky"]}
