"""Faults in the simulator, through the same Reconciler and decide() as live: instances
that never register, and the removal protocol's calls."""

from __future__ import annotations

from scaler.core.state import TAINT_REMOVING
from simulations.testing import pod, pool, simulate


def test_a_pool_whose_nodes_never_register_is_given_up_and_its_pod_runs_on_the_next_pool():
    sim = simulate(
        [pod("nb", cpu="1", memory="4Gi", arrival_s=0, duration_s=600)],
        pools=[pool("m5.large", name="cheap", max_size=5), pool("m5.xlarge", name="next", max_size=5)],
        overrides={"never_register_rate_by_pool": "cheap:1", "provision_timeout_s": "300"},
    )
    sc = sim.scorecard()
    assert sc.pods_finished == 1 and sc.pods_lost == 0
    timeline = sim.world.timeline
    (launched,) = [(t, s) for t, what, s in timeline if what == "launch-unregistered"]
    (given_up,) = [(t, s) for t, what, s in timeline if what == "given-up"]
    assert launched[1].endswith(" cheap") and given_up[1] == launched[1].split()[0]
    assert given_up[0] == launched[0] + 300.0  # at the provision timeout, not later
    assert sim.fleet.calls_to("give_up")[0].args == ("cheap", 1)
    # Placed again at once (not after the 180 s backoff) on the next pool, where it ran.
    ups = [c.args for c in sim.fleet.calls_to("set_desired")]
    assert ups[0] == ("cheap", 1) and ("next", 1) in ups
    (bound,) = [(t, s) for t, what, s in timeline if what == "bound"]
    assert bound[0] < given_up[0] + 1.0 + 90.0 + 1.0  # re-tick, boot 90 s
    assert sim.world.desired["cheap"] == 0


def test_instances_that_never_register_at_random_lose_no_pod_and_are_all_given_up():
    pods = [pod(f"job-{i}", cpu="1", memory="2Gi", arrival_s=120.0 * i, duration_s=1800.0)
            for i in range(30)]
    sim = simulate(pods, pools=[pool("m5.large", max_size=50), pool("m5a.large", max_size=50)],
                   overrides={"never_register_rate": "0.3"}, seed=5)
    sc = sim.scorecard()
    assert sc.pods_finished == 30 and sc.pods_lost == 0
    timeline = sim.world.timeline
    duds = [s.split()[0] for _, what, s in timeline if what == "launch-unregistered"]
    assert len(duds) >= 5, "the test must actually launch instances that never register"
    assert sorted(s for _, what, s in timeline if what == "given-up") == sorted(duds)


def test_an_idle_node_is_tainted_its_pods_read_live_then_terminated():
    sim = simulate([pod("nb", cpu="1", memory="2Gi", arrival_s=0, duration_s=600)],
                   pools=[pool("m5.large", max_size=5)], until_s=1200.0)
    (removed,) = [s for _, what, s in sim.world.timeline if what == "removed"]
    calls = sim.cluster.calls + sim.fleet.calls
    calls.sort(key=lambda c: c.at_s)  # stable: the cluster's calls first within one instant
    steps = [
        c.method for c in calls
        if c.method in ("taint", "pods_on", "terminate", "untaint") and removed in c.args
    ]
    assert steps == ["taint", "pods_on", "terminate"]
    (taint,) = sim.cluster.calls_to("taint")
    assert taint.args[1].key == TAINT_REMOVING
