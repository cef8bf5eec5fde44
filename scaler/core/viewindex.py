"""Indexes over a cluster view for the questions every tick asks: which nodes carry a given
taint, which are busy, which could be fresh capacity, how many Ready nodes each pool has.

An index is built from one of the view's tuples (``nodes``, ``bound``) and kept while later
views hand back *the same tuple object*. Cluster sources keep their tuples until something
changes (the simulator's World rebuilds one only when a node or a pod changed; the kube
source's snapshot is rebuilt from its watch cache on a change), so a tick in which nothing
changed asks these questions without a pass over the cluster. Identity, not equality: hashing
a thousand frozen nodes would cost what the index saves, and a tuple cannot change while it
is held. Each index is a pure function of its tuple; keeping it changes no answer, only when
it is computed.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from scaler.core.model import PodSpec
from scaler.core.offerings import PoolTable, is_startup_taint
from scaler.core.state import ANNOTATION_IDLE_SINCE, TAINT_REMOVING, BoundPod, Node


@dataclass(eq=False)
class NodeIndex:
    """What every tick asks of ``nodes``; built once per tuple."""

    nodes: tuple[Node, ...]
    position: dict[str, int]
    """Node name -> its place in ``nodes`` (the order actions are emitted in)."""
    by_taint_key: dict[str, tuple[Node, ...]]
    """Taint key -> the nodes carrying a taint with that key, in view order."""
    idle_annotated: frozenset[str]
    """Nodes with an idle-since annotation (a value, parsable or not)."""
    unlabelled: tuple[Node, ...]
    """Nodes of a known pool whose pool label does not name it, in view order."""
    open_by_created: tuple[Node, ...]
    """Nodes of a pool, Ready with GPUs, not cordoned and not being removed, by creation
    time (ties in view order): the only ones that can be fresh capacity."""
    created_s: list[float]
    """``open_by_created``'s creation times, for bisecting."""
    _ready: dict[tuple[str, ...], Counter[str]] = field(default_factory=dict)
    _on_the_way: dict[tuple[str, ...], tuple[PoolTable, dict[str, int]]] = field(
        default_factory=dict
    )

    @classmethod
    def build(cls, nodes: tuple[Node, ...]) -> NodeIndex:
        by_taint: dict[str, list[Node]] = {}
        idle: set[str] = set()
        unlabelled: list[Node] = []
        open_nodes: list[tuple[float, int, Node]] = []
        for i, n in enumerate(nodes):
            removing = False
            if n.taints:
                keys = {t.key for t in n.taints}
                for key in keys:
                    by_taint.setdefault(key, []).append(n)
                removing = TAINT_REMOVING in keys
            if n.annotations and n.annotation(ANNOTATION_IDLE_SINCE) is not None:
                idle.add(n.name)
            if n.pool is not None:
                if not n.pool_labelled:
                    unlabelled.append(n)
                if n.schedulable_ready and not removing:
                    open_nodes.append((n.created_s, i, n))
        open_nodes.sort(key=lambda x: (x[0], x[1]))
        return cls(
            nodes=nodes,
            position={n.name: i for i, n in enumerate(nodes)},
            by_taint_key={k: tuple(v) for k, v in by_taint.items()},
            idle_annotated=frozenset(idle),
            unlabelled=tuple(unlabelled),
            open_by_created=tuple(n for _, _, n in open_nodes),
            created_s=[c for c, _, _ in open_nodes],
        )

    def tainted(self, key: str) -> tuple[Node, ...]:
        return self.by_taint_key.get(key, ())

    def open_since(self, since_s: float) -> list[Node]:
        """Open nodes (see ``open_by_created``) created at or after ``since_s``, in view
        order."""
        lo = bisect.bisect_left(self.created_s, since_s)
        if lo == len(self.created_s):
            return []
        found = self.open_by_created[lo:]
        return sorted(found, key=lambda n: self.position[n.name]) if len(found) > 1 else list(found)

    def ready_by_pool(self, startup_keys: Sequence[str]) -> Counter[str]:
        """Pool -> nodes Ready with their GPUs advertised and no startup taint left."""
        keys = tuple(startup_keys)
        ready = self._ready.get(keys)
        if ready is None:
            ready = Counter(
                n.pool
                for n in self.nodes
                if n.pool is not None and n.ready and n.gpu_ready
                and not (n.taints and any(is_startup_taint(t, keys) for t in n.taints))
            )
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
    """What every tick asks of ``bound``; built once per tuple."""

    bound: tuple[BoundPod, ...]
    busy: frozenset[str]
    """Nodes with a workload pod (DaemonSet and mirror pods never make a node busy)."""
    others: tuple[BoundPod, ...]
    """The DaemonSet and mirror pods, in view order."""
    _workload: dict[str, tuple[PodSpec, ...]] | None = None

    @classmethod
    def build(cls, bound: tuple[BoundPod, ...]) -> BoundIndex:
        busy: set[str] = set()
        others: list[BoundPod] = []
        for b in bound:
            if b.is_workload:
                busy.add(b.node)
            else:
                others.append(b)
        return cls(bound=bound, busy=frozenset(busy), others=tuple(others))

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


_NODES: _Last[tuple[Node, ...], NodeIndex] = _Last()
_BOUND: _Last[tuple[BoundPod, ...], BoundIndex] = _Last()
_IDLE: _Last[tuple[NodeIndex, BoundIndex], tuple[Node, ...]] = _Last()


def node_index(nodes: tuple[Node, ...]) -> NodeIndex:
    return _NODES.get(nodes) or _NODES.put(nodes, NodeIndex.build(nodes))


def bound_index(bound: tuple[BoundPod, ...]) -> BoundIndex:
    return _BOUND.get(bound) or _BOUND.put(bound, BoundIndex.build(bound))


def not_busy(nodes: NodeIndex, bound: BoundIndex) -> tuple[Node, ...]:
    """The nodes with no workload pod, in view order; kept per pair of indexes."""
    kept = _IDLE.key
    if kept is not None and kept[0] is nodes and kept[1] is bound and _IDLE.value is not None:
        return _IDLE.value
    busy = bound.busy
    return _IDLE.put((nodes, bound), tuple(n for n in nodes.nodes if n.name not in busy))


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
