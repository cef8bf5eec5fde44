"""Indexes over a cluster view for the questions every tick asks: which nodes carry a given
taint, which are busy, which could be fresh capacity, how many Ready nodes each pool has.

An index is built from one of the view's tuples (``nodes``, ``bound``) and kept while later
views hand back *the same tuple object*. Cluster sources keep their tuples until something
changes (the simulator's World rebuilds one only when a node or a pod changed; the kube
source's snapshot is rebuilt from its watch cache on a change), so a tick in which nothing
changed asks these questions without a pass over the cluster. Identity, not equality: hashing
a thousand frozen nodes would cost what the index saves, and a tuple cannot change while it
is held. Each index is a pure function of its tuple; keeping it changes no answer, only when
it is computed. The indexes are kept per source (:class:`ViewIndexes`, carried on each
``ClusterView`` it builds), not per process: two sources, or a test's hand-built views, never
share them.
"""

from __future__ import annotations

import bisect
import itertools
import operator
from collections import Counter
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from scaler.core.model import PodSpec
from scaler.core.offerings import PoolTable, is_startup_taint
from scaler.core.state import ANNOTATION_IDLE_SINCE, TAINT_REMOVING, BoundPod, ClusterView, Node


def _facts(n: Node) -> tuple[frozenset[str], bool, bool, bool]:
    """What the index keeps of one node: its taint keys, whether it has an idle-since
    annotation, whether it is of a pool but not labelled so, whether it is open (see
    ``NodeIndex.open_by_created``)."""
    keys = frozenset(t.key for t in n.taints) if n.taints else frozenset()
    idle = bool(n.annotations) and n.annotation(ANNOTATION_IDLE_SINCE) is not None
    unlabelled = n.pool is not None and not n.pool_labelled
    is_open = n.pool is not None and n.schedulable_ready and TAINT_REMOVING not in keys
    return keys, idle, unlabelled, is_open


def _ready(n: Node, keys: Sequence[str]) -> bool:
    return (
        n.pool is not None and n.ready and n.gpu_ready
        and not (n.taints and any(is_startup_taint(t, keys) for t in n.taints))
    )


_name = operator.attrgetter("name")


@dataclass(eq=False)
class NodeIndex:
    """What every tick asks of ``nodes``; built once per tuple, from the last index by the
    nodes that changed (new objects: a node value is replaced when it changes) and those
    gone. Sets are kept unordered and put in view order when asked, so a tuple that only
    reorders nodes changes no answer."""

    nodes: tuple[Node, ...]
    ids: set[int]
    """The nodes' ids, for telling which nodes of the next tuple are new (the index holds
    the nodes, so no id is reused while it lives)."""
    by_taint_key: dict[str, list[Node]]
    """Taint key -> the nodes carrying a taint with that key (any order)."""
    idle_annotated: set[str]
    """Nodes with an idle-since annotation (a value, parsable or not)."""
    unlabelled_nodes: list[Node]
    """Nodes of a known pool whose pool label does not name it (any order)."""
    open_by_created: list[Node]
    """Nodes of a pool, Ready with GPUs, not cordoned and not being removed, by creation
    time: the only ones that can be fresh capacity."""
    created_s: list[float]
    """``open_by_created``'s creation times, for bisecting."""
    _position: dict[str, int] | None = None
    _ready: dict[tuple[str, ...], Counter[str]] = field(default_factory=dict)
    _free: tuple[BoundIndex, tuple[Node, ...]] | None = None
    """:func:`not_busy` against the last bound index asked about."""
    _on_the_way: dict[tuple[str, ...], tuple[PoolTable, dict[str, int]]] = field(
        default_factory=dict
    )

    @classmethod
    def build(cls, nodes: tuple[Node, ...]) -> NodeIndex:
        index = cls(nodes, set(map(id, nodes)), {}, set(), [], [], [])
        index._add(nodes)
        return index

    def _add(self, nodes: Sequence[Node]) -> None:
        for n in nodes:
            keys, is_idle, is_unlabelled, is_open = _facts(n)
            for key in keys:
                self.by_taint_key.setdefault(key, []).append(n)
            if is_idle:
                self.idle_annotated.add(n.name)
            if is_unlabelled:
                self.unlabelled_nodes.append(n)
            if is_open:
                i = bisect.bisect_right(self.created_s, n.created_s)
                self.open_by_created.insert(i, n)
                self.created_s.insert(i, n.created_s)

    def next(self, nodes: tuple[Node, ...]) -> NodeIndex:
        """The index of ``nodes``, a later tuple of the same cluster: this one's, less the
        nodes gone, plus the new ones. The identity passes run at C speed; Python runs per
        changed node only."""
        ids = set(map(id, nodes))
        gone = self.ids - ids
        new = ids - self.ids
        if len(gone) + len(new) > max(8, len(nodes) // 4) or len(ids) != len(nodes):
            return NodeIndex.build(nodes)
        removed = (
            list(itertools.compress(self.nodes, map(gone.__contains__, map(id, self.nodes))))
            if gone else []
        )
        added = (
            list(itertools.compress(nodes, map(new.__contains__, map(id, nodes)))) if new else []
        )
        by_taint = dict(self.by_taint_key)
        idle = set(self.idle_annotated)
        unlabelled = self.unlabelled_nodes
        open_nodes, created = self.open_by_created, self.created_s
        for n in removed:
            keys, is_idle, is_unlabelled, is_open = _facts(n)
            for key in keys:
                by_taint[key] = [m for m in by_taint[key] if m is not n]
                if not by_taint[key]:
                    del by_taint[key]
            if is_idle:
                idle.discard(n.name)
            if is_unlabelled:
                unlabelled = [m for m in unlabelled if m is not n]
            if is_open:
                if open_nodes is self.open_by_created:
                    open_nodes, created = list(open_nodes), list(created)
                i = bisect.bisect_left(created, n.created_s)
                while open_nodes[i] is not n:
                    i += 1
                del open_nodes[i], created[i]
        if added:
            if open_nodes is self.open_by_created:
                open_nodes, created = list(open_nodes), list(created)
            if unlabelled is self.unlabelled_nodes:
                unlabelled = list(unlabelled)
            for key in {k for n in added if n.taints for k in _facts(n)[0]}:
                by_taint[key] = list(by_taint.get(key, ()))
        index = NodeIndex(nodes, ids, by_taint, idle, unlabelled, open_nodes, created)
        index._add(added)
        # The counts move to the new index and are updated in place (copying a count per
        # pool is the per-tick work this avoids); this index recounts if asked again.
        index._ready, self._ready = self._ready, {}
        for startup, counts in index._ready.items():
            for n in removed:
                if n.pool is not None and _ready(n, startup):
                    counts[n.pool] -= 1
            for n in added:
                if n.pool is not None and _ready(n, startup):
                    counts[n.pool] += 1
        return index

    @property
    def position(self) -> dict[str, int]:
        """Node name -> its place in ``nodes`` (the order actions are emitted in)."""
        if self._position is None:
            self._position = dict(zip(map(_name, self.nodes), range(len(self.nodes)),
                                      strict=True))
        return self._position

    def _in_view_order(self, xs: Sequence[Node]) -> tuple[Node, ...]:
        if len(xs) < 2:
            return tuple(xs)
        position = self.position
        return tuple(sorted(xs, key=lambda m: position[m.name]))

    def tainted(self, key: str) -> tuple[Node, ...]:
        """The nodes carrying a taint with ``key``, in view order."""
        return self._in_view_order(self.by_taint_key.get(key, ()))

    @property
    def unlabelled(self) -> tuple[Node, ...]:
        """Nodes of a known pool whose pool label does not name it, in view order."""
        return self._in_view_order(self.unlabelled_nodes)

    def open_since(self, since_s: float) -> list[Node]:
        """Open nodes (see ``open_by_created``) created at or after ``since_s``, in view
        order."""
        lo = bisect.bisect_left(self.created_s, since_s)
        if lo == len(self.created_s):
            return []
        return list(self._in_view_order(self.open_by_created[lo:]))

    def ready_by_pool(self, startup_keys: Sequence[str]) -> Counter[str]:
        """Pool -> nodes Ready with their GPUs advertised and no startup taint left."""
        keys = tuple(startup_keys)
        ready = self._ready.get(keys)
        if ready is None:
            ready = Counter(n.pool for n in self.nodes if n.pool is not None and _ready(n, keys))
            self._ready[keys] = ready
        return ready

    def on_the_way(self, table: PoolTable, startup_keys: Sequence[str]) -> dict[str, int]:
        """Pool -> desired size minus Ready nodes, for the pools of ``table`` with a desired
        size (:func:`scaler.core.decide.nodes_on_the_way`). Kept per table (by identity) and
        keys; the caller must not change the answer."""
        keys = tuple(startup_keys)
        kept = self._on_the_way.get(keys)
        if kept is not None and kept[0] is table:
            return kept[1]
        ready = self.ready_by_pool(keys)
        out = {
            p.name: p.current_size - ready[p.name]
            for p in table.sized_by_name.values()
            if p.current_size > ready[p.name]
        }
        self._on_the_way[keys] = (table, out)
        return out


@dataclass(eq=False)
class BoundIndex:
    """What every tick asks of ``bound``; built once per tuple, from the last index by the
    pods that changed."""

    bound: tuple[BoundPod, ...]
    ids: set[int]
    """The pods' ids (see ``NodeIndex.ids``)."""
    _counts: dict[str, int] | None
    """Node -> workload pods on it; None once moved to the next index."""
    others: list[BoundPod]
    """The DaemonSet and mirror pods (any order)."""
    _workload: dict[str, tuple[PodSpec, ...]] | None = None

    @classmethod
    def build(cls, bound: tuple[BoundPod, ...]) -> BoundIndex:
        counts: dict[str, int] = {}
        others: list[BoundPod] = []
        for b in bound:
            if b.is_workload:
                counts[b.node] = counts.get(b.node, 0) + 1
            else:
                others.append(b)
        return cls(bound, set(map(id, bound)), counts, others)

    @property
    def busy(self) -> AbstractSet[str]:
        """Nodes with a workload pod (DaemonSet and mirror pods never make a node busy)."""
        if self._counts is None:  # moved on: count again for this tuple
            self._counts = BoundIndex.build(self.bound)._counts
            assert self._counts is not None
        return self._counts.keys()

    def next(self, bound: tuple[BoundPod, ...]) -> BoundIndex:
        """The index of ``bound``, a later tuple: this one's counts, less the pods gone,
        plus the new ones (they move to the new index; this one counts again if asked)."""
        ids = set(map(id, bound))
        gone = self.ids - ids
        new = ids - self.ids
        if (
            self._counts is None
            or len(gone) + len(new) > max(8, len(bound) // 4)
            or len(ids) != len(bound)
        ):
            return BoundIndex.build(bound)
        counts, others = self._counts, self.others
        self._counts = None
        if gone:
            for b in itertools.compress(self.bound, map(gone.__contains__, map(id, self.bound))):
                if b.is_workload:
                    left = counts[b.node] - 1
                    if left:
                        counts[b.node] = left
                    else:
                        del counts[b.node]
                else:
                    others = [o for o in others if o is not b]
        if new:
            for b in itertools.compress(bound, map(new.__contains__, map(id, bound))):
                if b.is_workload:
                    counts[b.node] = counts.get(b.node, 0) + 1
                else:
                    others = [*others, b]
        return BoundIndex(bound, ids, counts, others)

    def workload_on(self, node: str) -> tuple[PodSpec, ...]:
        """The workload pods bound to ``node``, in view order."""
        if self._workload is None:
            by_node: dict[str, list[PodSpec]] = {}
            for b in self.bound:
                if b.is_workload:
                    by_node.setdefault(b.node, []).append(b.pod)
            self._workload = {k: tuple(v) for k, v in by_node.items()}
        return self._workload.get(node, ())


K = TypeVar("K")
V = TypeVar("V")


class _Last(Generic[K, V]):
    """The last value built, kept while the next key is the same object. It holds the key,
    so the object cannot be freed and its id reused by another."""

    def __init__(self) -> None:
        self.key: K | None = None
        self.value: V | None = None

    def get(self, key: K) -> V | None:
        return self.value if self.key is key else None

    def put(self, key: K, value: V) -> V:
        self.key, self.value = key, value
        return value


class ViewIndexes:
    """The indexes of one cluster source's views, each kept while the source hands back the
    same tuple and updated from the last one when it hands back a new tuple. Each source owns
    one and gives it to every view it builds (``ClusterView.indexes``); a view built
    elsewhere (a test, a one-off) gets a fresh one, so no two sources share state."""

    def __init__(self) -> None:
        self._nodes: _Last[tuple[Node, ...], NodeIndex] = _Last()
        self._bound: _Last[tuple[BoundPod, ...], BoundIndex] = _Last()
        self.cover: tuple[object, ...] | None = None
        """decide's last covering of the pending pods by nodes on their way: what it was
        asked and answered (:func:`scaler.core.decide._uncovered` keeps it)."""

    def nodes(self, nodes: tuple[Node, ...]) -> NodeIndex:
        kept = self._nodes.get(nodes)
        if kept is not None:
            return kept
        last = self._nodes.value
        return self._nodes.put(
            nodes, last.next(nodes) if last is not None else NodeIndex.build(nodes)
        )

    def bound(self, bound: tuple[BoundPod, ...]) -> BoundIndex:
        kept = self._bound.get(bound)
        if kept is not None:
            return kept
        last = self._bound.value
        return self._bound.put(
            bound, last.next(bound) if last is not None else BoundIndex.build(bound)
        )


def node_index(view: ClusterView) -> NodeIndex:
    """The index of ``view.nodes``, from the view's source's indexes."""
    return view.indexes.nodes(view.nodes)


def bound_index(view: ClusterView) -> BoundIndex:
    """The index of ``view.bound``, from the view's source's indexes."""
    return view.indexes.bound(view.bound)


def not_busy(nodes: NodeIndex, bound: BoundIndex) -> tuple[Node, ...]:
    """The nodes with no workload pod, in view order; kept on ``nodes`` per bound index."""
    kept = nodes._free
    if kept is not None and kept[0] is bound:
        return kept[1]
    free = map(operator.not_, map(bound.busy.__contains__, map(_name, nodes.nodes)))
    out = tuple(itertools.compress(nodes.nodes, free))
    nodes._free = (bound, out)
    return out


def idle_candidates(
    nodes: NodeIndex, bound: BoundIndex, remembered: Mapping[str, float]
) -> list[Node]:
    """In view order: the nodes with no workload pod, and the busy ones that may still be
    marked idle (an idle-since annotation, or a time in ``remembered``): the only nodes
    scale-down has anything to say about."""
    free = not_busy(nodes, bound)
    marked = nodes.idle_annotated.union(remembered) if remembered else nodes.idle_annotated
    busy_marked = [
        nodes.nodes[i]
        for name in marked
        if name in bound.busy and (i := nodes.position.get(name)) is not None
    ]
    if not busy_marked:
        return list(free)
    out = list(free) + busy_marked
    out.sort(key=lambda n: nodes.position[n.name])
    return out
