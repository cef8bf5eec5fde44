"""Each policy on small traces whose outcome can be checked by hand."""

from __future__ import annotations

import pytest

from scaler.core.catalog import node_allocatable
from scaler.core.model import Resources
from simulations.testing import pod, pool, simulate

SMALL = pool("m5.large", name="small")  # 2 vCPU, 8 GiB, $0.096/h
BIG = pool("r5.4xlarge", name="big")  # 16 vCPU, 128 GiB, $1.008/h


def removal_time(sim) -> float:
    return next(t for t, what, _ in sim.world.timeline if what == "removed")


def pool_of(sim, name: str) -> list[str]:
    return sim.world.pods[f"default/{name}"].pools


# --------------------------------------------------------------- the zero-request pod


def test_ca_puts_a_pod_without_requests_on_a_random_pool_and_pays_for_it() -> None:
    # least-waste scores 2.0 on every pool for a pod with no requests: all tie, and the
    # random fallback picks any node type, however large (DOMAIN.md).
    notebook = [pod("notebook", duration_s=3600)]
    runs = {
        seed: simulate(notebook, policy="ca-least-waste", seed=seed, capacity_types=("on-demand",))
        for seed in (1, 2)
    }
    scaler = simulate(notebook, policy="scaler", capacity_types=("on-demand",))
    picked = {seed: pool_of(sim, "notebook")[0] for seed, sim in runs.items()}
    assert picked[1] != picked[2]
    scaler_cost = scaler.scorecard().total_cost_usd
    for sim in runs.values():
        assert sim.scorecard().total_cost_usd > 5 * scaler_cost


def test_scaler_puts_a_pod_without_requests_on_the_cheapest_node_it_can_run_on() -> None:
    sim = simulate([pod("notebook", duration_s=3600)], capacity_types=("on-demand",))
    catalog = sim.catalog
    # Sized by the requestless floor (250m, 1Gi): the cheapest default pool with room for it.
    floor = Resources(cpu_milli=250, memory_mib=1024, pods=1)
    cheapest = min(
        (
            t
            for t in catalog
            if t.arch == "amd64" and not t.bare_metal and not t.gpu_count and not t.burstable
            and all(
                node_allocatable(t, ephemeral_storage_mib=20 * 1024).as_array()[:2]
                >= floor.as_array()[:2]
            )
        ),
        key=lambda t: (t.on_demand_usd_per_hour, t.memory_mib, t.vcpus, t.name),
    )
    assert pool_of(sim, "notebook") == [f"{cheapest.name}-on-demand"]
    sc = sim.scorecard()
    # Its price is the oracle's: only boot and idle time separate them.
    assert sc.waste_usd["oversized"] == pytest.approx(0.0)


# ------------------------------------------------------------------- scale-down


def one_pod_then_idle(policy: str):
    return simulate(
        [pod("job", cpu="1", memory="2Gi", duration_s=1000)],
        pools=[SMALL],
        policy=policy,
        until_s=5000,
    )


def test_karpenter_like_removes_an_empty_node_at_once() -> None:
    sim = one_pod_then_idle("karpenter-like")
    done = next(t for t, what, _ in sim.world.timeline if what == "done")
    assert removal_time(sim) == done
    assert sim.scorecard().waste_usd["idle"] == pytest.approx(0.0)


def test_ca_keeps_an_empty_node_ten_minutes() -> None:
    sim = one_pod_then_idle("ca-least-waste")
    done = next(t for t, what, _ in sim.world.timeline if what == "done")
    # scale-down-unneeded-time 10 min, acted on at the next 10 s scan.
    assert done <= removal_time(sim) - 600 < done + 10
    assert sim.scorecard().waste_usd["idle"] == pytest.approx(
        (removal_time(sim) - done) * 0.096 / 3600
    )


def test_scaler_removes_an_empty_node_after_its_idle_timeout() -> None:
    sim = one_pod_then_idle("scaler")
    done = next(t for t, what, _ in sim.world.timeline if what == "done")
    assert removal_time(sim) == done + 120


def test_the_idle_timeout_can_be_overridden() -> None:
    sim = simulate(
        [pod("job", cpu="1", memory="2Gi", duration_s=1000)],
        pools=[SMALL],
        overrides={"idle_timeout_s": "30"},
        until_s=5000,
    )
    done = next(t for t, what, _ in sim.world.timeline if what == "done")
    assert removal_time(sim) == done + 30


# -------------------------------------------------- kube-scheduler and pinning


def big_then_small() -> list:
    # A 100 GiB notebook launches a big node; a 1 GiB notebook arrives while it boots and
    # stays a week. The big node is Ready first.
    return [
        pod("big-notebook", cpu="2", memory="100Gi", duration_s=3600),
        pod("small-notebook", cpu="500m", memory="1Gi", arrival_s=30, duration_s=7 * 86400),
    ]


@pytest.mark.parametrize("policy", ["ca-least-waste", "karpenter-like"])
def test_unpinned_small_pod_lands_on_the_big_node_and_keeps_it_for_a_week(policy: str) -> None:
    sim = simulate(big_then_small(), pools=[SMALL, BIG], policy=policy, seed=1)
    assert pool_of(sim, "small-notebook") == ["big"]
    sc = sim.scorecard()
    # The big node runs the whole week for a pod that needs a small one.
    assert sc.node_hours_by_pool["big"] > 7 * 24
    assert sc.waste_usd["oversized"] > 0.8 * sc.total_cost_usd


def test_scaler_pins_the_small_pod_to_the_small_pool() -> None:
    sim = simulate(big_then_small(), pools=[SMALL, BIG], policy="scaler")
    assert pool_of(sim, "small-notebook") == ["small"]
    assert ("admitted", "default/small-notebook small") in {(w, s) for _, w, s in sim.world.timeline}
    sc = sim.scorecard()
    assert sc.node_hours_by_pool["big"] < 1.2
    assert sc.waste_usd["oversized"] == pytest.approx(0.0)
    ca = simulate(big_then_small(), pools=[SMALL, BIG], policy="ca-least-waste", seed=1)
    assert sc.total_cost_usd < ca.scorecard().total_cost_usd / 5


def test_the_webhook_keeps_a_new_small_pod_off_an_idle_big_node() -> None:
    # The big notebook is done at ~1 h; its node idles (120 s timeout) when the small one
    # arrives 60 s later. Unpinned, kube-scheduler would bind it there at once.
    pods = [
        pod("big-notebook", cpu="2", memory="100Gi", duration_s=3600),
        pod("small-notebook", cpu="500m", memory="1Gi", arrival_s=3750, duration_s=86400),
    ]
    with_webhook = simulate(pods, pools=[SMALL, BIG])
    assert pool_of(with_webhook, "small-notebook") == ["small"]
    without = simulate(pods, pools=[SMALL, BIG], overrides={"admission_webhook": "false"})
    assert pool_of(without, "small-notebook") == ["big"]
    assert without.scorecard().total_cost_usd > 5 * with_webhook.scorecard().total_cost_usd


def test_pinning_off_lets_kube_scheduler_pick_the_big_node_under_scaler_too() -> None:
    sim = simulate(
        big_then_small(), pools=[SMALL, BIG], policy="scaler", overrides={"enabled": "false"}
    )
    assert pool_of(sim, "small-notebook") == ["big"]


def test_kube_scheduler_prefers_the_emptiest_node() -> None:
    # A half-full big node and a small node with a little on it are both up when "late"
    # arrives. LeastAllocated scores the mean free fraction of CPU and memory after binding:
    # small (0.48 CPU, 0.72 memory) beats big (0.47, 0.51).
    pods = [
        pod("half", cpu="8", memory="60Gi", duration_s=7200),
        pod("filler", cpu="500m", memory="1Gi", arrival_s=1, duration_s=7200),
        pod("late", cpu="500m", memory="1Gi", arrival_s=1000, duration_s=600),
    ]
    sim = simulate(
        pods,
        pools=[SMALL, BIG],
        policy="scaler",
        until_s=3000,
        overrides={"admission_webhook": "false"},  # let kube-scheduler choose freely
    )
    assert (pool_of(sim, "half"), pool_of(sim, "filler")) == (["big"], ["small"])
    assert pool_of(sim, "late") == ["small"]
    # kube-scheduler bound it on arrival: the autoscaler never saw it pending.
    assert (1000.0, "bound", "default/late sim-00002") in sim.world.timeline
    assert not any(w == "pinned" and s.startswith("default/late") for _, w, s in sim.world.timeline)


# ------------------------------------------------------------------- CA's scan


def test_ca_decides_only_on_its_ten_second_grid() -> None:
    pods = [
        pod(f"p{i}", cpu="1", memory="2Gi", arrival_s=3.3 * i, duration_s=300) for i in range(5)
    ]
    sim = simulate(pods, pools=[SMALL], policy="ca-least-waste", until_s=2000)
    assert sim.decisions
    assert all(d.now_s % 10 == 0 for d in sim.decisions)
    # Arrivals at 0, 3.3, 6.6, 9.9 and 13.2 s: decisions at 0, 10 and 20 s, not one each.
    assert [d.now_s for d in sim.decisions][:3] == [0.0, 10.0, 20.0]


def test_scaler_batches_arrivals_into_one_scale_up() -> None:
    pods = [
        pod(f"w{i}", cpu="1", memory="2Gi", arrival_s=0.2 * i, duration_s=300) for i in range(10)
    ]
    sim = simulate(pods, pools=[SMALL], policy="scaler", until_s=2000)
    asks = sim.fleet.calls_to("set_desired")
    assert [(c.at_s, c.args) for c in asks] == [(pytest.approx(2.8), ("small", 10))]
