"""Indexes over a cluster view for the questions every tick asks: which nodes carry a given
taint, which are busy, which could be fresh capacity, how many Ready nodes each pool has.

An index is built from one of the view's tuples (``nodes``, ``bound``) and kept while later
views hand back *the same tuple object*: the simulator's World and the kube source keep
their tuples until a node or a pod changes, so a tick in which nothing changed asks these
questions without a pass over the cluster. Identity, not
equality: hashing a thousand frozen nodes would cost what the index saves, and a tuple
cannot change while it is held. A new tuple's index is made from the last one by what
changed: as the source tells it (:mod:`scaler.core.viewchange`; both do), else as
found by walking the two tuples in step by identity, a pass at C speed. Each index is a
pure function of its tuple; keeping it changes no answer, only when it is computed. The
indexes are kept per source (:class:`ViewIndexes`, carried on each ``ClusterView`` it
builds), not per process: two sources, or a test's hand-built views, never share them.
"""

from __future__ import annotations

import bisect
import itertools
import operator
from array import array
from collections import Counter
from collections.abc import Callable, Collection, KeysView, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from scaler.core.frozen import slot_init
from scaler.core.model import PodSpec
from scaler.core.offerings import IGNORE_TAINT_PREFIX, PoolTable
from scaler.core.state import (
    ANNOTATION_IDLE_SINCE,
    TAINT_REMOVING,
    BoundPod,
    ClusterView,
    Node,
    PendingPod,
    daemonsets_of,
)
from scaler.core.viewchange import Change

_Facts = tuple[Node, frozenset[str], bool, bool, bool, bool]


def _facts(n: Node) -> _Facts:
    """What the index keeps of one node: the node, its taint keys, whether it has an
    idle-since annotation, whether it is of a pool but not labelled so, whether it is open
    (see ``_State.open_nodes``), whether it is Ready with its GPUs and carries no taint that
    is a startup taint whatever the startup keys (Ready for the counts of some startup keys
    is then ``up and taint_keys.isdisjoint(keys)``: the one definition, see
    :func:`_ready_for`)."""
    # Worked out for every node value indexed: maps and constants, not generators.
    keys = frozenset(map(_taint_key, n.taints)) if n.taints else _NO_KEYS
    idle = bool(n.annotations) and n.annotation(ANNOTATION_IDLE_SINCE) is not None
    if n.pool is None:
        return n, keys, idle, False, False, False
    ready = n.ready and n.gpu_ready  # Node.schedulable_ready less its cordon
    is_open = ready and not n.unschedulable and TAINT_REMOVING not in keys
    up = ready and not (keys and any(map(_ignored, keys)))
    return n, keys, idle, not n.pool_labelled, is_open, up


_taint_key = operator.attrgetter("key")
_NO_KEYS: frozenset[str] = frozenset()
_ignored = operator.methodcaller("startswith", IGNORE_TAINT_PREFIX)
"""Is a taint key cluster-autoscaler's ignore prefix (a startup taint under any keys)?"""


def _ready_for(facts: _Facts, keys: AbstractSet[str] | Sequence[str]) -> bool:
    """Is the node of ``facts`` Ready with its GPUs, of a pool, with no startup taint left
    (``keys`` or cluster-autoscaler's ignore-taint prefix)?"""
    return facts[5] and facts[1].isdisjoint(keys)


_name = operator.attrgetter("name")
_owner = operator.attrgetter("owner")
_old = operator.itemgetter(0)
_new = operator.itemgetter(1)
"""The old and the new item of a ``Change.replaced`` pair."""

_IN_PLACE = 4
"""Nodes replaced in place that :meth:`NodeIndex.next` reads as such from one identity pass;
more (a shifted tail reads as every node changed) go through :func:`_aligned_changes`."""

_RANK_GAP = 1 << 16
"""Ranks are spaced so that a node a source puts among the others (``Change.added_at``) is
ranked between its neighbours without renumbering the rest; sixteen put in one gap use it
up, and the index is built afresh."""

T = TypeVar("T")


def _aligned_changes(
    before: tuple[T, ...], after: tuple[T, ...], most: int,
    replaced: list[tuple[T, T]] | None = None,
) -> tuple[list[T], list[T]] | None:
    """(gone, added) when ``after`` is ``before`` with a few items removed, replaced in
    place or appended (a source rebuilds its tuple in its own stable order): both are
    walked in step, the identical runs between changes at C speed. None when more than
    ``most`` changed (or the order did): the callers diff by identity sets instead. Every
    item of ``after`` not matched to the same object of ``before`` is in ``added``, every
    other item of ``before`` in ``gone``, whichever way a change is read. ``replaced``, when
    given, gets (gone, added) for each item of ``after`` read as taking the place of one of
    ``before``; the other added items are appended."""
    gone: list[T] = []
    added: list[T] = []
    i = j = 0
    n, m = len(before), len(after)
    while i < n and j < m:
        # Slices, not islices: a slice is a copy of pointers (and none from the start),
        # where an islice costs a call per item; the walk costs half as much.
        run = map(operator.is_not, before[i:], after[j:])
        skip = next(itertools.compress(itertools.count(), run), None)
        if skip is None:  # identical up to the shorter one's end
            i, j = i + min(n - i, m - j), j + min(n - i, m - j)
            break
        i, j = i + skip, j + skip
        gone.append(before[i])
        if i + 1 < n and before[i + 1] is after[j]:
            i += 1  # removed
        else:
            added.append(after[j])  # replaced in place
            if replaced is not None:
                replaced.append((before[i], after[j]))
            i, j = i + 1, j + 1
        if len(gone) + len(added) > most:
            return None
    gone += before[i:]
    added += after[j:]
    if len(gone) + len(added) > most:
        return None
    return gone, added


@dataclass(eq=False, slots=True)
class _State:
    """An index's tables, keyed by node identity so a node is added or dropped in O(1)
    (sets and dicts kept unordered; answers are put in view order when asked)."""

    facts: dict[int, _Facts]
    """Node id -> what the index keeps of it; its keys are the ids of the tuple's nodes."""
    by_taint_key: dict[str, dict[int, Node]]
    """Taint key -> the nodes carrying a taint with that key."""
    idle_annotated: set[str]
    """Nodes with an idle-since annotation (a value, parsable or not)."""
    unlabelled: dict[int, Node]
    """Nodes of a known pool whose pool label does not name it."""
    open_nodes: list[Node]
    """Nodes of a pool, Ready with GPUs, not cordoned and not being removed, by creation
    time: the only ones that can be fresh capacity."""
    created_s: list[float]
    """``open_nodes``' creation times, for bisecting."""
    ready: dict[tuple[str, ...], Counter[str]]
    """Startup keys -> pool -> nodes Ready with their GPUs and none of those taints left
    (only for the keys asked about)."""
    by_name: dict[str, Node]
    """Node name -> the node (names are unique within a tuple)."""
    rank: dict[int, int]
    """Node id -> a number increasing along the tuple: view order without a pass over every
    node when one is removed (positions would shift; ranks do not)."""
    next_rank: int
    """The rank of the next node appended."""
    free_against: BoundIndex | None = None
    """The bound index ``free`` is the answer against (None: no answer kept)."""
    free: list[Node] = field(default_factory=list)
    """The nodes with no workload pod against ``free_against``, by rank (view order), less
    the nodes dropped since, without the nodes in ``unchecked``."""
    free_ranks: list[int] = field(default_factory=list)
    """``free``'s ranks, for bisecting."""
    unchecked: dict[int, Node] = field(default_factory=dict)
    """Nodes added since ``free`` was brought up to date: not yet asked whether busy."""
    on_the_way: dict[tuple[str, ...], tuple[PoolTable, dict[str, int]]] = field(
        default_factory=dict
    )
    """Startup keys -> the table and :meth:`NodeIndex.on_the_way`'s answer for it: kept
    across tuples, moved with the Ready counts under those keys (:meth:`_recount`)."""

    @classmethod
    def of(cls, nodes: tuple[Node, ...]) -> _State:
        state = cls({}, {}, set(), {}, [], [], {}, {}, {}, 0)
        for n in nodes:
            state.add(n)
        return state

    def add(self, n: Node, rank: int | None = None, facts: _Facts | None = None) -> None:
        """Index ``n``, at ``rank`` (None: after every node); ``facts``: ``_facts(n)``, when
        the caller has them."""
        if facts is None:
            facts = _facts(n)
        _, keys, is_idle, is_unlabelled, is_open, up = facts
        self.facts[id(n)] = facts
        self.by_name[n.name] = n
        if rank is None:
            rank = self.next_rank
            self.next_rank += _RANK_GAP
        self.rank[id(n)] = rank
        if self.free_against is not None:
            self.unchecked[id(n)] = n
        for key in keys:
            self.by_taint_key.setdefault(key, {})[id(n)] = n
        if is_idle:
            self.idle_annotated.add(n.name)
        if is_unlabelled:
            self.unlabelled[id(n)] = n
        if is_open:
            i = bisect.bisect_right(self.created_s, n.created_s)
            self.open_nodes.insert(i, n)
            self.created_s.insert(i, n.created_s)
        if up and n.pool is not None:
            self._recount(n.pool, facts, 1)

    def drop(self, node_id: int) -> None:
        facts = self.facts.pop(node_id)
        n, keys, is_idle, is_unlabelled, is_open, up = facts
        if self.by_name.get(n.name) is n:
            del self.by_name[n.name]
        rank = self.rank.pop(node_id)
        # A node not yet asked about is in no answer; one that was may be in ``free``.
        if self.free_against is not None and self.unchecked.pop(node_id, None) is None:
            self._unfree(n, rank)
        for key in keys:
            holders = self.by_taint_key[key]
            del holders[node_id]
            if not holders:
                del self.by_taint_key[key]
        if is_idle:
            # Names are unique within a tuple, but a walk that reads a shifted tuple as
            # nodes replaced in place can add a newer value of this node (another place)
            # before dropping this one: the name stays if that value is marked too.
            other = self.by_name.get(n.name)
            if other is None or not self.facts[id(other)][2]:
                self.idle_annotated.discard(n.name)
        if is_unlabelled:
            del self.unlabelled[node_id]
        if is_open:
            i = bisect.bisect_left(self.created_s, n.created_s)
            while self.open_nodes[i] is not n:
                i += 1
            del self.open_nodes[i], self.created_s[i]
        if up and n.pool is not None:
            self._recount(n.pool, facts, -1)

    def replace(self, old: Node, new: Node) -> bool:
        """Index ``new`` in the place of ``old`` (a newer value of the same node, at its
        rank). Most new values keep the old one's name, pool, taints and label, and differ
        in the idle-since annotation or Ready, or not at all: then every table keeps its
        entries, for the new object, and only the idle set, the open nodes and the Ready
        counts follow what changed. False (nothing changed) when ``new`` is indexed
        already."""
        old_id, new_id = id(old), id(new)
        if new_id in self.facts:
            return False
        facts = _facts(new)
        was = self.facts[old_id]
        if (
            was[1] != facts[1] or was[3] != facts[3] or old.name != new.name
            or old.pool != new.pool
            or ((was[4] or facts[4]) and old.created_s != new.created_s)
        ):
            rank = self.rank[old_id]
            self.drop(old_id)
            self.add(new, rank, facts)
            return True
        del self.facts[old_id]
        self.facts[new_id] = facts
        self.by_name[new.name] = new
        rank = self.rank.pop(old_id)
        self.rank[new_id] = rank
        if self.free_against is not None:
            # Busy or not by name: against the same bound pods the new value is free
            # exactly where the old one was.
            if self.unchecked.pop(old_id, None) is not None:
                self.unchecked[new_id] = new
            else:
                i = bisect.bisect_left(self.free_ranks, rank)
                if i < len(self.free) and self.free[i] is old:
                    self.free[i] = new
        for key in facts[1]:
            holders = self.by_taint_key[key]
            del holders[old_id]
            holders[new_id] = new
        if was[2] != facts[2]:
            if facts[2]:
                self.idle_annotated.add(new.name)
            else:
                self.idle_annotated.discard(new.name)
        if facts[3]:
            del self.unlabelled[old_id]
            self.unlabelled[new_id] = new
        if was[4]:
            i = bisect.bisect_left(self.created_s, old.created_s)
            while self.open_nodes[i] is not old:
                i += 1
            if facts[4]:
                self.open_nodes[i] = new
            else:  # no longer open (not Ready, cordoned)
                del self.open_nodes[i], self.created_s[i]
        elif facts[4]:  # open now
            i = bisect.bisect_right(self.created_s, new.created_s)
            self.open_nodes.insert(i, new)
            self.created_s.insert(i, new.created_s)
        if was[5] != facts[5]:  # Ready of its pool now and not before, or the other way
            assert new.pool is not None
            # The taint keys stand (else dropped and added above): counted under the same
            # startup keys as before, with the other sign.
            self._recount(new.pool, facts if facts[5] else was, 1 if facts[5] else -1)
        return True

    def insert(self, nodes: tuple[Node, ...], at: Sequence[int]) -> bool:
        """Index the nodes at the places ``at`` (ascending) of ``nodes``, whose other nodes
        are indexed: each run of them ranked between its neighbours (appended at the end).
        False when a neighbour is not indexed, a node is indexed already, or the ranks
        between two neighbours are used up."""
        rank, facts = self.rank, self.facts
        k = 0
        while k < len(at):
            first = last = at[k]
            k += 1
            while k < len(at) and at[k] == last + 1:
                last = at[k]
                k += 1
            run = nodes[first:last + 1]
            if any(id(n) in facts for n in run):
                return False
            if last + 1 == len(nodes):
                for n in run:
                    self.add(n)
                continue
            hi = rank.get(id(nodes[last + 1]))
            lo = rank.get(id(nodes[first - 1])) if first else None
            if hi is None or (first and lo is None):
                return False
            if lo is None:
                lo = hi - (len(run) + 1) * _RANK_GAP
            step = (hi - lo) // (len(run) + 1)
            if not step:
                return False
            for m, n in enumerate(run, 1):
                self.add(n, lo + m * step)
        return True

    def _recount(self, pool: str, facts: _Facts, change: int) -> None:
        """Count a node of ``facts`` (Ready of ``pool``) in or out of the Ready counts of
        every startup keys it is Ready for, and the answers of :meth:`NodeIndex.on_the_way`
        for those keys with them (those for other keys stand: a node Ready under some
        keys only, or an idle mark on a Ready node, moves none of their counts)."""
        answers = self.on_the_way
        for startup, counts in self.ready.items():
            if _ready_for(facts, startup):
                counts[pool] += change
                kept = answers.get(startup)
                if kept is None:
                    continue
                # The pool's shortfall moves against its count, by the answer alone while
                # the pool is in it (its size is the shortfall plus the count); the others'
                # stand. A pool not in it is short of nothing: one more Ready node keeps it
                # so, one fewer may make it short, at a place only a fresh answer knows (the
                # answer is in the table's order, which breaks cost ties).
                short = kept[1].get(pool)
                if short is None:
                    if change < 0:
                        del answers[startup]
                    continue
                out = dict(kept[1])  # a caller may still hold the last answer
                if short > change:
                    out[pool] = short - change
                else:
                    del out[pool]
                answers[startup] = (kept[0], out)

    def _unfree(self, n: Node, rank: int) -> None:
        i = bisect.bisect_left(self.free_ranks, rank)
        if i < len(self.free) and self.free[i] is n:
            del self.free[i], self.free_ranks[i]

    def _free(self, n: Node) -> None:
        rank = self.rank[id(n)]
        i = bisect.bisect_left(self.free_ranks, rank)
        if i == len(self.free) or self.free[i] is not n:
            self.free.insert(i, n)
            self.free_ranks.insert(i, rank)

    def not_busy(self, nodes: tuple[Node, ...], bound: BoundIndex) -> tuple[Node, ...]:
        """The nodes of ``nodes`` (this state's tuple) with no workload pod in ``bound``, in
        view order: from the last answer, by the nodes added since and the nodes whose
        busyness changed since, when ``bound`` is that answer's index or the next one;
        from every node otherwise."""
        last = self.free_against
        if last is not None and (last is bound or bound.came_from is last):
            busy = bound.busy
            if last is not bound:
                for name in bound.flipped:
                    n = self.by_name.get(name)
                    if n is None or id(n) in self.unchecked:
                        continue
                    if name in busy:
                        self._unfree(n, self.rank[id(n)])
                    else:
                        self._free(n)
            for n in self.unchecked.values():
                if n.name not in busy:
                    self._free(n)
            self.unchecked.clear()
        else:
            free = map(operator.not_, map(bound.busy.__contains__, map(_name, nodes)))
            self.free = list(itertools.compress(nodes, free))
            self.free_ranks = [self.rank[id(n)] for n in self.free]
            self.unchecked.clear()
        self.free_against = bound
        return tuple(self.free)


class NodeIndex:
    """What every tick asks of ``nodes``; built once per tuple, from the last index by the
    nodes that changed (new objects: a node value is replaced when it changes) and those
    gone. The tables move to the next index and are updated in place there (copying them
    is the per-tick work this avoids); an index whose tables moved on builds them again
    from its own tuple if it is asked again. A tuple that only reorders nodes changes no
    answer."""

    __slots__ = ("_free", "_position", "_state", "nodes")

    def __init__(self, nodes: tuple[Node, ...], state: _State | None = None) -> None:
        self.nodes = nodes
        self._state = state
        self._position: dict[str, int] | None = None
        self._free: tuple[BoundIndex, tuple[Node, ...]] | None = None
        """:func:`not_busy` against the last bound index asked about."""

    @classmethod
    def build(cls, nodes: tuple[Node, ...]) -> NodeIndex:
        return cls(nodes, _State.of(nodes))

    @property
    def state(self) -> _State:
        """The tables; the questions asked every tick read ``self._state or self.state``,
        which makes no call while the tables are here (a state is always true)."""
        if self._state is None:  # moved on to a later index: this tuple's tables again
            self._state = _State.of(self.nodes)
        return self._state

    def next(self, nodes: tuple[Node, ...]) -> NodeIndex:
        """The index of ``nodes``, a later tuple of the same cluster: this one's tables,
        less the nodes gone, plus the new ones. The identity passes run at C speed; Python
        runs per changed node only."""
        state = self.state
        if len(state.facts) != len(self.nodes):
            # This tuple holds a node twice; the tables hold it once: start over.
            return NodeIndex.build(nodes)
        before = self.nodes
        if len(nodes) == len(before):
            # The commonest new tuple: a node or two replaced in place (a node's value is
            # replaced when it changes: an annotation, a taint, Ready). One identity pass
            # finds them; each new value takes the rank of the one it replaces.
            at = list(itertools.compress(itertools.count(), map(operator.is_not, before, nodes)))
            if len(at) <= _IN_PLACE:
                self._state = None
                for k in at:
                    if not state.replace(before[k], nodes[k]):
                        # A node twice in one tuple, or nodes swapped places: start over.
                        return NodeIndex.build(nodes)
                return NodeIndex(nodes, state)
        most = max(8, len(nodes) // 4)
        replaced: list[tuple[Node, Node]] = []
        aligned = _aligned_changes(before, nodes, most, replaced)
        if aligned is not None:
            # The usual new tuple: the same nodes in the same places, a few replaced, some
            # appended (a source rebuilds its tuple in its own stable order). A node
            # replaced in place takes the rank of the one it replaces (read before that one
            # is dropped); a node both gone and added (moved to the end) gets a new one.
            gone_nodes, added = aligned
            in_place = {id(new): state.rank[id(old)] for old, new in replaced} if replaced else {}
            self._state = None
            for n in gone_nodes:
                state.drop(id(n))
            for n in added:
                if id(n) in state.facts:  # the same node twice in one tuple
                    return NodeIndex.build(nodes)
                state.add(n, in_place.get(id(n)))
            return NodeIndex(nodes, state)
        ids = set(map(id, nodes))
        facts = state.facts
        gone = facts.keys() - ids
        new = ids - facts.keys()
        if len(gone) + len(new) > most or len(ids) != len(nodes):
            return NodeIndex.build(nodes)
        self._state = None
        for node_id in gone:
            state.drop(node_id)
        if new:
            for n in itertools.compress(nodes, map(new.__contains__, map(id, nodes))):
                state.add(n)
        # Reordered: rank the nodes afresh (a rare tuple; the pass is at C speed).
        state.next_rank = len(nodes) * _RANK_GAP
        state.rank = dict(
            zip(map(id, nodes), range(0, state.next_rank, _RANK_GAP), strict=True)
        )
        state.free_against = None
        return NodeIndex(nodes, state)

    def told(self, change: Change[Node]) -> NodeIndex:
        """The index of ``change.after``, from this one (of ``change.before``) by the nodes
        its source says changed, without a pass over the tuples: a node replaced in place
        keeps its rank, an appended one is ranked after every node, one put among the
        others between its neighbours. By :meth:`next` when
        what it says does not add up against this index (checked by identity and length;
        where each item sits in ``after`` is taken on trust)."""
        nodes = change.after
        state = self.state
        if len(state.facts) != len(self.nodes) or not change.adds_up():
            return self.next(nodes)
        gone, replaced = change.gone, change.replaced
        olds = set(map(id, gone))
        olds.update(map(id, map(_old, replaced)))  # at C speed: no generator per change
        if len(olds) != len(gone) + len(replaced) or not olds <= state.facts.keys():
            return self.next(nodes)  # told of a node it does not hold, or of one twice
        self._state = None
        # Dropped first: a name is unique within a tuple, so a node gone frees its name for
        # a new value of another (the idle set is by name).
        for n in gone:
            state.drop(id(n))
        for old, new in replaced:
            if not state.replace(old, new):  # the same node twice in one tuple
                return NodeIndex.build(nodes)
        if change.added_at is not None:  # put among the others (a sorted source)
            if not state.insert(nodes, change.added_at):
                return NodeIndex.build(nodes)
            return NodeIndex(nodes, state)
        for n in change.added_items() if change.added else ():
            if id(n) in state.facts:  # the same node twice in one tuple
                return NodeIndex.build(nodes)
            state.add(n)
        return NodeIndex(nodes, state)

    @property
    def idle_annotated(self) -> set[str]:
        """Nodes with an idle-since annotation (a value, parsable or not). Read-only."""
        return (self._state or self.state).idle_annotated

    @property
    def position(self) -> dict[str, int]:
        """Node name -> its place in ``nodes`` (the order actions are emitted in)."""
        if self._position is None:
            self._position = dict(zip(map(_name, self.nodes), range(len(self.nodes)),
                                      strict=True))
        return self._position

    @property
    def by_name(self) -> dict[str, Node]:
        """Node name -> the node. Read-only."""
        return (self._state or self.state).by_name

    def _in_view_order(self, xs: Collection[Node]) -> tuple[Node, ...]:
        if len(xs) < 2:
            return tuple(xs)
        rank = self.state.rank
        return tuple(sorted(xs, key=lambda m: rank[id(m)]))

    def tainted(self, key: str) -> tuple[Node, ...]:
        """The nodes carrying a taint with ``key``, in view order."""
        holders = self.state.by_taint_key.get(key)
        return self._in_view_order(holders.values()) if holders else ()

    @property
    def taint_keys(self) -> frozenset[str]:
        """The keys of every taint some node carries."""
        return frozenset(self.state.by_taint_key)

    @property
    def held_taint_keys(self) -> KeysView[str]:
        """:attr:`taint_keys` as a live view of the index's own table, for a membership test
        per tick without building a set. Read-only."""
        return (self._state or self.state).by_taint_key.keys()

    @property
    def any_unlabelled(self) -> bool:
        return bool((self._state or self.state).unlabelled)

    @property
    def unlabelled(self) -> tuple[Node, ...]:
        """Nodes of a known pool whose pool label does not name it, in view order."""
        return self._in_view_order(self.state.unlabelled.values())

    def open_since(self, since_s: float) -> list[Node]:
        """Open nodes (of a pool, Ready with GPUs, not cordoned and not being removed)
        created at or after ``since_s``, in view order."""
        state = self._state or self.state
        lo = bisect.bisect_left(state.created_s, since_s)
        if lo == len(state.created_s):
            return []
        return list(self._in_view_order(state.open_nodes[lo:]))

    def ready_by_pool(self, startup_keys: Sequence[str]) -> Counter[str]:
        """Pool -> nodes Ready with their GPUs advertised and no startup taint left."""
        keys = tuple(startup_keys)
        state = self.state
        ready = state.ready.get(keys)
        if ready is None:
            facts = state.facts
            ready = Counter(
                n.pool for n in self.nodes
                if n.pool is not None and _ready_for(facts[id(n)], keys)
            )
            state.ready[keys] = ready
        return ready

    def on_the_way(self, table: PoolTable, startup_keys: Sequence[str]) -> dict[str, int]:
        """Pool -> desired size minus Ready nodes, for the pools of ``table`` with a desired
        size (:func:`scaler.core.decide.nodes_on_the_way`). Kept per table (by identity) and
        keys, across tuples with the same Ready counts; the caller must not change the
        answer."""
        keys = tuple(startup_keys)
        answers = (self._state or self.state).on_the_way
        kept = answers.get(keys)
        if kept is not None and kept[0] is table:
            return kept[1]
        # dict.get, not the Counter's [] (a Python __missing__ call per pool with no Ready
        # node), and each pool looked up once.
        ready = self.ready_by_pool(keys).get
        out = {}
        for p in table.sized_by_name.values():
            short = p.current_size - ready(p.name, 0)
            if short > 0:
                out[p.name] = short
        answers[keys] = (table, out)
        return out


@dataclass(eq=False)
class BoundIndex:
    """What every tick asks of ``bound``; built once per tuple, from the last index by the
    pods that changed."""

    bound: tuple[BoundPod, ...]
    ids: array[int]
    """The pods' ids, sorted (a pod twice in the tuple is there twice): a told change is
    checked against them by bisection. An array, not a set: 8 bytes a pod, where a set of
    20,000 ids took 2.6 MiB of the live process."""
    _counts: dict[str, int] | None
    """Node -> workload pods on it; None once moved to the next index."""
    others: list[BoundPod]
    """The DaemonSet and mirror pods (any order)."""
    _workload: dict[str, tuple[PodSpec, ...]] | None = None
    _daemonsets: tuple[PodSpec, ...] | None = None
    """:meth:`daemonsets`, once asked (or carried from the last index)."""
    came_from: BoundIndex | None = None
    """The index this one was updated from (only the last step is kept: no chain)."""
    flipped: set[str] = field(default_factory=set)
    """Nodes that may have turned busy or free since ``came_from`` (a superset)."""

    @classmethod
    def build(cls, bound: tuple[BoundPod, ...]) -> BoundIndex:
        counts: dict[str, int] = {}
        others: list[BoundPod] = []
        for b in bound:
            if b.is_workload:
                counts[b.node] = counts.get(b.node, 0) + 1
            else:
                others.append(b)
        return cls(bound, array("Q", sorted(map(id, bound))), counts, others)

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
        if self._counts is None:
            return BoundIndex.build(bound)  # moved on already
        most = max(8, len(bound) // 4)
        aligned = _aligned_changes(self.bound, bound, most)
        if aligned is not None:
            removed, added = aligned
        else:
            # By identity, for this pass only; a pod twice in a tuple is built afresh (a
            # set cannot say which of its places went).
            was = set(self.ids)
            ids = set(map(id, bound))
            gone = was - ids
            new = ids - was
            if (len(gone) + len(new) > most or len(ids) != len(bound)
                    or len(was) != len(self.bound)):
                return BoundIndex.build(bound)
            removed = (
                list(itertools.compress(self.bound, map(gone.__contains__, map(id, self.bound))))
                if gone else []
            )
            added = list(itertools.compress(bound, map(new.__contains__, map(id, bound))))
        counts, self._counts = self._counts, None  # this index counts again if asked
        return self._moved(bound, counts, removed, added, in_step=aligned is not None)

    def told(self, change: Change[BoundPod]) -> BoundIndex:
        """The index of ``change.after``, from this one (of ``change.before``) by the pods
        its source says changed, without a pass over the tuples; by :meth:`next` when
        what it says does not add up against this index."""
        bound = change.after
        if self._counts is None or not change.adds_up():
            return self.next(bound)
        removed = [*change.gone, *map(_old, change.replaced)]
        olds = sorted(map(id, removed))
        ids = self.ids
        at = 0
        for i, old in enumerate(olds):
            # Each once, and each held (bisecting on from the last: they are sorted).
            if i and old == olds[i - 1]:
                return self.next(bound)  # told of a pod twice
            at = bisect.bisect_left(ids, old, at)
            if at == len(ids) or ids[at] != old:
                return self.next(bound)  # told of a pod it does not hold
        counts, self._counts = self._counts, None  # moves on with them
        added = [*map(_new, change.replaced), *change.added_items()]
        return self._moved(bound, counts, removed, added, in_step=True)

    def _moved(
        self, bound: tuple[BoundPod, ...], counts: dict[str, int],
        removed: list[BoundPod], added: list[BoundPod], *, in_step: bool,
    ) -> BoundIndex:
        """The index of ``bound``: this one's ``counts`` (taken from it) and ids less
        ``removed``, plus ``added``; ``in_step``: the pods kept are in the same order as
        here. ``removed`` are pods of this index's tuple."""
        others = self.others
        ids = self.ids  # moves on with the counts (this index no longer uses them)
        self.came_from, self.flipped = None, set()  # one step kept, not a chain of them
        flipped: set[str] = set()
        for b in removed:
            del ids[bisect.bisect_left(ids, id(b))]
            if b.is_workload:
                left = counts[b.node] - 1
                if left:
                    counts[b.node] = left
                else:
                    del counts[b.node]
                    flipped.add(b.node)
            else:
                # One place of it (a pod twice in a tuple is there twice); a new list: the
                # last index keeps its own.
                at = next(i for i, o in enumerate(others) if o is b)
                others = [*others[:at], *others[at + 1:]]
        for b in added:
            ids.insert(bisect.bisect_right(ids, id(b)), id(b))
            if b.is_workload:
                had = counts.get(b.node, 0)
                counts[b.node] = had + 1
                if not had:
                    flipped.add(b.node)
            else:
                others = [*others, b]
        # The pods kept are in the same order (the aligned walk matches them in step, a
        # told change keeps them in place); if no pod with an owner came or went, the
        # DaemonSets read from them stand.
        owners = list(map(_owner, itertools.chain(removed, added)))  # at C speed
        kept = self._daemonsets if in_step and owners.count(None) == len(owners) else None
        return BoundIndex(bound, ids, counts, others, _daemonsets=kept, came_from=self,
                          flipped=flipped)

    def daemonsets(self) -> tuple[PodSpec, ...]:
        """:meth:`~scaler.core.state.ClusterView.daemonsets` of ``bound``: worked out once
        per tuple, and carried to the next index while no pod with an owner comes or goes
        (a pass over every pod is not per-tick work)."""
        if self._daemonsets is None:
            self._daemonsets = daemonsets_of(self.bound)
        return self._daemonsets

    def workload_on(self, node: str) -> tuple[PodSpec, ...]:
        """The workload pods bound to ``node``, in view order."""
        if self._workload is None:
            by_node: dict[str, list[PodSpec]] = {}
            for b in self.bound:
                if b.is_workload:
                    by_node.setdefault(b.node, []).append(b.pod)
            self._workload = {k: tuple(v) for k, v in by_node.items()}
        return self._workload.get(node, ())


V = TypeVar("V")


class _Last(Generic[T, V]):
    """The index of the last tuple asked about, kept while the next tuple asked about is the
    same object (it holds the tuple, so the object cannot be freed and its id reused by
    another), and the change its source told last (:meth:`ViewIndexes.tell_nodes`)."""

    def __init__(self) -> None:
        self.key: tuple[T, ...] | None = None
        self.value: V | None = None
        self.told: Change[T] | None = None

    def get(self, key: tuple[T, ...]) -> V | None:
        return self.value if self.key is key else None

    def put(self, key: tuple[T, ...], value: V) -> V:
        self.key, self.value = key, value
        return value

    def follow(
        self,
        key: tuple[T, ...],
        build: Callable[[tuple[T, ...]], V],
        walk: Callable[[V, tuple[T, ...]], V],
        apply: Callable[[V, Change[T]], V],
    ) -> V:
        """The index of ``key``: the kept one, else the last one changed as its source told
        (``apply``) when the change leads from the last tuple to ``key``, else the last one
        walked to ``key`` (``walk``), else one built afresh."""
        if self.key is key and self.value is not None:
            return self.value
        last = self.value
        if last is None:
            return self.put(key, build(key))
        told = self.told
        if told is not None and told.after is key:
            self.told = None
            if told.before is self.key:
                # As put() does, without the call: once per new tuple of a source.
                value = self.value = apply(last, told)
                self.key = key
                return value
        return self.put(key, walk(last, key))


@slot_init
@dataclass(frozen=True, slots=True, eq=False)
class KeptCovering:
    """What a covering of the pending pods was asked (the pending tuple, the capacity on
    the way in its order, the launches' pods, the offerings and settings) and answered
    (the pods left uncovered; the keys of the others, sorted, and the pools they wait
    for). It holds what it was asked about, so an identity test cannot be fooled by a
    reused id."""

    pending: tuple[PendingPod, ...]
    capacity: tuple[tuple[str, float], ...]
    in_flight: Mapping[str, str]
    offerings: object
    settings: object
    rest: list[PendingPod]
    waiting: tuple[str, ...]
    waiting_pools: frozenset[str]

    def answers(
        self,
        pending: tuple[PendingPod, ...],
        capacity: tuple[tuple[str, float], ...],
        in_flight: Mapping[str, str],
        offerings: object,
        settings: object,
    ) -> bool:
        return (
            self.pending is pending and self.offerings is offerings
            and self.settings is settings and self.capacity == capacity
            and self.in_flight == in_flight
        )


class ViewIndexes:
    """The indexes of one cluster source's views, each kept while the source hands back the
    same tuple and updated from the last one when it hands back a new tuple: by the change
    the source told (:meth:`tell_nodes`, :meth:`tell_bound`) when it starts from the tuple
    kept, else by walking the two tuples. Each source owns one and gives it to every view
    it builds (``ClusterView.indexes``); a view built elsewhere (a test, a one-off) gets a
    fresh one, so no two sources share state."""

    def __init__(self) -> None:
        self._nodes: _Last[Node, NodeIndex] = _Last()
        self._bound: _Last[BoundPod, BoundIndex] = _Last()
        self.cover: KeptCovering | None = None
        """decide's last covering of the pending pods by nodes on their way
        (:func:`scaler.core.decide._uncovered` keeps it)."""

    def tell_nodes(self, change: Change[Node]) -> None:
        """The source's next nodes tuple is ``change.after``: its index is made from the
        one of ``change.before`` by ``change`` when asked (only the last change told is
        kept; one that does not start from the tuple indexed then is not used)."""
        self._nodes.told = change

    def tell_bound(self, change: Change[BoundPod]) -> None:
        """:meth:`tell_nodes` for the bound pods."""
        self._bound.told = change

    def nodes(self, nodes: tuple[Node, ...]) -> NodeIndex:
        return self._nodes.follow(nodes, NodeIndex.build, NodeIndex.next, NodeIndex.told)

    def bound(self, bound: tuple[BoundPod, ...]) -> BoundIndex:
        return self._bound.follow(bound, BoundIndex.build, BoundIndex.next, BoundIndex.told)


def node_index(view: ClusterView) -> NodeIndex:
    """The index of ``view.nodes``, from the view's source's indexes. Asked several times a
    tick of the same tuple: the kept index is read here, without two calls to reach it, and
    a new tuple's is followed to from here (``ViewIndexes.nodes``, without its call)."""
    kept = view.indexes._nodes
    if kept.key is view.nodes and kept.value is not None:
        return kept.value
    return kept.follow(view.nodes, NodeIndex.build, NodeIndex.next, NodeIndex.told)


def bound_index(view: ClusterView) -> BoundIndex:
    """The index of ``view.bound``, from the view's source's indexes (read as
    :func:`node_index` reads its own)."""
    kept = view.indexes._bound
    if kept.key is view.bound and kept.value is not None:
        return kept.value
    return kept.follow(view.bound, BoundIndex.build, BoundIndex.next, BoundIndex.told)


def not_busy(nodes: NodeIndex, bound: BoundIndex) -> tuple[Node, ...]:
    """The nodes with no workload pod, in view order; kept on ``nodes`` per bound index, and
    brought up to date from the last answer by what changed (``_State.not_busy``)."""
    kept = nodes._free
    if kept is not None and kept[0] is bound:
        return kept[1]
    out = (nodes._state or nodes.state).not_busy(nodes.nodes, bound)
    nodes._free = (bound, out)
    return out


def idle_candidates(
    nodes: NodeIndex, bound: BoundIndex, remembered: Mapping[str, float]
) -> Sequence[Node]:
    """In view order: the nodes with no workload pod, and the busy ones that may still be
    marked idle (an idle-since annotation, or a time in ``remembered``): the only nodes
    scale-down has anything to say about. Read-only for callers (most ticks it is the kept
    answer of :func:`not_busy` itself, not a copy)."""
    free = not_busy(nodes, bound)
    # Intersections at C speed, over the smaller side: most marked nodes are idle, not busy.
    busy = bound.busy
    names = busy & nodes.idle_annotated
    if remembered:
        names |= busy & remembered.keys()
    if not names:  # most ticks: no busy node is marked
        return free
    by_name = nodes.by_name
    busy_marked = [n for name in names if (n := by_name.get(name)) is not None]
    if not busy_marked:
        return free
    out = list(free) + busy_marked
    rank = nodes.state.rank
    out.sort(key=lambda n: rank[id(n)])
    return out
