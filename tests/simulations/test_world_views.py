"""What the simulated world answers the ports, kept between calls and rebuilt only where
something changed: each answer must still be the world's current state."""

from __future__ import annotations

import dataclasses
import gc

import pytest

from scaler.core.model import GPU
from simulations import events as ev
from simulations.clock import SimClock
from simulations.ports import Call, Recorder
from simulations.testing import pod, pool
from tests.simulations.test_kubesched import arrive, node_of, world


def test_the_fleet_hands_back_the_same_pool_values_until_a_size_changes() -> None:
    # The offerings cache finds changed pools by identity; every size must still be current.
    w = world([], [pool("m5.large", current_size=1), pool("c5.large")])
    first = w.pool_views()
    assert w.pool_views() is first
    assert [(p.name, p.current_size) for p in first] == [("m5.large", 1), ("c5.large", 0)]

    w.set_desired("c5.large", 2, 1.0)
    second = w.pool_views()
    assert [p.current_size for p in second] == [1, 2]
    assert second[0] is first[0]
    w.set_desired("c5.large", 2, 2.0)  # the size it has: nothing changes
    assert w.pool_views() is second

    c5 = next(n for n in w.nodes.values() if n.pool == "c5.large")
    w.terminate(c5.name, 3.0)
    assert [p.current_size for p in w.pool_views()] == [1, 1]
    w.set_desired("c5.large", 2, 4.0)
    assert [p.current_size for p in w.pool_views()] == [1, 2]
    w.set_desired("m5.large", 0, 5.0)
    assert [p.current_size for p in w.pool_views()] == [0, 2]
    assert w.pool_views()[1] is second[1]


def test_a_pool_back_at_a_size_it_had_is_the_value_it_had_then_and_no_change() -> None:
    # Fleet.changed leaves out a pool whose value is the very one of the last read: a size
    # gone and back must come back as that value, its first size included, or the account
    # names a pool that did not change (or, were values compared loosely, misses one).
    w = world([], [pool("m5.large", current_size=1), pool("c5.large")])
    first = w.pool_views()
    w.set_desired("c5.large", 2, 1.0)
    second = w.pool_views()
    w.set_desired("c5.large", 0, 2.0)
    w.set_desired("m5.large", 3, 2.0)
    third = w.pool_views()
    assert third[1] is first[1]
    assert w.pools_changed(second, third) == (0, 1)
    w.set_desired("m5.large", 1, 3.0)
    w.set_desired("c5.large", 2, 3.0)
    w.set_desired("c5.large", 0, 3.0)
    fourth = w.pool_views()
    assert list(fourth) == list(first) and fourth[0] is first[0]
    assert w.pools_changed(third, fourth) == (0,)
    w.set_desired("c5.large", 2, 4.0)
    w.set_desired("c5.large", 0, 4.0)
    assert w.pools_changed(fourth, w.pool_views()) == ()


def test_a_snapshot_shows_each_change_since_the_last_one_in_the_order_objects_appeared() -> None:
    w = world(
        [pod("a", cpu="1", duration_s=100.0), pod("b", cpu="4"), pod("c", cpu="4")],
        [pool("m5.large", current_size=2)],
    )
    first, second = sorted(w.nodes)
    view = w.snapshot(0.0)
    assert [n.name for n in view.nodes] == [first, second]
    assert (view.bound, view.pending) == ((), ())
    assert w.snapshot(0.0).nodes is view.nodes  # nothing changed: the same tuple

    a = arrive(w, "a")
    assert [p.pod.key for p in w.snapshot(0.0).pending] == ["default/a"]
    w.kube_schedule()
    view = w.snapshot(0.0)
    assert [(b.pod.key, b.node) for b in view.bound] == [("default/a", node_of(a))]
    assert view.pending == ()

    w.annotate(second, "example.com/k", "v", 1.0)
    view = w.snapshot(1.0)
    assert [n.name for n in view.nodes] == [first, second]
    assert view.nodes[1].annotation("example.com/k") == "v"

    w.set_desired("m5.large", 3, 2.0)
    (third,) = set(w.nodes) - {first, second}
    idle = second if node_of(a) == first else first
    w.terminate(idle, 3.0)
    assert [n.name for n in w.snapshot(3.0).nodes] == sorted({first, second, third} - {idle})

    assert a.run is not None
    w.handle(ev.POD_DONE, (a, a.run), 100.0)
    assert w.snapshot(100.0).bound == ()

    b = arrive(w, "b", 100.0)
    arrive(w, "c", 100.0)
    pinned = dataclasses.replace(b.live, node_selector=(("scaler.io/pool", "none"),))
    w.admit(b, pinned)
    view = w.snapshot(100.0)
    assert [p.pod.key for p in view.pending] == ["default/b", "default/c"]
    assert view.pending[0].pod is pinned


def test_launch_failures_since_a_time_are_those_listed_then_or_later_in_order() -> None:
    w = world([], [pool("m5.large", current_size=3), pool("c5.large", current_size=3)])
    for pool_name, at_s in (("m5.large", 10.0), ("c5.large", 20.0), ("m5.large", 20.0),
                            ("c5.large", 30.0)):
        w.launch_failed(pool_name, at_s)
    assert [(f.pool, f.at_s) for f in w.failures_since(20.0)] == [
        ("c5.large", 20.0), ("m5.large", 20.0), ("c5.large", 30.0)
    ]
    assert len(w.failures_since(0.0)) == 4
    assert w.failures_since(20.5)[0].at_s == 30.0
    assert w.failures_since(31.0) == []


def test_a_port_lists_every_call_in_order_and_holds_them_untracked_by_the_collector() -> None:
    clock = SimClock()
    port = Recorder(clock)
    port._record("pools")
    clock.advance(5.0)
    before = port.calls
    port._record("set_desired", "m5.large", 2)
    assert before == [Call(0.0, "pools", ())]
    assert port.calls == [Call(0.0, "pools", ()), Call(5.0, "set_desired", ("m5.large", 2))]
    assert port.calls_to("set_desired")[0].args == ("m5.large", 2)
    # Hundreds of thousands per run: the cyclic collector must not walk them all each pass.
    # (A pass stops tracking a tuple of untracked items: the arguments first, then the call.)
    gc.collect()
    gc.collect()
    assert not any(gc.is_tracked(c) for c in port._calls)


def test_a_port_that_keeps_no_record_still_fails_the_call_it_was_told_to() -> None:
    from scaler.ports import Throttled

    port = Recorder(SimClock(), record=False)
    port.fail_next("set_desired", Throttled("slow down"))
    port._record("pools")
    with pytest.raises(Throttled):
        port._record("set_desired", "m5.large", 2)
    port._record("set_desired", "m5.large", 2)
    assert port.calls == []


def test_a_run_that_keeps_no_record_has_its_ports_record_no_calls() -> None:
    from scaler.core.catalog import Catalog
    from simulations.engine import Simulation
    from simulations.jobs import configure
    settings, config = configure({}, "scaler")
    sim = Simulation(pods=[pod("a", cpu="1", duration_s=60)], pools=[pool("m5.large")],
                     catalog=Catalog.load(), settings=settings, config=config)
    sim.run()
    assert sim.world.all_done()
    assert (sim.cluster.calls, sim.fleet.calls, sim.feed.calls) == ([], [], [])


def test_each_pools_nodes_launch_as_that_pool_says_however_often_and_in_whatever_order() -> None:
    # What a pool's nodes launch as is worked out at its first launch and kept (World._kind).
    w = world([], [pool("m5.large", current_size=1), pool("g4dn.xlarge"), pool("c5.large")])
    w.set_desired("g4dn.xlarge", 1, 10.0)
    w.set_desired("c5.large", 2, 20.0)
    w.set_desired("m5.large", 3, 30.0)
    w.set_desired("g4dn.xlarge", 2, 40.0)
    o = w.offerings
    ready = {}
    while (entry := w.queue.pop_until(1000.0)) is not None:
        t, _, kind, node = entry
        if kind == ev.NODE_READY:
            ready[node.name] = t
    assert sorted(n.pool for n in w.nodes.values()) == (
        ["c5.large"] * 2 + ["g4dn.xlarge"] * 2 + ["m5.large"] * 3
    )
    for node in w.nodes.values():
        i = o.get(node.pool)
        assert node.instance_type == node.pool
        assert node.price_usd_per_hour == float(o.price[i])
        assert (node.gpus, node.gpu_ready) == ((1, False) if node.pool == "g4dn.xlarge" else (0, True))
        row = o.allocatable[i].copy()
        row[GPU] = 0.0
        assert list(w.table.alloc[node.slot]) == list(row)
        assert w.table.alloc_of[node.slot] == list(row)
        if node.created_s > 0:  # not there from the start: it boots its family's time
            boot = w.config.boot_s(node.instance_type.split(".")[0], node.gpus > 0)
            assert ready[node.name] == node.created_s + boot


def test_a_node_view_shows_every_field_of_the_nodes_state_at_the_snapshot() -> None:
    # Views are built positionally and only at the snapshot: each must equal the view named
    # field by field, from the node's state then, however often it changed in between.
    from scaler.core.model import Taint
    from scaler.core.state import Node

    w = world([], [pool("m5.large", current_size=1), pool("g4dn.xlarge")])
    w.set_desired("g4dn.xlarge", 1, 10.0)
    gpu = next(n for n in w.nodes.values() if n.pool == "g4dn.xlarge")
    w.annotate(gpu.name, "example.com/a", "1", 11.0)
    w.taint(gpu.name, Taint("example.com/t", "x", "NoSchedule"), 11.0)
    w.annotate(gpu.name, "example.com/a", "2", 12.0)
    w.label(gpu.name, "example.com/l", "v", 12.0)
    w.cordon(gpu.name, True, 12.0)

    def expected(name: str) -> Node:
        n = w.nodes[name]
        return Node(
            name=n.name, pool=n.pool, instance_type=n.instance_type,
            capacity_type=n.capacity_type, zone=n.zone, instance_id=n.instance_id,
            allocatable=w._allocatable(n), ready=n.ready, gpu_ready=n.gpu_ready,
            unschedulable=n.cordoned, created_s=n.created_s, labels=n.labels,
            taints=w.offerings.taints[n.pool_index] + tuple(n.added_taints),
            annotations=tuple(sorted(n.annotations.items())),
        )

    view = w.snapshot(12.0)
    assert list(view.nodes) == [expected(n) for n in w.nodes]
    assert view.nodes[1].annotation("example.com/a") == "2"
    assert view.nodes[1].unschedulable and not view.nodes[1].ready
    w.handle(ev.NODE_READY, gpu, 100.0)
    w.handle(ev.GPU_READY, gpu, 200.0)
    view = w.snapshot(200.0)
    assert list(view.nodes) == [expected(n) for n in w.nodes]
    assert view.nodes[1].ready and view.nodes[1].gpu_ready
    assert view.nodes[1].allocatable.gpu == 1


def test_a_node_changed_then_removed_between_two_snapshots_is_in_neither_view() -> None:
    from scaler.core.model import Taint

    w = world([], [pool("m5.large", current_size=2)])
    first, second = sorted(w.nodes)
    assert [n.name for n in w.snapshot(0.0).nodes] == [first, second]
    w.taint(first, Taint("example.com/t", "x", "NoSchedule"), 1.0)
    w.set_desired("m5.large", 3, 1.0)
    (third,) = set(w.nodes) - {first, second}
    w.terminate(first, 1.0)
    w.annotate(second, "example.com/a", "1", 1.0)
    # The new node first, the changed older one in its old place, the removed one nowhere.
    assert [n.name for n in w.snapshot(1.0).nodes] == [second, third]
    assert w.snapshot(1.0).nodes[0].annotation("example.com/a") == "1"


def test_a_port_that_records_nothing_fails_each_call_it_is_told_to_through_its_methods() -> None:
    # Port methods skip the recorder unless it records or has a failure queued: a failure
    # told after others were used up must still be raised, once, and nothing recorded.
    import anyio

    from scaler.ports import Throttled
    from simulations.ports import SimFleet

    w = world([], [pool("m5.large", current_size=1)])
    fleet = SimFleet(w, w.clock, w.catalog, record=False)

    async def main() -> None:
        for _ in range(2):
            fleet.fail_next("pools", Throttled("slow down"))
            fleet.fail_next("pools", Throttled("still slow"))
            for message in ("slow down", "still slow"):
                with pytest.raises(Throttled, match=message):
                    await fleet.pools()
            assert [p.name for p in await fleet.pools()] == ["m5.large"]
        fleet.fail_next("set_desired", Throttled("no"))
        fleet.fail_next("pools", Throttled("slow down"))
        with pytest.raises(Throttled):
            await fleet.pools()  # its failures used up: another method's is still queued
        await fleet.pools()
        with pytest.raises(Throttled):
            await fleet.set_desired("m5.large", 2)
        await fleet.set_desired("m5.large", 2)

    anyio.run(main)
    assert fleet.calls == []


def test_pods_of_one_kind_share_one_read_only_request_array_equal_to_their_requests() -> None:
    specs = [pod("a", cpu="1"), pod("b", cpu="2")]
    repeat = dataclasses.replace(specs[0], name="c")  # shares a's requests value
    w = world([*specs, repeat], [pool("m5.large")])
    a, b, c = (w.pods[f"default/{n}"] for n in "abc")
    assert c.req is a.req and b.req is not a.req
    for p in (a, b, c):
        assert list(p.req) == list(p.spec.requests.as_array())
        assert not p.req.flags.writeable


def test_a_pods_kept_key_is_its_specs_and_its_pinned_specs_key_and_names_its_views() -> None:
    from simulations.testing import simulate

    sim = simulate(
        [pod(f"p{i}", cpu="1", duration_s=600.0, arrival_s=60.0 * i) for i in range(4)],
        pools=[pool("m5.large"), pool("m5.xlarge")], until_s=2000.0,
    )
    pods = list(sim.world.pods.values())
    assert any(p.live is not p.spec for p in pods)  # the webhook pinned some
    for p in pods:
        assert p.key == p.spec.key == p.live.key
        assert sim.world.pods[p.key] is p
    assert {e[2].split()[0] for e in sim.world.timeline or [] if e[1] == "bound"} == {
        p.key for p in pods
    }


def test_each_new_tuple_of_nodes_and_pods_is_told_as_the_last_one_changed() -> None:
    """The world tells its indexes what changed in each new tuple of node and bound views
    (gone, replaced in place, appended): over a run with nodes launched, marked idle and
    removed and pods bound and finishing, each told change turns the last tuple into the
    new one, and the indexes made from them answer as ones built afresh."""
    from collections import Counter

    from scaler.core.catalog import Catalog
    from scaler.core.state import ClusterView
    from scaler.core.viewchange import Change
    from scaler.core.viewindex import BoundIndex, NodeIndex
    from simulations.engine import Simulation
    from simulations.jobs import configure

    settings, config = configure({}, "scaler")
    pods = [pod(f"p{i}", cpu=("1" if i % 3 else "3"), arrival_s=60.0 * (i % 25),
                duration_s=200.0 + 97.0 * (i % 11)) for i in range(60)]
    sim = Simulation(pods=pods, pools=[pool("m5.large"), pool("c5.2xlarge")],
                     catalog=Catalog.load(), settings=settings, config=config)
    w = sim.world
    told: list[Change[object]] = []
    tell_nodes, tell_bound = w.indexes.tell_nodes, w.indexes.tell_bound
    w._node_views._tell = lambda c: (told.append(c), tell_nodes(c))  # type: ignore[assignment]
    w._bound_views._tell = lambda c: (told.append(c), tell_bound(c))  # type: ignore[assignment]
    last: dict[str, tuple[object, ...]] = {"nodes": (), "bound": ()}
    seen: Counter[str] = Counter()
    real_snapshot = w.snapshot

    def ids(xs: object) -> list[int]:
        return [id(x) for x in xs]  # type: ignore[attr-defined]

    def snapshot(now: float) -> ClusterView:
        view = real_snapshot(now)
        for part, after in (("nodes", view.nodes), ("bound", view.bound)):
            if after is last[part]:
                continue
            (change,) = (c for c in told if c.after is after)
            told.remove(change)
            gone = set(map(id, change.gone))
            new = {id(old): x for old, x in change.replaced}
            kept = [new.get(id(x), x) for x in change.before if id(x) not in gone]
            assert change.before is last[part] and change.adds_up()
            assert ids((*kept, *change.added_items())) == ids(after)
            last[part] = after
            seen.update({f"{part} gone": len(change.gone), f"{part} appended": change.added,
                         f"{part} replaced": len(change.replaced)})
        assert not told
        index, fresh = w.indexes.nodes(view.nodes), NodeIndex.build(view.nodes)
        assert ids(index.by_name.values()) == ids(fresh.by_name[x] for x in index.by_name)
        assert index.idle_annotated == fresh.idle_annotated
        assert ids(index.open_since(0.0)) == ids(fresh.open_since(0.0))
        assert set(w.indexes.bound(view.bound).busy) == set(BoundIndex.build(view.bound).busy)
        return view

    w.snapshot = snapshot  # type: ignore[method-assign]
    sim.run()
    assert w.all_done()
    # Nodes came, changed and went; pods bound and finished: each told as it happened.
    assert all(seen[f"nodes {k}"] > 0 for k in ("gone", "appended", "replaced")), seen
    assert seen["bound gone"] > 0 and seen["bound appended"] > 0, seen
