"""What changed between two of a cluster source's tuples, as the source tells its indexes.

A source hands the reconciler a new ``nodes`` or ``bound`` tuple when something changed, and
the indexes over them (:mod:`scaler.core.viewindex`) can find what changed by walking the
old and new tuples in step, by identity: a pass over the whole cluster per tick. A source
that keeps its views by key already knows which it replaced, dropped and added, so it says
so instead (:class:`Change`, given to :meth:`~scaler.core.viewindex.ViewIndexes.tell_nodes`
and ``tell_bound``), and the indexes change by those items only. :class:`ViewsByKey` keeps
that account for a source whose views live in a dict by name.
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
    ``(old, new)`` of ``replaced`` in the place of its old one, and ``added`` items
    appended (its last ``added`` items). Items are told by identity: ``gone`` and the old
    items of ``replaced`` are objects of ``before``, each once."""

    before: tuple[T, ...]
    after: tuple[T, ...]
    gone: Sequence[T]
    replaced: Sequence[tuple[T, T]]
    added: int

    def appended(self) -> tuple[T, ...]:
        """The items appended: ``after``'s last ``added``."""
        return self.after[len(self.after) - self.added:]

    def adds_up(self) -> bool:
        """Do the lengths agree (what an index can check of a change without a pass)?"""
        return self.added >= 0 and len(self.before) - len(self.gone) + self.added == len(
            self.after
        )


class ViewsByKey(Generic[K, T]):
    """A source's views by key, in the order their keys arrived (a key dropped and set again
    goes to the end, as in a dict), and the tuple of them: kept until a view changes, then
    rebuilt once, and the :class:`Change` from the last tuple handed to ``tell``.

    From :data:`RANKED_FROM` views, the new tuple is the last one with the changed views
    swapped, cut out or appended (a copy of pointers: under half the instructions of a pass
    over a dict of a few hundred views). Each key of the tuple has a rank, increasing along
    it and kept while the key stays; its place is its rank less the ranks freed below it
    since the ranks were last dealt out afresh. Below, a pass costs less than finding
    places."""

    __slots__ = ("_free", "_new", "_next_rank", "_rank", "_stale", "_tell", "_tuple", "_views",
                 "_was")

    def __init__(self, tell: Callable[[Change[T]], None] | None = None) -> None:
        self._views: dict[K, T] = {}
        self._tuple: tuple[T, ...] = ()
        self._was: dict[K, T] = {}
        """Key -> its view in ``_tuple``, for the keys whose view was set or dropped since
        (the first change of each: only where it was in the last tuple matters)."""
        self._new: dict[K, None] = {}
        """Keys set since ``_tuple`` was built that it does not hold there (a new key, or one
        dropped and set again), in the order they were set: the new tuple's last items."""
        self._rank: dict[K, int] | None = None
        """Key -> its rank, for the keys of ``_tuple``; None below :data:`RANKED_FROM`
        views."""
        self._free: list[int] = []
        """The ranks below ``_next_rank`` no key of ``_tuple`` holds, sorted."""
        self._next_rank = 0
        self._stale = False
        self._tell = tell

    def set(self, key: K, view: T) -> None:
        views = self._views
        old = views.get(key)
        if old is None:
            self._new[key] = None
        elif key not in self._was and key not in self._new:
            self._was[key] = old
        views[key] = view
        self._stale = True

    def drop(self, key: K) -> None:
        old = self._views.pop(key, None)
        if old is None:
            return
        if key in self._new:
            del self._new[key]  # set since the last tuple: not in it where it was
        elif key not in self._was:
            self._was[key] = old
        self._stale = True

    def values(self) -> tuple[T, ...]:
        """The views in key order: the last tuple while no view changed (nor when every
        change was undone), else a new one, whose change is told."""
        if not self._stale:
            return self._tuple
        self._stale = False
        if self._rank is not None:
            return self._by_places()
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
        if gone or replaced:
            after = tuple(views.values())
        elif new:  # only appended: a copy of the last tuple costs less than a pass
            after = before + tuple(map(views.__getitem__, new))
        else:
            return before
        if len(after) >= RANKED_FROM:
            self._rank_afresh(after)
        return self._told(before, after, gone, replaced, len(new))

    def _by_places(self) -> tuple[T, ...]:
        """:meth:`values`, by the places of the changed keys, from their ranks."""
        before, views, new = self._tuple, self._views, self._new
        rank, free = self._rank, self._free
        assert rank is not None
        gone: list[T] = []
        replaced: list[tuple[T, T]] = []
        cut: list[int] = []
        swapped: list[tuple[int, T]] = []
        for key, old in self._was.items():
            view = views.get(key)
            if view is None or key in new:
                gone.append(old)
                cut.append(rank.pop(key))
            elif view is not old:
                replaced.append((old, view))
                r = rank[key]
                swapped.append((r - bisect.bisect_left(free, r), view))
        self._was, self._new = {}, {}
        if not (gone or replaced or new):
            return before
        if len(free) + len(cut) > len(views):  # more ranks freed than held: afresh
            after = tuple(views.values())
            self._rank_afresh(after)
            return self._told(before, after, gone, replaced, len(new))
        if gone or replaced:
            items = list(before)
            for at, view in swapped:
                items[at] = view
            # Places in ``before``, from the last, so that each cut leaves the next one's
            # place as it was.
            for at in sorted((r - bisect.bisect_left(free, r) for r in cut), reverse=True):
                del items[at]
            for r in cut:
                bisect.insort(free, r)
            items += map(views.__getitem__, new)
            after = tuple(items)
        else:
            after = before + tuple(map(views.__getitem__, new))
        for key in new:
            rank[key] = self._next_rank
            self._next_rank += 1
        return self._told(before, after, gone, replaced, len(new))

    def _told(
        self, before: tuple[T, ...], after: tuple[T, ...], gone: list[T],
        replaced: list[tuple[T, T]], added: int,
    ) -> tuple[T, ...]:
        self._tuple = after
        if self._tell is not None:
            self._tell(Change(before, after, gone, replaced, added))
        return after

    def _rank_afresh(self, after: tuple[T, ...]) -> None:
        """Rank the keys of ``after`` (the dict's order) from 0, with no rank freed; or
        none, for so few views that a pass over them costs less than finding places."""
        if len(after) < RANKED_FROM:
            self._rank = None
            return
        self._rank = dict(zip(self._views, range(len(after)), strict=True))
        self._free, self._next_rank = [], len(after)


RANKED_FROM = 256
"""Views from which :class:`ViewsByKey` keeps ranks: below, a pass over the dict costs less
than finding the changed places (a simulated openb has about 40, DLRM about 550)."""
