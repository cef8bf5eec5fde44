"""What changed between two of a cluster source's tuples, as the source tells its indexes.

A source hands the reconciler a new ``nodes`` or ``bound`` tuple when something changed, and
the indexes over them (:mod:`scaler.core.viewindex`) can find what changed by walking the
old and new tuples in step, by identity: a pass over the whole cluster per tick. A source
that keeps its views by key already knows which it replaced, dropped and added, so it says
so instead (:class:`Change`, given to :meth:`~scaler.core.viewindex.ViewIndexes.tell_nodes`
and ``tell_bound``), and the indexes change by those items only. :class:`ViewsByKey` keeps
that account for a source whose views live in a dict by name, in the order they arrived
(the simulated World's nodes and pods, the kube source's bound pods); :class:`SortedViews`
for one whose views are in name order (the kube source's nodes, whose order breaks ties
in scale-down).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from scaler.core.frozen import slot_init

K = TypeVar("K")
T = TypeVar("T")


@slot_init
@dataclass(frozen=True, slots=True, eq=False)
class Change(Generic[T]):
    """``after`` is ``before`` less the items of ``gone``, with the new item of each
    ``(old, new)`` of ``replaced`` in the place of its old one, and ``added`` new items:
    appended (its last ``added`` items) when ``added_at`` is None, else at the places
    ``added_at`` says (ascending places in ``after``: a source keeping its views sorted
    puts a new one among the others). Items are told by identity: ``gone`` and the old
    items of ``replaced`` are objects of ``before``, each once."""

    before: tuple[T, ...]
    after: tuple[T, ...]
    gone: Sequence[T]
    replaced: Sequence[tuple[T, T]]
    added: int
    added_at: Sequence[int] | None = None

    def added_items(self) -> tuple[T, ...]:
        """The items added, in ``after``'s order."""
        if self.added_at is None:
            return self.after[len(self.after) - self.added:]
        after = self.after
        return tuple(after[i] for i in self.added_at)

    def adds_up(self) -> bool:
        """Do the lengths agree (what an index can check of a change without a pass)?"""
        return (
            self.added >= 0
            and len(self.before) - len(self.gone) + self.added == len(self.after)
            and (self.added_at is None or len(self.added_at) == self.added)
        )


class _Views(Generic[K, T]):
    """What both kinds of kept views answer by key."""

    __slots__ = ("_views",)

    def __init__(self) -> None:
        self._views: dict[K, T] = {}

    def __contains__(self, key: object) -> bool:
        return key in self._views

    def __len__(self) -> int:
        return len(self._views)

    def get(self, key: K) -> T | None:
        return self._views.get(key)


class ViewsByKey(_Views[K, T]):
    """A source's views by key, in the order their keys arrived (a key dropped and set again
    goes to the end, as in a dict), and the tuple of them: kept until a view changes, then
    rebuilt once, and the :class:`Change` from the last tuple handed to ``tell``.

    ``listed``: the views are also kept in a list in key order, so a new tuple is a copy of
    that list: tuple() of a dict's values goes through the iterator protocol per view (and
    over the holes its dropped keys leave), some fifteen times the instructions of a list
    copy. A view's place in the list is found by bisecting ranks (increasing along the list,
    one per key as it is set anew), which do not shift when a view before it is dropped.
    That is for a source whose tuples change nearly every tick (the simulated world's); it
    costs some 65 bytes a view, 1.25 MiB for the 20,000 pods of a large cluster, so the live
    kube source, whose tuples change far less often than its pods number, goes without."""

    __slots__ = (
        "_list", "_listed", "_new", "_next_rank", "_rank", "_ranks", "_stale", "_tell",
        "_tuple", "_was",
    )

    def __init__(
        self, tell: Callable[[Change[T]], None] | None = None, *, listed: bool = True
    ) -> None:
        super().__init__()
        self._listed = listed
        self._tuple: tuple[T, ...] = ()
        self._was: dict[K, T] = {}
        """Key -> its view in ``_tuple``, for the keys whose view was set or dropped since
        (the first change of each: only where it was in the last tuple matters)."""
        self._new: dict[K, None] = {}
        """Keys set since ``_tuple`` was built that it does not hold there (a new key, or one
        dropped and set again), in the order they were set: the new tuple's last items."""
        self._list: list[T] = []
        """The views of ``_views``, in its order (``listed`` only, as the ranks)."""
        self._ranks: list[int] = []
        """The rank of each view of ``_list`` (ascending)."""
        self._rank: dict[K, int] = {}
        """Key -> its view's rank."""
        self._next_rank = 0
        self._stale = False
        self._tell = tell

    def set(self, key: K, view: T) -> None:
        views = self._views
        old = views.get(key)
        if old is None:
            self._new[key] = None
            if self._listed:
                self._rank[key] = rank = self._next_rank
                self._next_rank = rank + 1
                self._list.append(view)
                self._ranks.append(rank)
        else:
            if key not in self._was and key not in self._new:
                self._was[key] = old
            if self._listed:
                self._list[bisect.bisect_left(self._ranks, self._rank[key])] = view
        views[key] = view
        self._stale = True

    def drop(self, key: K) -> None:
        old = self._views.pop(key, None)
        if old is None:
            return
        if self._listed:
            i = bisect.bisect_left(self._ranks, self._rank.pop(key))
            del self._list[i], self._ranks[i]
        if key in self._new:
            del self._new[key]  # set since the last tuple: not in it where it was
        elif key not in self._was:
            self._was[key] = old
        self._stale = True

    def clear(self) -> None:
        """Drop every view (a source listing them all again sets them anew, in its order)."""
        was, new = self._was, self._new
        for key, old in self._views.items():
            if key not in new and key not in was:
                was[key] = old
        self._views, self._new = {}, {}
        self._list, self._ranks, self._rank = [], [], {}
        self._stale = True

    def values(self) -> tuple[T, ...]:
        """The views in key order: the last tuple while no view changed (nor when every
        change was undone), else a new one, whose change is told."""
        if not self._stale:
            return self._tuple
        self._stale = False
        before, views, new = self._tuple, self._views, self._new
        gone: list[T] = []
        replaced: list[tuple[T, T]] = []
        for key, old in self._was.items():
            view = views.get(key)
            if view is None or key in new:  # dropped (and maybe set again, at the end)
                gone.append(old)
            elif view is not old:
                replaced.append((old, view))
        self._was, self._new = {}, {}
        if not (gone or replaced or new):
            return before
        after = tuple(self._list) if self._listed else tuple(views.values())
        self._tuple = after
        if self._tell is not None:
            self._tell(Change(before, after, gone, replaced, len(new)))
        return after


class SortedViews(_Views[str, T]):
    """:class:`ViewsByKey` for views kept in name order: a new name goes among the others,
    so its change says where (``Change.added_at``), and a name dropped and set again keeps
    its place (a replacement). The new tuple is a copy of the last one with the replaced
    views written over, or, when a name came or went, one pass over the names (a lookup
    each, at C speed); the index told of it does work per changed view only."""

    __slots__ = ("_names", "_new", "_stale", "_tell", "_tuple", "_was")

    def __init__(self, tell: Callable[[Change[T]], None] | None = None) -> None:
        super().__init__()
        self._names: list[str] = []
        """The names of ``_views``, sorted."""
        self._tuple: tuple[T, ...] = ()
        self._was: dict[str, T] = {}
        """Name -> its view in ``_tuple``, for the names whose view was set or dropped
        since (the first change of each)."""
        self._new: set[str] = set()
        """Names set since ``_tuple`` was built that it does not hold."""
        self._stale = False
        self._tell = tell

    def set(self, name: str, view: T) -> None:
        old = self._views.get(name)
        if old is None:
            bisect.insort(self._names, name)
            if name not in self._was:  # else it is in the last tuple: replaced in place
                self._new.add(name)
        elif name not in self._was and name not in self._new:
            self._was[name] = old
        self._views[name] = view
        self._stale = True

    def drop(self, name: str) -> None:
        old = self._views.pop(name, None)
        if old is None:
            return
        names = self._names
        del names[bisect.bisect_left(names, name)]
        if name in self._new:
            self._new.discard(name)
        elif name not in self._was:
            self._was[name] = old
        self._stale = True

    def values(self) -> tuple[T, ...]:
        """The views in name order: the last tuple while no view changed (nor when every
        change was undone), else a new one, whose change is told."""
        if not self._stale:
            return self._tuple
        self._stale = False
        before, views, names = self._tuple, self._views, self._names
        gone: list[T] = []
        replaced: list[tuple[T, T]] = []
        places: list[int] = []
        for name, old in self._was.items():
            view = views.get(name)
            if view is None:
                gone.append(old)
            elif view is not old:
                replaced.append((old, view))
                places.append(bisect.bisect_left(names, name))
        new = self._new
        self._was, self._new = {}, set()
        if gone or new:
            after = tuple(map(views.__getitem__, names))
        elif replaced:  # the commonest: the last tuple, a few views written over
            items = list(before)
            for place, (_, view) in zip(places, replaced, strict=True):
                items[place] = view
            after = tuple(items)
        else:
            return before
        self._tuple = after
        if self._tell is not None:
            at = sorted(bisect.bisect_left(names, name) for name in new)
            # All at the end: told as appended, as an index takes them most cheaply.
            tail = not at or at[0] == len(after) - len(at)
            self._tell(Change(before, after, gone, replaced, len(at), None if tail else at))
        return after
