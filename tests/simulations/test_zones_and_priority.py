"""The trace fields for zones and priority act in the simulator through the same decision
code: spread replicas get one node per zone, an expendable pod buys nothing."""

from __future__ import annotations

from simulations.testing import pod, pool, simulate

ZONAL = [pool("m5.large", name=f"cpu-{z}", zones=[f"us-east-1{z}"]) for z in "abc"]
SPREAD = [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
           "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "web"}}}]


def launches(sim) -> list[str]:
    return sorted(what.split()[1] for _, kind, what in sim.world.timeline if kind == "launch")


def test_zone_spread_replicas_in_a_trace_get_one_node_per_zone() -> None:
    pods = [pod(f"web-{i}", cpu="1", memory="1Gi", duration_s=600, labels={"app": "web"},
                topologySpreadConstraints=SPREAD) for i in range(3)]
    sim = simulate(pods, pools=ZONAL, until_s=3000)
    assert launches(sim) == ["cpu-a", "cpu-b", "cpu-c"]
    assert sim.scorecard().pods_finished == 3


def test_an_expendable_pod_in_a_trace_never_buys_a_node() -> None:
    sim = simulate([pod("filler", cpu="1", memory="1Gi", duration_s=600, priority=-100)],
                   pools=ZONAL, until_s=3000)
    assert launches(sim) == []
