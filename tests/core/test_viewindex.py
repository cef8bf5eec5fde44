"""The per-tuple indexes behind decide(): kept while the view hands back the same tuple,
rebuilt (a fresh answer) as soon as nodes, bound pods or the pool table change."""

from __future__ import annotations

import dataclasses
import itertools
import random
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from scaler.core.actions import MarkIdle, RemoveNode, Untaint
from scaler.core.catalog import Catalog
from scaler.core.decide import decide, nodes_on_the_way
from scaler.core.memory import Memory
from scaler.core.model import NO_SCHEDULE, PodSpec, PoolSpec, Resources, Taint
from scaler.core.offerings import build_offerings, changed_pools, is_startup_taint, pool_table
from scaler.core.settings import preset
from scaler.core.state import (
    ANNOTATION_IDLE_SINCE,
    TAINT_REMOVING,
    BoundPod,
    ClusterView,
    Node,
    daemonsets_of,
)
from scaler.core.viewchange import Change, ViewsByKey
from scaler.core.viewindex import (
    BoundIndex,
    NodeIndex,
    ViewIndexes,
    idle_candidates,
    not_busy,
)
from tests.fixtures.views import take_told, told_walk

IX = ViewIndexes()
"""One source's indexes for the whole module, as one live source keeps them across its
views: the incremental path is what these tests exercise."""


def View(now_s: float, **kw: Any) -> ClusterView:
    return ClusterView(now_s, indexes=IX, **kw)



def nodes(*ns: Node) -> tuple[Node, ...]:
    return tuple(ns)


def n(name: str, pool: str = "small", **kw: object) -> Node:
    return Node(name, pool, "m5.large", "on-demand", **kw)  # type: ignore[arg-type]


def pools(small: int = 0, big: int = 0) -> list[PoolSpec]:
    return [
        PoolSpec("small", ("m5.large",), max_size=10, current_size=small),
        PoolSpec("big", ("m5.4xlarge",), max_size=10, current_size=big),
    ]


def test_same_tuple_same_index_and_a_new_tuple_a_fresh_one() -> None:
    first = nodes(n("a"), n("b"))
    assert IX.nodes(first) is IX.nodes(first)
    tainted = Taint(TAINT_REMOVING, "", NO_SCHEDULE)
    second = nodes(n("a"), n("b", taints=(tainted,)))
    assert [x.name for x in IX.nodes(second).tainted(TAINT_REMOVING)] == ["b"]
    # Back to the first tuple: its answer again, not the second's.
    assert IX.nodes(first).tainted(TAINT_REMOVING) == ()


def test_ready_count_follows_a_node_turning_ready() -> None:
    table = pool_table(pools(small=2), build_offerings(pools(small=2), Catalog.load())[0])
    keys = ("node.cilium.io/agent-not-ready",)
    booting = View(10.0, nodes=nodes(n("a"), n("b", ready=False)))
    assert nodes_on_the_way(booting, table, keys) == {"small": 1}
    up = View(20.0, nodes=nodes(n("a"), n("b")))
    assert nodes_on_the_way(up, table, keys) == {}
    # A startup taint still on: on its way, under those keys only.
    agent = Taint(keys[0], "", NO_SCHEDULE)
    starting = View(30.0, nodes=nodes(n("a"), n("b", taints=(agent,))))
    assert nodes_on_the_way(starting, table, keys) == {"small": 1}
    assert nodes_on_the_way(starting, table, ()) == {}


def test_nodes_on_the_way_follows_the_table_with_the_same_nodes() -> None:
    ps = pools(small=1)
    offerings = build_offerings(ps, Catalog.load())[0]
    view = View(10.0, nodes=nodes(n("a")))
    table = pool_table(ps, offerings)
    assert nodes_on_the_way(view, table, ()) == {}
    raised = [dataclasses.replace(ps[0], current_size=3), ps[1]]
    bigger = table.updated(raised)
    assert nodes_on_the_way(view, bigger, ()) == {"small": 2}
    assert nodes_on_the_way(view, table, ()) == {}


def test_busy_follows_the_bound_pods() -> None:
    ns = nodes(n("a"), n("b"))
    work = BoundPod(PodSpec("w"), "a")
    ds = BoundPod(PodSpec("ds"), "b", daemonset=True)
    assert IX.bound((work, ds)).busy == {"a"}
    assert IX.bound((ds,)).busy == frozenset()
    idx = IX.nodes(ns)
    assert [x.name for x in idle_candidates(idx, IX.bound((work, ds)), {})] == ["b"]
    # A busy node still remembered idle is a candidate (to be marked busy), in view order.
    assert [x.name for x in idle_candidates(idx, IX.bound((work,)), {"a": 1.0})] == ["a", "b"]


def test_decide_sees_a_node_become_busy_and_idle_again() -> None:
    ps = pools(small=2)
    table = pool_table(ps, build_offerings(ps, Catalog.load())[0])
    ns = nodes(n("a"), n("b"))
    memory = Memory()
    settings = preset("scaler")
    rng = np.random.default_rng(0)

    def marks(view: ClusterView) -> list[MarkIdle]:
        return decide(view, table, memory, settings, now=view.now_s, rng=rng).of(MarkIdle)

    first = marks(View(100.0, nodes=ns))
    assert [(m.node, m.since_s) for m in first] == [("a", 100.0), ("b", 100.0)]
    memory.idle_since_s.update({"a": 100.0, "b": 100.0})
    busy = marks(View(110.0, nodes=ns, bound=(BoundPod(PodSpec("w"), "b"),)))
    assert [(m.node, m.since_s) for m in busy] == [("b", None)]
    del memory.idle_since_s["b"]
    again = marks(View(120.0, nodes=ns))
    assert [(m.node, m.since_s) for m in again] == [("b", 120.0)]


def test_a_removal_taint_left_behind_is_seen_on_the_next_tuple() -> None:
    ps = pools(small=1)
    table = pool_table(ps, build_offerings(ps, Catalog.load())[0])
    busy = (BoundPod(PodSpec("w"), "a"),)
    clean = View(100.0, nodes=nodes(n("a")), bound=busy)
    settings, rng = preset("scaler"), np.random.default_rng(0)
    assert decide(clean, table, Memory(), settings, now=100.0, rng=rng).of(Untaint) == []
    left = Taint(TAINT_REMOVING, "", NO_SCHEDULE)
    tainted = View(101.0, nodes=nodes(n("a", taints=(left,))), bound=busy)
    d = decide(tainted, table, Memory(), settings, now=101.0, rng=rng)
    assert [u.node for u in d.of(Untaint)] == ["a"]
    assert d.of(RemoveNode) == []


def test_changed_pools_names_the_places_holding_new_objects() -> None:
    before = pools(small=1, big=2)
    now = [before[0], dataclasses.replace(before[1], current_size=3)]
    assert changed_pools(before, now) == [1]
    assert changed_pools(before, list(before)) == []
    # An equal new value is no change; a change in a later block is found there.
    assert changed_pools(before, [dataclasses.replace(before[0]), before[1]]) == []
    many = [dataclasses.replace(before[0], name=f"p{i}") for i in range(300)]
    later = [*many[:200], dataclasses.replace(many[200], current_size=5), *many[201:]]
    assert changed_pools(many, later) == [200]
    assert changed_pools(tuple(many), later) == [200]


def test_an_updated_table_equals_a_fresh_one() -> None:
    ps = pools(small=1, big=0)
    offerings = build_offerings(ps, Catalog.load())[0]
    table = pool_table(ps, offerings)
    later = [dataclasses.replace(ps[0], current_size=0), dataclasses.replace(ps[1], current_size=4)]
    for updated in (table.updated(later), table.updated(later, changed_pools(ps, later))):
        fresh = pool_table(later, offerings)
        assert updated.offerings is offerings
        assert updated.by_name == fresh.by_name
        assert list(updated.sized_by_name) == list(fresh.sized_by_name) == ["big"]
        assert np.array_equal(updated.headroom, fresh.headroom)
        assert updated.sizes is not None and fresh.sizes is not None
        assert np.array_equal(updated.sizes, fresh.sizes)


def test_allocatable_does_not_matter_to_the_index() -> None:
    # Nodes compared by identity only: an equal but new tuple is indexed again, same answer.
    a = nodes(n("a", allocatable=Resources(cpu_milli=1000)))
    b = nodes(n("a", allocatable=Resources(cpu_milli=1000)))
    assert a == b and a is not b
    assert IX.nodes(a) is not IX.nodes(b)
    assert IX.nodes(a).position == IX.nodes(b).position == {"a": 0}


def _ids(xs: Any) -> list[int]:
    return [id(x) for x in xs]


def _same_objects(a: NodeIndex, b: NodeIndex, keys: tuple[str, ...], table: Any) -> None:
    """:func:`_same`, and every answer holds the very node objects of ``b``'s (a fresh
    build's), not equal copies."""
    _same(a, b, keys, table)
    assert _ids(a.by_name.values()) == _ids(b.by_name[x.name] for x in a.by_name.values())
    for key in b.taint_keys:
        assert _ids(a.tainted(key)) == _ids(b.tainted(key))
    assert _ids(a.unlabelled) == _ids(b.unlabelled)
    assert _ids(a.open_since(0.0)) == _ids(b.open_since(0.0))


def _same(a: NodeIndex, b: NodeIndex, keys: tuple[str, ...], table: Any = None) -> None:
    assert a.nodes is b.nodes
    if table is not None:  # asked first: an answer kept from an earlier tuple must be right
        for ks in ((), keys):
            # In order too: the order pools are covered in breaks cost ties.
            assert list(a.on_the_way(table, ks).items()) == list(b.on_the_way(table, ks).items())
    assert a.position == b.position
    assert a.by_name == b.by_name
    if len(set(map(id, a.nodes))) == len(a.nodes):  # (a node twice has one rank)
        ranks = [a.state.rank[id(x)] for x in a.nodes]  # view order, kept across removals
        assert ranks == sorted(set(ranks)) and len(a.state.rank) == len(a.nodes)
    assert a.taint_keys == b.taint_keys
    for key in a.taint_keys:
        assert a.tainted(key) == b.tainted(key)
    assert a.idle_annotated == b.idle_annotated
    assert a.unlabelled == b.unlabelled
    assert a.state.created_s == b.state.created_s
    for since in (0.0, 5.0, 10.0, 15.0, 99.0):
        assert a.open_since(since) == b.open_since(since)
    for ks in ((), keys):
        assert +a.ready_by_pool(ks) == +b.ready_by_pool(ks)  # + drops zero counts
        # ... and both what Ready means, said here without the index's facts.
        assert +a.ready_by_pool(ks) == Counter(
            n.pool for n in a.nodes
            if n.pool is not None and n.ready and n.gpu_ready
            and not any(is_startup_taint(t, ks) for t in n.taints)
        )
    if len(set(map(id, a.nodes))) == len(a.nodes):
        # The other facts, said here without the index's facts too.
        assert a.idle_annotated == {
            x.name for x in a.nodes if x.annotation(ANNOTATION_IDLE_SINCE) is not None
        }
        assert a.unlabelled == tuple(
            x for x in a.nodes if x.pool is not None and not x.pool_labelled
        )
        assert a.open_since(0.0) == [
            x for x in a.nodes
            if x.pool is not None and x.schedulable_ready and x.created_s >= 0.0
            and all(t.key != TAINT_REMOVING for t in x.taints)
        ]


def test_an_index_updated_node_by_node_equals_one_built_afresh() -> None:
    rng = random.Random(7)
    keys = ("agent-not-ready",)
    taints = [Taint(TAINT_REMOVING, "", NO_SCHEDULE), Taint(keys[0], "", NO_SCHEDULE),
              Taint("scaler.io/interrupted", "", NO_SCHEDULE),
              # A startup taint under any keys (cluster-autoscaler's prefix).
              Taint("ignore-taint.cluster-autoscaler.kubernetes.io/agent", "", NO_SCHEDULE)]

    def random_node(name: str) -> Node:
        return n(
            name,
            rng.choice(["small", "big", None]),
            ready=rng.random() < 0.8,
            gpu_ready=rng.random() < 0.9,
            unschedulable=rng.random() < 0.1,
            created_s=float(rng.randrange(20)),
            taints=tuple(t for t in taints if rng.random() < 0.2),
            annotations=((ANNOTATION_IDLE_SINCE, "5"),) if rng.random() < 0.3 else (),
            pool_labelled=rng.random() < 0.8,
        )

    current = tuple(random_node(f"n{i}") for i in range(30))
    index = NodeIndex.build(current)
    index.ready_by_pool(keys), index.ready_by_pool(())  # counts to carry forward
    # One table throughout, as between resizes: on_the_way is kept across tuples for it.
    table = pool_table(pools(small=12, big=9), build_offerings(pools(), Catalog.load())[0])
    serial = 30
    for _ in range(300):
        ns = list(current)
        for _ in range(rng.choice([0, 1, 1, 2, 3])):
            what = rng.random()
            if what < 0.3 and ns:
                ns.pop(rng.randrange(len(ns)))
            elif what < 0.6:
                serial += 1
                ns.append(random_node(f"n{serial}"))
            elif ns:
                i = rng.randrange(len(ns))
                ns[i] = random_node(ns[i].name)
        if rng.random() < 0.05:
            rng.shuffle(ns)
        if ns and rng.random() < 0.05:
            # The same object twice (never in a real cluster): indexed right, and the next
            # tuple's index is built afresh from it.
            twice = (*ns, ns[-1])
            index, current = index.next(twice), twice
            _same(index, NodeIndex.build(twice), keys)
        before, current = current, tuple(ns)
        previous, index = index, index.next(current)
        _same(index, NodeIndex.build(current), keys, table)
        # The last index still answers for its own tuple (its tables moved on).
        if rng.random() < 0.2:
            _same(previous, NodeIndex.build(before), keys)


def test_a_node_replaced_by_a_newer_value_of_itself_is_indexed_as_that_object() -> None:
    """Most new node values differ from the old only in the idle-since annotation, or not
    at all: the index then swaps the object in its tables instead of dropping and adding
    it. Every table must hold the new object (equal values would hide a stale one), and
    the not-busy answer too."""
    rng = random.Random(3)
    keys = ("agent-not-ready",)
    taints = [Taint(TAINT_REMOVING, "", NO_SCHEDULE), Taint(keys[0], "", NO_SCHEDULE),
              Taint("scaler.io/interrupted", "", NO_SCHEDULE)]

    def random_node(name: str) -> Node:
        return n(name, rng.choice(["small", "big", None]), ready=rng.random() < 0.8,
                 unschedulable=rng.random() < 0.1, created_s=float(rng.randrange(5)),
                 taints=tuple(t for t in taints if rng.random() < 0.3),
                 pool_labelled=rng.random() < 0.8)

    def newer(x: Node) -> Node:
        """The same node, its idle-since annotation set, cleared, or left as it was, and
        now and then Ready, its GPUs or its cordon changed."""
        what = rng.random()
        marks = ((ANNOTATION_IDLE_SINCE, "5"),) if what < 0.4 else () if what < 0.8 else (
            x.annotations)
        if rng.random() < 0.3:
            x = dataclasses.replace(x, ready=rng.random() < 0.7, gpu_ready=rng.random() < 0.9,
                                    unschedulable=rng.random() < 0.2)
        return dataclasses.replace(x, annotations=marks)

    pod = _bound_pods(rng, nodes=24)
    current = tuple(random_node(f"n{i}") for i in range(20))
    pods = tuple(pod() for _ in range(12))
    index, bound = NodeIndex.build(current), BoundIndex.build(pods)
    index.ready_by_pool(keys), index.ready_by_pool(())  # counts to carry forward
    not_busy(index, bound)
    table = pool_table(pools(small=12, big=9), build_offerings(pools(), Catalog.load())[0])
    serial = 20
    for _ in range(400):
        ns = list(current)
        for _ in range(rng.choice([1, 1, 2, 4])):
            i = rng.randrange(len(ns))
            ns[i] = newer(ns[i]) if rng.random() < 0.9 else random_node(ns[i].name)
        if rng.random() < 0.3:
            serial += 1
            ns.append(random_node(f"n{serial}"))
        if rng.random() < 0.3:
            ns.pop(rng.randrange(len(ns)))
        if rng.random() < 0.3:
            later = list(pods)
            later[rng.randrange(len(later))] = pod()
            pods = tuple(later)
            bound = bound.next(pods)
        current = tuple(ns)
        index = index.next(current)
        fresh = NodeIndex.build(current)
        _same_objects(index, fresh, keys, table)
        if rng.random() < 0.6:  # not every step: nodes added since are replaced unasked
            assert _ids(not_busy(index, bound)) == _ids(not_busy(fresh, BoundIndex.build(pods)))


def _bound_pods(rng: random.Random, *, nodes: int) -> Callable[[], BoundPod]:
    """A maker of bound pods, each named afresh, on one of ``nodes`` nodes, a fifth of them
    DaemonSet pods of one of three DaemonSets (sizes drawn from a few, so some tie)."""
    serial = itertools.count(1)

    def pod() -> BoundPod:
        ds = rng.random() < 0.2
        memory = float(rng.choice([256, 512, 1024]))
        return BoundPod(PodSpec(f"p{next(serial)}", requests=Resources(memory_mib=memory, pods=1)),
                        f"n{rng.randrange(nodes)}", daemonset=ds,
                        owner=f"kube-system/ds{rng.randrange(3)}" if ds else None)

    return pod


def test_a_bound_index_updated_pod_by_pod_equals_one_built_afresh() -> None:
    rng = random.Random(11)
    random_pod = _bound_pods(rng, nodes=12)

    current = tuple(random_pod() for _ in range(40))
    index = BoundIndex.build(current)
    for _ in range(300):
        pods = list(current)
        for _ in range(rng.choice([0, 1, 2, 3])):
            what = rng.random()
            if what < 0.3 and pods:
                pods.pop(rng.randrange(len(pods)))
            elif what < 0.5:
                pods.insert(rng.randrange(len(pods) + 1), random_pod())
            elif what < 0.75:
                pods.append(random_pod())  # the in-place path: appended...
            elif pods:
                pods[rng.randrange(len(pods))] = random_pod()  # ...and replaced in place
        if rng.random() < 0.05:
            rng.shuffle(pods)  # reordered: equal DaemonSet pods may change which comes first
        if pods and rng.random() < 0.05:
            twice = (*pods, pods[0])  # the same object twice: counted twice, then built afresh
            index, current = index.next(twice), twice
            assert set(index.busy) == set(BoundIndex.build(twice).busy)
        before, current = current, tuple(pods)
        previous, index = index, index.next(current)
        fresh = BoundIndex.build(current)
        assert set(index.busy) == set(fresh.busy)
        if rng.random() < 0.7:  # asked on most tuples: carried across the others
            assert index.daemonsets() == daemonsets_of(current)
        assert sorted(map(id, index.others)) == sorted(map(id, fresh.others))
        for node in (f"n{i}" for i in range(12)):
            assert index.workload_on(node) == fresh.workload_on(node)
        # The last index still answers for its own tuple (its counts moved on).
        assert set(previous.busy) == set(BoundIndex.build(before).busy)


def test_kept_cost_rows_are_cost_matrix_s_and_follow_new_offerings() -> None:
    from scaler.core.placement import cost_matrix, open_cells, open_rows

    settings = preset("scaler")
    small = PodSpec("s", requests=Resources(cpu_milli=500, memory_mib=1024, pods=1))
    large = PodSpec("l", requests=Resources(cpu_milli=6000, memory_mib=8192, pods=1))
    for ps in (pools(), pools()[:1], pools()):  # new offerings objects each time
        offerings = build_offerings(ps, Catalog.load())[0]
        for reps in ([small, large], [large], [small]):
            req = np.array([p.requests.as_array() for p in reps])
            want, want_ppn = cost_matrix(reps, req, offerings, np.ones(len(offerings), bool),
                                         settings.placement)
            got, got_ppn = open_rows(reps, offerings, settings.placement)
            assert np.array_equal(got, want) and np.array_equal(got_ppn, want_ppn)
            cols = np.array([len(offerings) - 1], dtype=np.int64)
            got, _ = open_rows(reps, offerings, settings.placement, columns=cols)
            assert np.array_equal(got, want[:, cols])
            # Covering's cells: the same values as Python floats.
            some = [len(offerings) - 1, 0]
            cells, cells_ppn = open_cells(reps, offerings, settings.placement, some)
            assert cells == want[:, some].tolist() and cells_ppn == want_ppn[:, some].tolist()


def test_the_kept_covering_follows_capacity_launches_and_the_pending_tuple() -> None:
    """decide keeps its last covering of the pending pods (ViewIndexes.cover); the same
    pending tuple over other nodes on the way, or other launches, is covered afresh."""
    from scaler.core.memory import Launch
    from scaler.core.state import PendingPod

    settings = preset("scaler")
    rng = np.random.default_rng(0)
    ix = ViewIndexes()
    a = PodSpec("a", requests=Resources(cpu_milli=500, memory_mib=1024, pods=1))
    b = PodSpec("b", requests=Resources(cpu_milli=500, memory_mib=1024, pods=1))
    pending = (PendingPod(a, 0.0), PendingPod(b, 0.0))

    offerings = build_offerings(pools(), Catalog.load())[0]  # one set of pools throughout

    def waiting(ps: list[PoolSpec], memory: Memory, pend: tuple[PendingPod, ...] = pending
                ) -> tuple[str, ...]:
        table = pool_table(ps, offerings)
        view = ClusterView(50.0, pending=pend, indexes=ix)
        return decide(view, table, memory, settings, now=50.0, rng=rng).waiting

    memory = Memory()
    # One small node on its way covers one of the two pods (the other waits in the batch
    # window, so it is listed too: waiting names both, in that order).
    one = waiting(pools(small=1), memory)
    assert ix.cover is not None
    assert waiting(pools(small=1), memory) == one
    # Same pending tuple, two nodes on the way now: both pods covered.
    assert waiting(pools(small=2), memory) == ("default/a", "default/b")
    # Same tuple, nothing on the way: nothing covers them (the batch holds them).
    memory.batch_floor_s = 100.0  # not new: placed at once, so not listed as held
    assert waiting(pools(small=0), memory) == ()
    # One node on the way, and a remembered launch for b: b takes it.
    memory.launches.append(Launch("small", 1, frozenset({"default/b"}), 0.0, 900.0))
    assert waiting(pools(small=1), memory) == ("default/b",)
    memory.launches[0] = Launch("small", 1, frozenset({"default/a"}), 0.0, 900.0)
    assert waiting(pools(small=1), memory) == ("default/a",)
    # Another pending tuple with the same capacity and launches.
    assert waiting(pools(small=1), memory, pending[1:]) == ("default/b",)


def test_not_busy_kept_across_nodes_and_pods_changing_equals_a_fresh_answer() -> None:
    """not_busy is brought up to date from the last answer by the nodes added and the nodes
    whose busyness changed; asked of any nodes and bound indexes, in any order, it answers
    what a pass over every node answers."""
    rng = random.Random(5)
    pod = _bound_pods(rng, nodes=16)

    def fresh(ns: tuple[Node, ...], pods: tuple[BoundPod, ...]) -> list[str]:
        busy = {b.node for b in pods if b.is_workload}
        return [x.name for x in ns if x.name not in busy]

    ns = tuple(n(f"n{i}") for i in range(12))
    pods = tuple(pod() for _ in range(10))
    nodes_ix, bound_ix = NodeIndex.build(ns), BoundIndex.build(pods)
    seen: list[tuple[NodeIndex, BoundIndex]] = [(nodes_ix, bound_ix)]
    names = 16
    for _ in range(600):
        if rng.random() < 0.6:
            changed = list(ns)
            for _ in range(rng.choice([1, 1, 2, 3])):
                what = rng.random()
                if what < 0.3 and changed:
                    changed.pop(rng.randrange(len(changed)))
                elif what < 0.5:
                    # A new node, sometimes with the name of one busy since (its pods stay).
                    name = f"n{rng.randrange(names + 4)}"
                    if name not in {x.name for x in changed}:
                        changed.append(n(name))
                elif changed:
                    i = rng.randrange(len(changed))
                    changed[i] = n(changed[i].name, created_s=float(rng.randrange(9)))
            if rng.random() < 0.05:
                rng.shuffle(changed)
            ns = tuple(changed)
            nodes_ix = nodes_ix.next(ns)
        if rng.random() < 0.6:
            later = list(pods)
            for _ in range(rng.choice([1, 1, 2, 3])):
                what = rng.random()
                if what < 0.4 and later:
                    later.pop(rng.randrange(len(later)))
                elif what < 0.8:
                    later.append(pod())
                elif later:
                    later[rng.randrange(len(later))] = pod()
            pods = tuple(later)
            bound_ix = bound_ix.next(pods)
        # Mostly asked every step; sometimes a step is skipped (an answer more than one
        # bound step old is not brought up to date from).
        if rng.random() < 0.8:
            assert [x.name for x in not_busy(nodes_ix, bound_ix)] == fresh(ns, pods)
        seen.append((nodes_ix, bound_ix))
        if rng.random() < 0.05:
            # Old indexes asked again (their tables moved on), and old pairs mixed.
            old_nodes, _ = rng.choice(seen)
            _, old_bound = rng.choice(seen)
            assert [x.name for x in not_busy(old_nodes, old_bound)] == fresh(
                old_nodes.nodes, old_bound.bound
            )


def _walk(before: tuple[object, ...], after: tuple[object, ...], most: int) -> Any:
    """_aligned_changes read item by item: the oracle for its C-speed passes."""
    gone: list[object] = []
    added: list[object] = []
    pairs: list[tuple[object, object]] = []
    i = j = 0
    while i < len(before) and j < len(after):
        if before[i] is after[j]:
            i, j = i + 1, j + 1
            continue
        gone.append(before[i])
        if i + 1 < len(before) and before[i + 1] is after[j]:
            i += 1
        else:
            added.append(after[j])
            pairs.append((before[i], after[j]))
            i, j = i + 1, j + 1
    gone += before[i:]
    added += after[j:]
    if len(gone) + len(added) > most:
        return None
    return gone, added, pairs


def test_aligned_changes_answers_as_an_item_by_item_walk() -> None:
    from scaler.core.viewindex import _aligned_changes

    rng = random.Random(3)
    for _ in range(3000):
        before = tuple(object() for _ in range(rng.randrange(0, 12)))
        after = list(before)
        for _ in range(rng.choice([0, 1, 2, 3, 5])):
            what = rng.random()
            if what < 0.25 and after:
                after.pop(rng.randrange(len(after)))
            elif what < 0.5:
                after.insert(rng.randrange(len(after) + 1), object())
            elif what < 0.75:
                after.append(object())
            elif after:
                after[rng.randrange(len(after))] = object()
        if rng.random() < 0.05:
            rng.shuffle(after)
        most = rng.choice([2, 4, 8, 100])
        pairs: list[tuple[object, object]] = []
        got = _aligned_changes(before, tuple(after), most, pairs)
        want = _walk(before, tuple(after), most)
        if want is None:
            assert got is None
        else:
            assert got is not None
            assert (got[0], got[1], pairs) == want


def test_changed_pools_with_a_guess_answers_as_without_one() -> None:
    """The places guessed (the pools this process just resized) are looked at first; the
    answer is the same whatever the guess: right, short of the truth, wrong, out of range."""
    rng = random.Random(17)
    base = pools(small=1, big=2)[0]
    current = [dataclasses.replace(base, name=f"p{i}", current_size=rng.randrange(3))
               for i in range(200)]
    for _ in range(500):
        now = list(current)
        truth = rng.sample(range(len(now)), rng.choice([0, 1, 1, 2, 5]))
        for k in truth:
            now[k] = dataclasses.replace(
                now[k], current_size=now[k].current_size + rng.choice([1, -1, 0]))  # 0: equal
        guess = set(rng.sample(truth, rng.randrange(len(truth) + 1)))
        if rng.random() < 0.3:
            guess |= {rng.randrange(-5, len(now) + 5) for _ in range(rng.randrange(4))}
        want = [k for k in range(len(now)) if current[k] is not now[k] and current[k] != now[k]]
        assert changed_pools(current, now) == want
        assert changed_pools(current, now, guess) == want
        assert changed_pools(tuple(current), tuple(now), sorted(guess)) == want
        current = now


def test_the_daemonsets_follow_the_bound_pods_they_are_read_from() -> None:
    """Kept on the bound index and carried to the next while no pod with an owner comes or
    goes; equal largest pods of one DaemonSet: the first in the tuple stands."""
    def ds(name: str, memory: float) -> BoundPod:
        return BoundPod(PodSpec(name, requests=Resources(memory_mib=memory, pods=1)), "n1",
                        daemonset=True, owner="kube-system/agent")

    a, b = ds("agent-a", 512), ds("agent-b", 512)
    work = tuple(BoundPod(PodSpec(f"w{i}"), f"n{i}") for i in range(12))
    index = BoundIndex.build((a, b))
    assert index.daemonsets() == (a.pod,)
    index = index.next((a, b, *work))  # workload pods came: carried
    assert index.daemonsets() == (a.pod,)
    turned = (*reversed(work), b, a)  # reordered (every place changed): b comes first now
    index = index.next(turned)
    assert index.daemonsets() == (b.pod,) == daemonsets_of(turned)
    bigger = ds("agent-c", 1024)
    index = index.next((*turned, bigger))  # a DaemonSet pod came
    assert index.daemonsets() == (bigger.pod,)
    index = index.next(turned)  # and went
    assert index.daemonsets() == (b.pod,)


@pytest.mark.parametrize("listed", [True, False])
def test_views_by_key_tell_each_new_tuple_as_its_last_one_changed(listed: bool) -> None:
    """Each new tuple holds the views in key order, and its change is told (with the views
    listed too, and without)."""
    rng = random.Random(23)
    told: list[Change[object]] = []
    views: ViewsByKey[str, object] = ViewsByKey(told.append, listed=listed)
    ref: dict[str, object] = {}
    serial = itertools.count()
    for _ in range(40):
        views.set(key := f"k{next(serial)}", ref.setdefault(key, object()))
    last = views.values()
    told.clear()
    for _ in range(2000):
        told_walk(rng, views, ref, lambda _: object(), lambda: f"k{next(serial)}")
        now = views.values()
        assert [id(x) for x in now] == [id(x) for x in ref.values()]
        assert views.values() is now  # kept until a view changes
        if take_told(told, last, now) is not None:
            last = now


def test_an_index_told_what_changed_equals_one_built_afresh(monkeypatch: Any) -> None:
    """A source keeping its views by name tells its indexes what changed in each new tuple
    (ViewsByKey): each index made from what it was told answers as one built afresh, holding
    the very objects of its tuple, and no tuple is walked."""
    rng = random.Random(29)
    keys = ("agent-not-ready",)
    taints = [Taint(TAINT_REMOVING, "", NO_SCHEDULE), Taint(keys[0], "", NO_SCHEDULE),
              Taint("ignore-taint.cluster-autoscaler.kubernetes.io/agent", "", NO_SCHEDULE)]

    def random_node(name: str) -> Node:
        if rng.random() < 0.5 and name in ref_nodes:  # mostly a newer value of the node
            x = ref_nodes[name]
            return dataclasses.replace(
                x, annotations=((ANNOTATION_IDLE_SINCE, "5"),) if rng.random() < 0.5 else (),
                ready=x.ready if rng.random() < 0.8 else not x.ready,
            )
        return n(name, rng.choice(["small", "big", None]), ready=rng.random() < 0.8,
                 gpu_ready=rng.random() < 0.9, unschedulable=rng.random() < 0.1,
                 created_s=float(rng.randrange(20)),
                 taints=tuple(t for t in taints if rng.random() < 0.2),
                 annotations=((ANNOTATION_IDLE_SINCE, "5"),) if rng.random() < 0.3 else (),
                 pool_labelled=rng.random() < 0.8)

    walked: list[object] = []
    for cls in (NodeIndex, BoundIndex):
        monkeypatch.setattr(cls, "next", lambda self, t: walked.append(t) or type(self).build(t))
    indexes = ViewIndexes()
    node_views: ViewsByKey[str, Node] = ViewsByKey(indexes.tell_nodes)
    bound_views: ViewsByKey[str, BoundPod] = ViewsByKey(indexes.tell_bound)
    ref_nodes: dict[str, Node] = {}
    ref_pods: dict[str, BoundPod] = {}
    for i in range(30):
        node_views.set(f"n{i}", v := random_node(f"n{i}"))
        ref_nodes[f"n{i}"] = v
    pod = _bound_pods(rng, nodes=40)
    for _ in range(40):
        bound_views.set((b := pod()).pod.key, b)
        ref_pods[b.pod.key] = b
    index = indexes.nodes(node_views.values())
    index.ready_by_pool(keys), index.ready_by_pool(())  # counts to carry forward
    table = pool_table(pools(small=12, big=9), build_offerings(pools(), Catalog.load())[0])
    serial = itertools.count(30)
    for step in range(400):
        told_walk(rng, node_views, ref_nodes, random_node, lambda: f"n{next(serial)}")
        told_walk(rng, bound_views, ref_pods, lambda _: pod(), lambda: "")
        ns, pods = node_views.values(), bound_views.values()
        index, bound = indexes.nodes(ns), indexes.bound(pods)
        fresh, fresh_bound = NodeIndex.build(ns), BoundIndex.build(pods)
        _same_objects(index, fresh, keys, table)
        assert set(bound.busy) == set(fresh_bound.busy)
        assert sorted(_ids(bound.others)) == sorted(_ids(fresh_bound.others))
        for node in (f"n{i}" for i in range(40)):
            assert bound.workload_on(node) == fresh_bound.workload_on(node)
        if step % 3:  # not every step: carried across the others
            assert bound.daemonsets() == daemonsets_of(pods)
        if rng.random() < 0.7:
            assert _ids(not_busy(index, bound)) == _ids(not_busy(fresh, fresh_bound))
    assert walked == []


def test_a_bound_index_no_longer_holds_the_pods_told_gone(monkeypatch: Any) -> None:
    """Its ids move on with each told change: a later change that tells of a pod already
    gone (as a source with a bug would) is walked, not applied."""
    walked: list[object] = []
    real = BoundIndex.next
    monkeypatch.setattr(BoundIndex, "next",
                        lambda self, t: walked.append(t) or real(self, t))
    pa, pb, pc, pd = (BoundPod(PodSpec(x), f"n{x}") for x in "abcd")
    first = BoundIndex.build((pa, pb, pc))
    second = first.told(Change((pa, pb, pc), (pa, pc, pd), [pb], [], 1))
    assert walked == [] and set(second.busy) == {"na", "nc", "nd"}
    third = second.told(Change((pa, pc, pd), (pa, pd), [pb], [], 0))  # pb again, not pc
    assert walked == [(pa, pd)]
    assert set(third.busy) == {"na", "nd"}
    # And a pod told added is held: telling it gone is applied.
    fourth = third.told(Change((pa, pd), (pa,), [pd], [], 0))
    assert walked == [(pa, pd)] and set(fourth.busy) == {"na"}


def test_a_told_change_that_does_not_fit_the_kept_index_is_walked_instead(
    monkeypatch: Any,
) -> None:
    """A change is used only when it starts from the tuple indexed and adds up against it;
    any other is set aside for the walk, and the index still answers for its tuple."""
    walked: list[object] = []
    for cls in (NodeIndex, BoundIndex):
        real = cls.next
        monkeypatch.setattr(cls, "next",
                            lambda self, t, real=real: walked.append(t) or real(self, t))
    a, b, c, d = (n(x, annotations=((ANNOTATION_IDLE_SINCE, "5"),)) for x in "abcd")
    pa, pb, pc, pd = (BoundPod(PodSpec(x), f"n{x}") for x in "abcd")

    # A change from a tuple the index never saw (one in between was not asked about).
    indexes = ViewIndexes()
    node_views: ViewsByKey[str, Node] = ViewsByKey(indexes.tell_nodes)
    bound_views: ViewsByKey[str, BoundPod] = ViewsByKey(indexes.tell_bound)
    for x, p in ((a, pa), (b, pb)):
        node_views.set(x.name, x)
        bound_views.set(p.pod.key, p)
    indexes.nodes(node_views.values()), indexes.bound(bound_views.values())
    node_views.set("c", c)
    bound_views.set("c", pc)
    node_views.values(), bound_views.values()  # told, never asked about
    node_views.set("d", d)
    bound_views.set("d", pd)
    ns, pods = node_views.values(), bound_views.values()
    assert indexes.nodes(ns).idle_annotated == {"a", "b", "c", "d"}
    assert set(indexes.bound(pods).busy) == {"na", "nb", "nc", "nd"}
    assert walked == [ns, pods]

    # Changes that do not add up against the tuple kept (as a source with a bug would tell).
    def wrong(a: Any, b: Any, c: Any, d: Any) -> list[Any]:
        return [
            ((a, b), (a, b, c, d), [], [], 1),  # two appended, one told
            ((a, b), (a,), [c], [], 0),  # one it does not hold gone
            ((a, b), (a,), [b, b], [], 1),  # one gone twice
            ((a, b), (a, c), [], [(d, c)], 0),  # one it does not hold replaced
        ]

    for before, after, gone, replaced, added in wrong(a, b, c, d):
        indexes = ViewIndexes()
        indexes.nodes(before)
        walked.clear()
        indexes.tell_nodes(Change(before, after, gone, replaced, added))
        got = indexes.nodes(after)
        assert got.by_name == {x.name: x for x in after}
        assert got.idle_annotated == {x.name for x in after}
        assert walked == [after]
    for before, after, gone, replaced, added in wrong(pa, pb, pc, pd):
        indexes = ViewIndexes()
        indexes.bound(before)
        walked.clear()
        indexes.tell_bound(Change(before, after, gone, replaced, added))
        assert set(indexes.bound(after).busy) == {p.node for p in after}
        assert walked == [after]
