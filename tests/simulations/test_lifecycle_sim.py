"""Node lifecycle in the simulator, through the same Reconciler.respond and decide() as live."""

from __future__ import annotations

from pathlib import Path

from simulations.testing import pod, pool, simulate

TRACES = Path(__file__).resolve().parents[2] / "traces"


def test_a_spot_heavy_trace_under_injected_interruptions_loses_no_pod_and_drains_in_time():
    # 40 one-hour Spot jobs on two Spot pools, interruptions 2,000x the Advisor's rates.
    pods = [pod(f"job-{i}", cpu="1", memory="2Gi", arrival_s=60.0 * i, duration_s=3600.0,
                capacity_types=["spot"]) for i in range(40)]
    pools = [pool("m5.large", name="spot-m5", capacity_type="spot"),
             pool("m5a.large", name="spot-m5a", capacity_type="spot")]
    sim = simulate(pods, pools=pools, overrides={"hazard_scale": "2000"}, seed=3)
    sc = sim.scorecard()
    assert sc.interruptions >= 5, "the test must actually interrupt nodes"
    assert sc.pods_lost == 0 and sc.pods_finished == 40
    timeline = sim.world.timeline
    notices = [(t, node) for t, what, node in timeline if what == "spot-notice"]
    assert len(notices) == sc.interruptions
    for t_notice, node in notices:
        # Every pod on the node was evicted at the warning, before the node was reclaimed
        # two minutes later (the reconciler drained it and terminated it at once).
        evicted = [t for t, what, _ in timeline if what == "evicted" and t == t_notice]
        gone = [t for t, what, n in timeline if what in ("removed", "reclaimed") and n == node]
        assert gone and min(gone) <= t_notice + 120.0
        assert all(t <= t_notice + 120.0 - 15.0 for t in evicted)


def test_idle_gpu_pools_return_to_zero_between_training_bursts():
    sim = simulate(
        [pod("burst-1", cpu="2", memory="8Gi", gpu=1, arrival_s=0, duration_s=1800),
         pod("burst-2", cpu="2", memory="8Gi", gpu=1, arrival_s=6 * 3600, duration_s=1800)],
        pools=[pool("g4dn.xlarge", name="gpu")],
        until_s=8 * 3600,  # past the second burst's idle timeout
    )
    sc = sim.scorecard()
    assert sc.pods_finished == 2
    # After each burst the GPU node is removed within its idle timeout: no GPU node lives
    # through the six quiet hours in between.
    removed = [t for t, what, _ in sim.world.timeline if what == "removed"]
    assert len(removed) == 2
    # Boot 180 s + GPUs advertised 120 s later, 30 min of work, then 120 s idle: removed.
    assert removed[0] == 1.0 + 300.0 + 1800.0 + 120.0
    assert removed[1] == 6 * 3600 + 1.0 + 300.0 + 1800.0 + 120.0
    assert sim.fleet.calls_to("set_desired")[-1].args == ("gpu", 1)  # scaled from zero again


def test_an_interrupted_long_running_pod_goes_back_to_spot_instead_of_staying_on_a_dear_pool():
    # Issue 11's lock-in, small: a week-long pod, a cheap Spot pool and a dear on-demand one.
    # Before: the interruption barred spot-m5 for 3 minutes, the replacement was pinned to
    # od-big and stayed there for the rest of the week (43 of 168 h on this seed).
    pods = [pod("notebook", cpu="1", memory="4Gi", arrival_s=0.0, duration_s=7 * 86400.0)]
    pools = [pool("m5.large", name="spot-m5", capacity_type="spot"),
             pool("m5.4xlarge", name="od-big")]

    def run(**overrides: str):
        sim = simulate(pods, pools=pools, overrides={"hazard_scale": "100", **overrides}, seed=0)
        return sim, sim.scorecard()

    sim, sc = run()
    assert sc.interruptions >= 1, "the test must actually interrupt the pod's node"
    assert sc.node_hours_by_pool.get("od-big", 0.0) == 0.0
    # It waited out the backoff (3 min) and a new Spot node's boot, no more.
    assert sc.pending_s["max"] < 600.0
    assert sum(1 for _, what, _ in sim.world.timeline if what == "bound") == sc.interruptions + 1
    # The same run with the old rule (replace on the next pool at once) is locked in.
    _, old = run(wait_for_reclaimed_pool="false")
    assert old.node_hours_by_pool.get("od-big", 0.0) > 24.0
