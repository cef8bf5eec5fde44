"""Global limits in the simulator: the same reconciler and core, simulated ports."""

from __future__ import annotations

from simulations.testing import pod, pool, simulate


def test_max_nodes_total_holds_pods_until_a_node_leaves_and_tells_them_why():
    pods = [pod(f"nb-{i}", memory="4Gi", arrival_s=0, duration_s=600) for i in range(3)]
    sim = simulate(pods, pools=[pool("m5.large", max_size=10)],
                   overrides={"max_nodes_total": "1", "idle_timeout_s": "0"})
    desired = [c.args[1] for c in sim.fleet.calls_to("set_desired")]
    assert desired and max(desired) == 1, desired
    told = [c for c in sim.cluster.calls_to("record_event") if c.args[1] == "NotTriggerScaleUp"]
    assert {c.args[0] for c in told} == {"default/nb-1", "default/nb-2"}
    assert all("limit max_nodes_total=1 reached" in c.args[2] for c in told)
    # Held, not lost: each ran once the one node was free again.
    assert sim.scorecard().pods_lost == 0
    assert all(sim.world.pods[f"default/nb-{i}"].pools for i in range(3))
