"""The simulation engine: event order, time, the ports, determinism, the ledger."""

from __future__ import annotations

import json
import math
import time

import anyio
import pytest

from scaler.core.state import ANNOTATION_IDLE_SINCE
from scaler.ports import Throttled
from simulations.clock import SimClock
from simulations.testing import pod, pool, simulate

SMALL = pool("m5.large", name="small")  # 2 vCPU, 8 GiB, $0.096/h
BIG = pool("r5.2xlarge", name="big")  # 8 vCPU, 64 GiB, $0.504/h


def three_pods() -> list:
    return [
        pod("p1", cpu="1", memory="2Gi", duration_s=600),
        pod("p2", cpu="1", memory="2Gi", arrival_s=0.5, duration_s=600),
        pod("p3", cpu="2", memory="40Gi", arrival_s=100, duration_s=300),
    ]


def test_three_pods_follow_the_exact_timeline_under_scaler() -> None:
    sim = simulate(three_pods(), pools=[SMALL, BIG], until_s=2000)

    # The admission webhook pins each pod to its tier as it is created (small alone: big
    # costs 5x). Batching: p1 and p2 wait for 1 s after the last arrival, then one decision
    # launches two small nodes (a pod's affinity is immutable once admitted, live and here:
    # the pin is the webhook's). Nodes are Ready 90 s later, kube-scheduler binds, pods
    # run their duration, the nodes idle 120 s and go.
    assert sim.world.timeline == [
        (0.0, "arrive", "default/p1"),
        (0.0, "admitted", "default/p1 small"),
        (0.0, "pending", "default/p1"),
        (0.5, "arrive", "default/p2"),
        (0.5, "admitted", "default/p2 small"),
        (0.5, "pending", "default/p2"),
        (1.5, "set-desired", "small 2"),
        (1.5, "launch", "sim-00001 small"),
        (1.5, "launch", "sim-00002 small"),
        (91.5, "ready", "sim-00001"),
        (91.5, "ready", "sim-00002"),
        (91.5, "bound", "default/p1 sim-00001"),
        (91.5, "bound", "default/p2 sim-00002"),
        (100.0, "arrive", "default/p3"),
        (100.0, "admitted", "default/p3 big"),
        (100.0, "pending", "default/p3"),
        (101.0, "set-desired", "big 1"),
        (101.0, "launch", "sim-00003 big"),
        (191.0, "ready", "sim-00003"),
        (191.0, "bound", "default/p3 sim-00003"),
        (491.0, "done", "default/p3"),
        (491.0, "idle", "sim-00003"),
        (611.0, "removed", "sim-00003"),
        (691.5, "done", "default/p1"),
        (691.5, "done", "default/p2"),
        (691.5, "idle", "sim-00001"),
        (691.5, "idle", "sim-00002"),
        (811.5, "removed", "sim-00001"),
        (811.5, "removed", "sim-00002"),
    ]
    # The reconciler ticked on each change and at the wake its last decision asked for,
    # nothing more, as the live loop sleeps until the latest wake time or a change: p1's
    # batch would have closed at 1.0, but p2's arrival moved the close to 1.5; the launches'
    # provision deadlines (901.5, 1001.0) stop mattering once their nodes are Ready.
    assert [d.now_s for d in sim.decisions] == [
        0.0, 0.5, 1.5, 91.5, 100.0, 101.0, 191.0, 491.0, 611.0, 691.5, 811.5,
    ]  # fmt: skip
    assert [(c.method, c.args) for c in sim.fleet.calls_to("set_desired")] == [
        ("set_desired", ("small", 2)),
        ("set_desired", ("big", 1)),
    ]
    assert [c.args for c in sim.fleet.calls_to("terminate")] == [
        ("sim-00003",),
        ("sim-00001",),
        ("sim-00002",),
    ]


def test_the_scorecard_matches_the_timeline_by_hand() -> None:
    sim = simulate(three_pods(), pools=[SMALL, BIG], until_s=2000)
    sc = sim.scorecard()
    small, big = 0.096, 0.504
    # Small nodes: 1.5 -> 811.5 each; big node: 101 -> 611.
    assert sc.node_hours_by_pool["small"] == pytest.approx(2 * 810 / 3600)
    assert sc.node_hours_by_pool["big"] == pytest.approx(510 / 3600)
    assert sc.total_cost_usd == pytest.approx((2 * 810 * small + 510 * big) / 3600)
    assert sc.waste_usd["booting"] == pytest.approx((2 * 90 * small + 90 * big) / 3600)
    assert sc.waste_usd["idle"] == pytest.approx((2 * 120 * small + 120 * big) / 3600)
    assert sc.waste_usd["oversized"] == pytest.approx(0.0)
    # Each pod ran on its cheapest fit: the oracle is exactly the useful part.
    assert sc.oracle_cost_usd == pytest.approx((2 * 600 * small + 300 * big) / 3600)
    assert sc.useful_usd == pytest.approx(sc.oracle_cost_usd)
    assert sc.pending_s["max"] == pytest.approx(91.5)
    assert sc.pending_s["p50"] == pytest.approx(91.0)
    assert (sc.scale_ups, sc.pods_finished, sc.pods_lost) == (3, 3, 0)


def test_every_dollar_is_booked_to_exactly_one_reason() -> None:
    sim = simulate(three_pods(), pools=None, policy="ca-least-waste", seed=3, until_s=1500)
    sc = sim.scorecard()
    parts = sc.useful_usd + sum(sc.waste_usd.values())
    assert parts == pytest.approx(sc.total_cost_usd, rel=1e-9)
    assert sc.on_demand_cost_usd + sc.spot_cost_usd == pytest.approx(sc.total_cost_usd)


def test_without_until_the_run_lasts_until_the_last_delayed_pod_has_finished() -> None:
    sim = simulate(three_pods(), pools=[SMALL, BIG])
    sc = sim.scorecard()
    assert sc.span_s == 600.5  # p2 would finish then had it started on arrival
    assert sc.end_s == 691.5  # it started 91 s late and still ran its 600 s
    assert sc.pods_finished == 3
    # Nodes are billed to the end and no further (their idle tail after it is not counted).
    assert sc.node_hours_by_pool["small"] == pytest.approx(2 * (691.5 - 1.5) / 3600)


def test_until_cuts_the_run_and_running_pods_stop_there() -> None:
    sim = simulate(three_pods(), pools=[SMALL, BIG], until_s=400)
    sc = sim.scorecard()
    assert sc.end_s == 400
    assert sc.pods_finished == 0
    assert sc.node_hours_by_pool["small"] == pytest.approx(2 * (400 - 1.5) / 3600)
    # The oracle is cut the same way: p1 for 400 s, p2 for 399.5 s, p3 for its 300 s.
    assert sc.oracle_cost_usd == pytest.approx(((400 + 399.5) * 0.096 + 300 * 0.504) / 3600)


def test_oracle_is_below_every_policy_when_pods_cannot_share_nodes() -> None:
    for policy in ("scaler", "ca-least-waste", "karpenter-like"):
        sc = simulate(three_pods(), policy=policy, seed=1).scorecard()
        assert sc.oracle_cost_usd > 0
        assert sc.oracle_cost_usd <= sc.total_cost_usd, policy


def test_same_seed_gives_identical_json_and_series() -> None:
    def run() -> tuple[str, dict]:
        sim = simulate(three_pods(), policy="ca-least-waste", seed=7, until_s=3000)
        sc = sim.scorecard()
        return json.dumps(sc.as_json(), sort_keys=True), dict(sc.series)

    assert run() == run()


def test_quiet_days_cost_no_ticks_even_on_a_10s_scan() -> None:
    pods = [
        pod("first", cpu="1", memory="1Gi", duration_s=600),
        pod("hundred-days-later", cpu="1", memory="1Gi", arrival_s=100 * 86400, duration_s=600),
    ]
    t0 = time.perf_counter()
    sim = simulate(pods, pools=[SMALL], policy="ca-least-waste", until_s=100 * 86400 + 3600)
    elapsed = time.perf_counter() - t0
    # 100 days of a 10 s scan would be 864,000 ticks; each pod needs a handful.
    assert sim.ticks <= 20
    assert elapsed < 5.0
    assert all(d.now_s % 10 == 0 for d in sim.decisions)  # CA acts on its scan grid
    assert sim.scorecard().pods_finished == 2


def failed_launch(cheap: str, dearer: str, **overrides: str):
    return simulate(
        [pod("p", cpu="1", memory="2Gi", duration_s=600)],
        pools=[pool(cheap, name="cheap"), pool(dearer, name="dearer")],
        overrides={"launch_failure_rate_by_pool": "cheap:1", **overrides},
        until_s=3000,
    )


def test_a_failed_launch_sends_the_pod_to_the_next_cheapest_pool() -> None:
    # m5a.large $0.086/h, m5.large $0.096/h: both in the pod's admission tier (within 25%).
    sim = failed_launch("m5a.large", "m5.large")
    assert (0.0, "admitted", "default/p cheap,dearer") in sim.world.timeline
    assert sim.world.pods["default/p"].pools == ["dearer"]
    sc = sim.scorecard()
    assert (sc.launch_failures, sc.scale_ups, sc.pods_finished) == (1, 1, 1)
    # Asked at 1 s, failure listed 30 s later, the next pool launched then, Ready 90 s on.
    assert sc.pending_s["max"] == pytest.approx(31 + 90)
    assert ("launch-failed", "cheap") in {(w, s) for _, w, s in sim.world.timeline}
    # The failed launch never became a node: nothing was billed in the cheap pool.
    assert "cheap" not in sc.node_hours_by_pool


def test_without_the_webhook_nothing_pins_the_pod_as_live() -> None:
    # A pod's affinity is immutable once it exists: only admission can pin it, live and
    # here, so without the webhook kube-scheduler stays free.
    sim = failed_launch("m5.large", "m5.xlarge", admission_webhook="false")
    assert not [s for _, w, s in sim.world.timeline if w in ("pinned", "admitted")]
    assert sim.world.pods["default/p"].live.affinity == ()
    assert sim.world.pods["default/p"].pools == ["dearer"]


def interrupted_once(handler: str):
    """A half-hour job on Spot with a hazard 2000x the Advisor's: the first seed whose run
    has an interruption and still finishes the job."""
    spot = pool("m5.large", name="spot", capacity_type="spot")
    job = pod("job", cpu="1", memory="2Gi", duration_s=1800)
    for seed in range(40):
        sim = simulate(
            [job],
            pools=[spot],
            seed=seed,
            overrides={"hazard_scale": "2000", "notice_handler": handler},
            until_s=86400,
        )
        sc = sim.scorecard()
        if sc.interruptions and sc.pods_finished:
            return sim
    pytest.fail("no seed gave an interruption followed by a finished job")


def test_a_spot_interruption_restarts_the_pod_from_scratch_and_it_finishes() -> None:
    sim = interrupted_once("reconciler")
    p = sim.world.pods["default/job"]
    assert p.lost_runs >= 1 and p.runs == p.lost_runs + 1
    t_notice = next(t for t, w, _ in sim.world.timeline if w == "spot-notice")
    at_notice = [(w, s) for t, w, s in sim.world.timeline if t == t_notice]
    # Reconciler.respond: cordon, drain (the run is lost), terminate, all on the warning; the
    # re-created pod is pinned to its reclaimed pool, readmitted (nothing else fits it).
    assert at_notice == [
        ("spot-notice", "sim-00001"),
        ("cordoned", "sim-00001"),
        ("evicted", "default/job"),
        ("removed", "sim-00001"),
        ("admitted", "default/job spot"),
        ("pending", "default/job"),
    ]
    assert next(c.args for c in sim.cluster.calls_to("evict")) == ("default/job",)
    sc = sim.scorecard()
    assert sc.waste_usd["interrupted"] > 0
    assert sc.scale_ups == p.runs  # the reconciler launched each replacement
    # The only pool was just reclaimed: it is skipped for 3 minutes, then used again.
    relaunch = [c.at_s for c in sim.fleet.calls_to("set_desired")][1]
    assert relaunch == pytest.approx(t_notice + 180.0)


def test_with_nth_the_node_is_drained_on_the_warning_and_gone_two_minutes_later() -> None:
    sim = interrupted_once("nth")
    t_notice = next(t for t, w, _ in sim.world.timeline if w == "spot-notice")
    at_notice = [w for t, w, _ in sim.world.timeline if t == t_notice]
    assert at_notice[:2] == ["spot-notice", "evicted"]
    t_gone = next(t for t, w, _ in sim.world.timeline if w == "reclaimed")
    assert t_gone - t_notice == pytest.approx(120.0)
    # The reconciler only saw the pod pending again, and launched at once (no backoff).
    relaunch = [c.at_s for c in sim.fleet.calls_to("set_desired")][1]
    assert relaunch == pytest.approx(t_notice + 1.0)  # its 1 s batch window
    assert sim.scorecard().pods_finished == 1


def test_interruptions_can_be_switched_off() -> None:
    spot = pool("m5.large", name="spot", capacity_type="spot")
    sim = simulate(
        [pod("job", cpu="1", memory="2Gi", duration_s=1800)],
        pools=[spot],
        overrides={"hazard_scale": "2000", "interruptions": "false"},
    )
    assert sim.scorecard().interruptions == 0


def test_gpu_nodes_advertise_gpus_after_ready_and_only_then_take_gpu_pods() -> None:
    gpu = pool("g4dn.xlarge", name="gpu")
    sim = simulate(
        [pod("train", cpu="2", memory="8Gi", gpu=1, duration_s=600)],
        pools=[gpu],
        overrides={"boot_s_gpu": "200", "gpu_advertise_s": "100"},
    )
    events = {(w, t) for t, w, _ in sim.world.timeline}
    assert ("ready", 201.0) in events
    assert ("gpu-advertised", 301.0) in events
    assert ("bound", 301.0) in events
    # Before the GPUs showed up the node was upcoming capacity: one launch only.
    assert sim.scorecard().scale_ups == 1


def test_the_fleet_records_calls_and_fails_the_next_one_when_told() -> None:
    pods = [
        pod("a", cpu="1", memory="2Gi", duration_s=600),
        pod("b", cpu="1", memory="2Gi", arrival_s=300, duration_s=600),
    ]

    def factory(**kwargs):
        from scaler.loop.reconciler import Reconciler

        # A transient failure: retried (an InsufficientCapacity would back the pool off).
        kwargs["fleet"].fail_next("set_desired", Throttled("Rate exceeded"))
        return Reconciler(**kwargs)

    sim = simulate(pods, pools=[SMALL], reconciler_factory=factory, until_s=2000)
    asks = sim.fleet.calls_to("set_desired")
    # The first ask failed; the reconciler asked again 10 s later (WRITE_RETRY_S), not at
    # b's arrival.
    assert [(c.at_s, c.args) for c in asks[:2]] == [(1.0, ("small", 1)), (11.0, ("small", 1))]
    assert sim.world.pods["default/a"].pools == ["small"]
    annotations = [c.args for c in sim.cluster.calls_to("annotate_node")]
    assert all(key == ANNOTATION_IDLE_SINCE for _, key, _ in annotations)


def test_sim_clock_wakes_sleepers_only_when_the_engine_advances() -> None:
    clock = SimClock()
    woke: list[float] = []

    async def sleeper() -> None:
        await clock.sleep_until(50.0)
        woke.append(clock.now())

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(sleeper)
            await anyio.wait_all_tasks_blocked()
            clock.advance(49.0)
            await anyio.wait_all_tasks_blocked()
            assert woke == []
            clock.advance(50.0)

    anyio.run(main)
    assert woke == [50.0]
    with pytest.raises(ValueError):
        clock.advance(10.0)
    assert math.isclose(clock.now(), 50.0)


@pytest.mark.parametrize(
    ("fake", "protocols"),
    [
        ("SimCluster", ("ClusterSource", "Actuator")),
        ("SimFleet", ("Fleet", "PriceSource")),
    ],
)
def test_the_simulated_ports_implement_every_method_of_their_protocols(fake, protocols) -> None:
    import inspect

    import scaler.ports
    import simulations.ports

    cls = getattr(simulations.ports, fake)
    for name in protocols:
        protocol = getattr(scaler.ports, name)
        for member, value in vars(protocol).items():
            if member.startswith("_") or not callable(value):
                continue
            assert hasattr(cls, member), f"{fake} lacks {name}.{member}"
            ours = getattr(cls, member)
            assert inspect.iscoroutinefunction(ours) == inspect.iscoroutinefunction(value), member
            theirs = list(inspect.signature(value).parameters)
            assert list(inspect.signature(ours).parameters) == theirs, member


def test_sim_clock_is_a_clock() -> None:
    import inspect

    from scaler.ports import Clock

    for member in ("now", "sleep_until"):
        assert inspect.iscoroutinefunction(getattr(SimClock, member)) == (
            inspect.iscoroutinefunction(getattr(Clock, member))
        )


def test_a_pod_bound_to_an_idle_node_restarts_its_idle_time() -> None:
    """A pod kube-scheduler binds to an idle node is a watch event live: the node is busy
    from then, and idle again only from when that pod ends. (The simulator once heard no
    such bind, and removed the node 120 s after the *first* pod ended, 20 s after the
    second.)"""
    sim = simulate(
        [
            pod("first", cpu="1", memory="2Gi", duration_s=600),
            pod("second", cpu="1", memory="2Gi", arrival_s=741.0, duration_s=50),
        ],
        pools=[SMALL],
        until_s=2000,
    )
    log = [(t, what, who) for t, what, who in sim.world.timeline
           if what in ("bound", "done", "removed")]
    assert log == [
        (91.0, "bound", "default/first sim-00001"),
        (691.0, "done", "default/first"),
        (741.0, "bound", "default/second sim-00001"),
        (791.0, "done", "default/second"),
        (911.0, "removed", "sim-00001"),  # 120 s after the second pod, its idle timeout
    ]


def test_a_run_holds_the_collector_off_and_gives_the_callers_thresholds_back() -> None:
    import gc

    from scaler.core.catalog import Catalog
    from simulations import engine
    from simulations.jobs import configure

    seen: list[tuple[int, int, int]] = []
    before = gc.get_threshold()

    class Watching(engine.Simulation):
        async def _loop(self) -> None:
            seen.append(gc.get_threshold())
            await super()._loop()

    settings, config = configure({}, "scaler")
    sim = Watching(pods=three_pods(), pools=[SMALL, BIG], catalog=Catalog.load(),
                   settings=settings, config=config, until_s=2000)
    try:
        gc.set_threshold(500, 7, 3)
        sim.run()
        assert seen == [engine.RARE_COLLECTIONS]
        assert gc.get_threshold() == (500, 7, 3)
    finally:
        gc.set_threshold(*before)


def test_pop_at_takes_only_the_events_due_at_that_time_and_phase_in_order() -> None:
    from simulations import events as ev

    q = ev.EventQueue()
    q.push(5.0, "b", 2)
    q.push(5.0, "tick", None, phase=ev.RECONCILE)
    q.push(5.0, "a", 1)
    q.push(7.0, "c", 3)
    assert q.pop_at(4.0, ev.WORLD) is None
    assert [q.pop_at(5.0, ev.WORLD) for _ in range(3)] == [("b", 2), ("a", 1), None]
    assert q.pop_at(5.0, ev.RECONCILE) == ("tick", None)
    assert q.pop_at(5.0, ev.WORLD) is None
    assert len(q) == 1


def test_events_known_up_front_come_out_as_if_pushed_one_by_one() -> None:
    # Known events wait beside the heap; with later pushes at the same times and phases, in
    # both phases, and popped by every method, the order must be the heap's alone.
    from simulations import events as ev

    known = [(5.0, "a", 1), (1.0, "b", 2), (5.0, "c", 3), (3.0, "d", 4), (1.0, "e", 5)]
    later = [(5.0, "f", 6, ev.WORLD), (1.0, "g", 7, ev.RECONCILE), (0.5, "h", 8, ev.WORLD),
             (5.0, "i", 9, ev.RECONCILE), (3.0, "j", 10, ev.WORLD)]
    split, single = ev.EventQueue(), ev.EventQueue()
    split.push_known(known[:2])
    split.push_known(known[2:])
    for t, kind, payload in known:
        single.push(t, kind, payload)
    for q in (split, single):
        for t, kind, payload, phase in later:
            q.push(t, kind, payload, phase=phase)

    def drain(q: ev.EventQueue) -> list[object]:
        # One event per call, whatever its phase.
        out: list[object] = []
        while (entry := q.pop_until(math.inf)) is not None:
            out.append(entry)
        return out

    def drain_until(q: ev.EventQueue, end: float) -> list[object]:
        out: list[object] = []
        while (entry := q.pop_until(end)) is not None:
            t, phase, kind, payload = entry
            out.append((t, phase, kind, payload))
            if phase == ev.WORLD:
                while (event := q.pop_at(t, phase)) is not None:
                    out.append((t, phase, *event))
        return out

    assert len(split) == len(single) == 10
    stepped = ev.EventQueue()
    stepped.push_known(known)
    for t, kind, payload, phase in later:
        stepped.push(t, kind, payload, phase=phase)
    expected = drain(single)
    assert drain(split) == expected
    assert len(split) == 0
    early = drain_until(stepped, 3.0)  # stops before the first event past the end, unpopped
    assert early == [e for e in expected if e[0] <= 3.0]  # type: ignore[index]
    assert len(stepped) == sum(1 for e in expected if e[0] > 3.0)  # type: ignore[index]
    assert early + drain_until(stepped, 10.0) == expected


def test_a_finished_run_is_freed_by_its_last_reference_without_the_cyclic_collector() -> None:
    # The collector is all but off during runs (rare_collections): a run tied into a
    # reference cycle would stay in memory after it, and be walked by the next collection.
    import gc
    import weakref

    sim = simulate(three_pods(), pools=[SMALL, BIG], until_s=2000)
    assert sim.world.all_done()
    gone = [weakref.ref(sim), weakref.ref(sim.world), weakref.ref(sim.reconciler)]
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        del sim
        assert [ref() is None for ref in gone] == [True, True, True]
    finally:
        if was_enabled:
            gc.enable()
