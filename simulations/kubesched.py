"""kube-scheduler, as far as placement cost goes: bind pending pods to Ready nodes with room.

Runs before the autoscaler gets a say, as in a real cluster: a pending pod that fits an
existing node is bound there at once, and the autoscaler only ever sees the ones that fit
nowhere. Filters: node schedulable (Ready, GPUs advertised, not cordoned), resources
(requests + already bound <= allocatable on every axis, pods included), and the pod's
node selector, affinity, tolerations, zone, arch and capacity type against the node's
labels and taints — the pool-level masks of :class:`scaler.core.offerings.Offerings`, since
a node carries its pool's labels and taints, plus the node's own zone. A pod the webhook
pinned carries the pin in its affinity, as live. A pod the webhook made exclusive (its pin's
:attr:`~scaler.core.pinning.Pin.exclusive`: the live pod's required anti-affinity against
``scaler.io/exclusive`` on the hostname) fits only nodes holding no other exclusive pod.

Scoring is NodeResourcesFit's default, **LeastAllocated**: the node with the largest mean
free fraction of CPU and memory after binding wins (the emptiest node). That is exactly how
a small unpinned pod ends up on a big idle node. Other score plugins (balanced allocation,
image locality, topology spread) are not modelled; ties go to the lowest node slot.

Work is proportional to what changed: a pod class that found no node is retried only
against nodes that gained room or became schedulable since.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from scaler.core.model import CPU, MEM, BoolArray, FloatArray, IntArray
from scaler.core.offerings import Offerings
from simulations.nodetable import NodeTable

if TYPE_CHECKING:
    from simulations.objects import SimNode, SimPod

_EPS = 1e-6
assert MEM == CPU + 1
_CPU_MEM = slice(CPU, MEM + 1)
"""The CPU and memory columns, as a slice: views, not the copies a fancy index makes."""
_ALL = np.logical_and.reduce
"""``np.all`` without its Python wrapper (it runs per class and per bind)."""
_FEW = 16
"""Up to this many pools a class admits (or nodes changed), :meth:`KubeScheduler._may_fit`
answers in Python, and up to this many candidate nodes a class is bound in Python
(:meth:`KubeScheduler._bind_few`); beyond, the arrays answer about as fast."""


class _Class:
    """One scheduling class's pending pods, first come first, and what it asks of a node
    (equal for every member: the class key holds the requests and the constraints)."""

    __slots__ = ("mask", "members", "pools", "zone")

    def __init__(self) -> None:
        self.members: list[SimPod] = []
        self.mask: BoolArray | None = None
        """(P,) pools whose labels and taints admit the class; set on its first try."""
        self.pools: frozenset[int] | None = None
        """The pools of ``mask``, when they are few (a pod the webhook pinned to its tier):
        a try whose candidates are in none of them finds nothing, checked without arrays."""
        self.zone: int | None = None


class KubeScheduler:
    """The pending queue and the bind loop."""

    def __init__(self, table: NodeTable, offerings: Offerings) -> None:
        self.table = table
        self.offerings = offerings
        self.classes: dict[int, _Class] = {}
        """Pending pods by scheduling class (equal constraints), by the class's number."""
        self._numbers: dict[tuple[object, ...], int] = {}
        """Each class key seen, numbered: a key is a tuple of frozen dataclasses whose hash
        is worked out again at every use, so it is hashed once per pod queued."""
        self._queued_as: dict[SimPod, int] = {}
        """The class number each queued pod was queued under."""
        self._admits: dict[int, tuple[BoolArray, frozenset[int] | None, int | None]] = {}
        """Each class number's (mask, pools, zone) (:class:`_Class`), kept when its class
        empties: they follow from the class key alone, and a class comes back often (a
        pod of a kind already seen, pinned to the same tier)."""
        self._fresh: set[int] = set()
        self._changed: set[int] = set()
        self._queued = 0

    def add(self, pod: SimPod, *, keep_place: bool = False) -> None:
        """Queue a pending pod; ``keep_place`` for one whose spec changed (pinned) while
        it waited, which keeps its place in the queue."""
        key = self._numbers.setdefault(_key(pod), len(self._numbers))
        self._queued_as[pod] = key
        cls = self.classes.get(key)
        if cls is None:
            cls = self.classes[key] = _Class()
        if keep_place:
            bisect.insort(cls.members, pod, key=lambda p: p.queued)
        else:
            self._queued += 1
            pod.queued = self._queued
            cls.members.append(pod)
        self._fresh.add(key)

    def remove(self, pod: SimPod) -> None:
        key = self._queued_as.pop(pod, None)
        if key is None:
            return
        cls = self.classes.get(key)
        if cls is None:
            return
        cls.members.remove(pod)
        if not cls.members:
            del self.classes[key]
            self._fresh.discard(key)

    def node_changed(self, slot: int) -> None:
        """The node at ``slot`` gained room or became schedulable."""
        self._changed.add(slot)

    def run(self, bind: Callable[[SimPod, SimNode], None]) -> int:
        """Bind what can be bound with ``bind(pod, node)``, the world's callback; return how
        many pods were. ``bind`` must call :meth:`remove` for the pod, and change no table row
        but the node's (what it uses, its exclusive pods): a run re-checks only that row
        between two binds. It is an argument, not an attribute: a scheduler holding the
        world's bound method would tie the world into a reference cycle, which only the
        cyclic collector frees (:func:`simulations.engine.rare_collections`)."""
        if not self.classes:
            if self._changed:
                self._changed.clear()
            return 0
        if not self._changed and not self._fresh:
            return 0
        table = self.table
        # Whether a node is schedulable does not change while pods bind, so the nodes that
        # are not drop out once, here, rather than per pod.
        if self._changed:
            ok, size = table.ok, table.size
            slots = sorted([s for s in self._changed if s < size and ok.item(s)])
            self._changed = set()
        else:
            slots = []
        fresh = self._fresh
        self._fresh = set()
        # A class tried before is tried only against changed nodes: with none, only the
        # fresh classes have anything to try.
        if slots:
            classes = list(self.classes.items())
        else:
            classes = [(k, self.classes[k]) for k in fresh if k in self.classes]
        if not classes:
            return 0
        # The pools of the changed nodes, and of those that hold no exclusive pod, when they
        # are few. Binds below only take room: these stay supersets of what is left.
        changed_pools = changed_open = None
        if len(slots) <= _FEW:
            pool_of, held = table.pool_of, table.exclusive
            changed_pools = {pool_of[s] for s in slots}
            changed_open = {pool_of[s] for s in slots if not held.item(s)}
        changed: IntArray | None = None  # ``slots`` as an array, once a class needs it
        bound = 0
        # First come, first served across classes, as kube-scheduler's active queue orders
        # pods of equal priority by the time they were queued.
        if len(classes) > 1:
            classes.sort(key=lambda kv: kv[1].members[0].queued)
        for key, cls in classes:
            all_ready = key in fresh
            if not all_ready and not slots:
                continue
            first = cls.members[0]
            exclusive = first.exclusive
            if cls.mask is None:
                self._admit(key, cls)
            if not self._may_fit(cls, all_ready, changed_open if exclusive else changed_pools,
                                 exclusive):
                continue
            # The schedulable nodes are listed only for a class that may fit one of them.
            if all_ready and cls.pools is not None:
                # Only the nodes of its few pools can fit it (for an exclusive class, those
                # holding no exclusive pod): on DLRM about 4 of some 600 schedulable ones.
                # The others would be masked out after listing them.
                by_pool = table.open_in_pool if exclusive else table.ready_in_pool
                few = sorted([s for p in cls.pools for s in by_pool.get(p, ())])
                if len(few) <= _FEW:
                    bound += self._bind_few(cls, few, exclusive, bind)
                else:
                    bound += self._bind_many(cls, np.array(few, dtype=np.int64), exclusive, bind)
                continue
            if all_ready:
                cand = table.ready()
                if cand.size <= _FEW:
                    bound += self._bind_few(cls, cand.tolist(), exclusive, bind)
                    continue
            elif len(slots) <= _FEW:
                bound += self._bind_few(cls, slots, exclusive, bind)
                continue
            else:
                if changed is None:
                    changed = np.array(slots, dtype=np.int64)
                cand = changed
            bound += self._bind_many(cls, cand, exclusive, bind)
        return bound

    def _bind_many(
        self, cls: _Class, cand: IntArray, exclusive: bool,
        bind: Callable[[SimPod, SimNode], None],
    ) -> int:
        """Bind the class's pods, first come first, to the best of the candidate slots
        ``cand`` (ascending) that fit; return how many were bound. With arrays: one pass
        over all the candidates, then only the row of the node each pod went to."""
        table = self.table
        cand = cand[self._static_mask(cls, cand, exclusive)]
        if cand.size == 0:
            return 0
        req = cls.members[0].req
        # Allocatable does not change while pods bind; what is used does, on the node a
        # pod was bound to only: the other nodes fit and score as they did. ``used``
        # follows the table on the rows that can still take a pod (an exclusive pod's
        # node cannot: it fits no more).
        alloc = table.alloc[cand]
        used = table.used[cand]
        room = alloc + _EPS
        fits: BoolArray = _ALL(used + req <= room, axis=1)
        scores: FloatArray | None = None
        changed_row = -1
        bound = 0
        for pod in list(cls.members):
            if changed_row >= 0:
                j, k = changed_row, changed_row + 1
                used[j] = table.used[cand[j]]
                fits[j] = _ALL(used[j:k] + req <= room[j:k], axis=1)[0]
                if scores is not None:
                    scores[j] = _least_allocated(alloc[j:k], used[j:k], req)[0]
                changed_row = -1
            fitting = fits.nonzero()[0]  # fits is 1-D: flatnonzero without its wrapper
            if fitting.size == 0:
                break
            if fitting.size == 1:
                j = int(fitting[0])
            else:
                if scores is None:
                    scores = _least_allocated(alloc, used, req)
                j = int(fitting[scores[fitting].argmax()])  # the first of the best
            node = table.nodes[int(cand[j])]
            assert node is not None
            bind(pod, node)
            bound += 1
            if exclusive:
                fits[j] = False  # it holds an exclusive pod now
            else:
                changed_row = j
        return bound

    def _bind_few(
        self, cls: _Class, slots: list[int], exclusive: bool,
        bind: Callable[[SimPod, SimNode], None],
    ) -> int:
        """:meth:`_bind_many` for a few candidate slots (ascending), in Python: most tries
        are against the one node that changed (Ready, or a pod done), where a dozen array
        operations would cost more than the check. The same filters and the same float
        operations on the same values, so the same nodes fit and score the same."""
        table = self.table
        mask, zone = cls.mask, cls.zone
        assert mask is not None
        pool_of, zones, held = table.pool_of, table.zone, table.exclusive
        rows = [
            s for s in slots
            if mask.item(pool_of[s])
            and (zone is None or zones.item(s) == zone)
            and not (exclusive and held.item(s))
        ]
        if not rows:
            return 0
        req = cls.members[0].req.tolist()
        used = table.used_rows
        allocs = [table.alloc_of[s] for s in rows]
        fits = [_fits(used[s].tolist(), req, a) for s, a in zip(rows, allocs, strict=True)]
        bound = 0
        for pod in list(cls.members):
            fitting = [j for j, fit in enumerate(fits) if fit]
            if not fitting:
                break
            if len(fitting) == 1:
                j = fitting[0]
            else:
                j = fitting[0]
                best_score = _least_allocated_row(allocs[j], used[rows[j]].tolist(), req)
                for i in fitting[1:]:
                    score = _least_allocated_row(allocs[i], used[rows[i]].tolist(), req)
                    if score > best_score:  # the first of the best
                        j, best_score = i, score
            node = table.nodes[rows[j]]
            assert node is not None
            bind(pod, node)
            bound += 1
            # Only the row of the node it went to changed.
            fits[j] = not exclusive and _fits(used[rows[j]].tolist(), req, allocs[j])
        return bound

    def _may_fit(
        self, cls: _Class, all_ready: bool, changed_pools: set[int] | None, exclusive: bool
    ) -> bool:
        """False if the class admits a few pools and the candidates (every schedulable node
        when ``all_ready``, else the changed ones, in ``changed_pools`` if they are few;
        for an ``exclusive`` class, only those holding no exclusive pod) are in none of
        them: a try that would find nothing, answered without arrays. Asked after
        :meth:`_admit`."""
        pools = cls.pools
        if pools is None:
            return True
        if all_ready:
            by_pool = self.table.open_in_pool if exclusive else self.table.ready_in_pool
            return any(by_pool.get(p) for p in pools)
        return changed_pools is None or not pools.isdisjoint(changed_pools)

    def _admit(self, key: int, cls: _Class) -> None:
        """Set the class's mask, pools and zone: those of its number when an earlier class
        of that number worked them out."""
        admits = self._admits.get(key)
        if admits is None:
            spec = cls.members[0].live
            mask = self.offerings.constraint_mask(spec)
            admitted = np.flatnonzero(mask)
            admits = self._admits[key] = (
                mask,
                frozenset(admitted.tolist()) if admitted.size <= _FEW else None,
                None if spec.zone is None else self.table.zone_id(spec.zone),
            )
        cls.mask, cls.pools, cls.zone = admits

    def _static_mask(self, cls: _Class, cand: IntArray, exclusive: bool) -> BoolArray:
        """Labels, taints, arch, capacity type (pool level), the zone (node level), and for
        an exclusive class no other exclusive pod on the node (a node that holds one holds
        it all run: binding only adds). Asked after :meth:`_may_fit`."""
        assert cls.mask is not None
        mask = cls.mask[self.table.pool[cand]]
        if cls.zone is not None:
            mask &= self.table.zone[cand] == cls.zone
        if exclusive:
            mask &= self.table.exclusive[cand] == 0
        return mask


def _key(pod: SimPod) -> tuple[object, ...]:
    """The pod's class, split by exclusivity (it decides which nodes fit, as the constraints
    do)."""
    return (pod.class_key, pod.exclusive)


def _fits(used: list[float], req: list[float], alloc: list[float]) -> bool:
    """One node's row of :meth:`KubeScheduler._bind_many`'s fit, in Python floats."""
    # A loop, not all() over a generator: building the generator costs as much as the check.
    for u, r, a in zip(used, req, alloc, strict=True):  # noqa: SIM110
        if not u + r <= a + _EPS:
            return False
    return True


def _least_allocated_row(alloc: list[float], used: list[float], req: list[float]) -> float:
    """One node's :func:`_least_allocated` score, in Python floats: the same operations in
    the same order (free over allocatable per axis, 0 without any; the two summed)."""
    score = 0.0
    for c in (CPU, MEM):
        a = alloc[c]
        score += ((a - used[c]) - req[c]) / a if a > 0 else 0.0
    return score


def _least_allocated(alloc: FloatArray, used: FloatArray, req: FloatArray) -> FloatArray:
    """(N,) kube-scheduler's LeastAllocated score (CPU and memory, weight 1 each) of N nodes
    given their (N, R) allocatable and used rows: the mean free fraction after binding,
    doubled; the node with the highest wins."""
    alloc = alloc[:, _CPU_MEM]
    free = alloc - used[:, _CPU_MEM] - req[_CPU_MEM]
    has = alloc > 0
    frac = np.where(has, free / np.where(has, alloc, 1.0), 0.0)  # 0 where a node has none
    # Two fractions' sum orders the nodes as their mean does, ties included (halving is exact).
    scores: FloatArray = frac.sum(axis=1)
    return scores
