"""Views kept in name order (SortedViews, the kube source's nodes): each new tuple is the
views sorted by name, its change is told exactly, and an index told of nodes put among the
others answers as one built afresh without walking a tuple."""

from __future__ import annotations

import dataclasses
import random
from typing import Any

import pytest

from scaler.core.model import NO_SCHEDULE, PodSpec, Taint
from scaler.core.state import ANNOTATION_IDLE_SINCE, TAINT_REMOVING, BoundPod, Node
from scaler.core.viewchange import Change, SortedViews, ViewsByKey
from scaler.core.viewindex import (
    BoundIndex,
    NodeIndex,
    ViewIndexes,
    _State,
    idle_candidates,
    not_busy,
)
from tests.fixtures.views import applied, take_told, told_walk


def _ids(xs: Any) -> list[int]:
    return [id(x) for x in xs]


def _dense_name(rng: random.Random) -> str:
    """Names from a small alphabet: most new ones land between two held ones, many in
    the same gap."""
    return "".join(rng.choice("ab") for _ in range(rng.randrange(1, 9)))


def test_sorted_views_tell_each_new_tuple_as_its_last_one_changed() -> None:
    rng = random.Random(31)
    told: list[Change[object]] = []
    views: SortedViews[object] = SortedViews(told.append)
    ref: dict[str, object] = {}
    last = views.values()
    among = 0
    for _ in range(3000):
        told_walk(rng, views, ref, lambda _: object(), lambda: _dense_name(rng))
        now = views.values()
        assert _ids(now) == _ids(ref[k] for k in sorted(ref))
        assert views.values() is now and len(views) == len(ref)  # kept until a view changes
        if (change := take_told(told, last, now)) is None:
            continue
        among += change.added_at is not None
        last = now
    assert among > 100  # most additions land among the others


@pytest.mark.parametrize("listed", [True, False])
def test_views_by_key_cleared_and_set_again_tell_the_list_order(listed: bool) -> None:
    told: list[Change[object]] = []
    views: ViewsByKey[str, object] = ViewsByKey(told.append, listed=listed)
    a, b, c = object(), object(), object()
    views.set("a", a)
    views.set("b", b)
    before = views.values()
    told.clear()
    views.clear()
    views.set("c", c)
    views.set("b", b)
    after = views.values()
    assert after == (c, b) and len(views) == 2 and views.get("a") is None
    (change,) = told
    assert change.before is before and change.adds_up() and applied(change) == _ids(after)


def test_an_index_told_of_nodes_put_among_the_others_equals_one_built_afresh(
    monkeypatch: Any,
) -> None:
    """Nodes in name order, most new ones put between two others (some runs of them, some
    in a gap until its ranks run out): each index made from what it was told answers as
    one built afresh, in view order, and no tuple is walked."""
    rng = random.Random(37)
    keys = ("agent-not-ready",)
    taints = [Taint(TAINT_REMOVING, "", NO_SCHEDULE), Taint(keys[0], "", NO_SCHEDULE)]
    idle = ((ANNOTATION_IDLE_SINCE, "5"),)

    def make(name: str) -> Node:
        if rng.random() < 0.4 and name in ref:  # a newer value of the node
            return dataclasses.replace(ref[name], annotations=idle if rng.random() < 0.5 else ())
        return Node(name, rng.choice(["small", "big", None]), "m5.large", "on-demand",
                    ready=rng.random() < 0.8, created_s=float(rng.randrange(20)),
                    taints=tuple(t for t in taints if rng.random() < 0.2),
                    annotations=idle if rng.random() < 0.3 else (),
                    pool_labelled=rng.random() < 0.8)

    walked: list[object] = []
    monkeypatch.setattr(NodeIndex, "next", lambda self, t: walked.append(t) or NodeIndex.build(t))
    inserted: list[bool] = []
    real_insert = _State.insert
    monkeypatch.setattr(_State, "insert",
                        lambda self, ns, at: inserted.append(r := real_insert(self, ns, at)) or r)
    indexes = ViewIndexes()
    views: SortedViews[Node] = SortedViews(indexes.tell_nodes)
    ref: dict[str, Node] = {}
    bound = BoundIndex.build(())

    def check(ns: tuple[Node, ...]) -> None:
        index, fresh = indexes.nodes(ns), NodeIndex.build(ns)
        ranks = [index.state.rank[id(x)] for x in ns]
        assert ranks == sorted(set(ranks))  # view order
        assert index.position == fresh.position
        assert _ids(index.by_name[x.name] for x in ns) == _ids(ns)
        for key in fresh.taint_keys | index.taint_keys:
            assert _ids(index.tainted(key)) == _ids(fresh.tainted(key))
        assert _ids(index.unlabelled) == _ids(fresh.unlabelled)
        assert _ids(index.open_since(5.0)) == _ids(fresh.open_since(5.0))
        assert index.idle_annotated == fresh.idle_annotated
        for ks in ((), keys):
            assert +index.ready_by_pool(ks) == +fresh.ready_by_pool(ks)
        if rng.random() < 0.7:
            assert _ids(not_busy(index, bound)) == _ids(not_busy(fresh, bound))
            assert _ids(idle_candidates(index, bound, {})) == _ids(
                idle_candidates(fresh, bound, {})
            )

    for step in range(1500):
        told_walk(rng, views, ref, make, lambda: _dense_name(rng))
        ns = views.values()
        if step % 50 == 0:  # some nodes busy: the free answer follows insertions too
            bound = BoundIndex.build(tuple(
                BoundPod(PodSpec(f"p{i}"), x.name) for i, x in enumerate(ns) if rng.random() < 0.5
            ))
        check(ns)
    assert inserted and all(inserted)
    # Each new name right after the last one, before "n": one gap halved until it runs out.
    for name in ("m", "n", *("m" + "a" * i for i in range(1, 40))):
        views.set(name, ref.setdefault(name, make(name)))
        check(views.values())
    assert walked == []
    assert inserted.count(True) > 200 and not all(inserted)  # the gap ran out (built afresh)


def test_a_walk_reading_a_shifted_tuple_keeps_the_idle_mark_of_a_node_it_moved() -> None:
    """A node gone before the others and one added after them, in a tuple by name (the
    length stands): the walk reads every place as replaced, adding the marked node's new
    value before dropping its old one; its mark stays (it was lost)."""
    idle = ((ANNOTATION_IDLE_SINCE, "5"),)

    def mk(name: str, **kw: Any) -> Node:
        return Node(name, "small", "m5.large", "on-demand", **kw)

    marked = mk("b", annotations=idle)
    index = NodeIndex.build((mk("a"), marked, mk("c")))
    after = (dataclasses.replace(marked), mk("c"), mk("d"))
    assert index.next(after).idle_annotated == NodeIndex.build(after).idle_annotated == {"b"}
