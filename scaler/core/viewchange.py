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

    The views are also kept in a list in key order, so a new tuple is a copy of that list:
    tuple() of a dict's values goes through the iterator protocol per view (and over the
    holes its dropped keys leave), some fifteen times the instructions of a list copy. A
    view's place in the list is found by bisecting ranks (increasing along the list, one per
    key as it is set anew), which do not shift when a view before it is dropped."""

    __slots__ = (
        "_list", "_new", "_next_rank", "_rank", "_ranks", "_stale", "_tell", "_tuple",
        "_views", "_was",
    )

    def __init__(self, tell: Callable[[Change[T]], None] | None = None) -> None:
        self._views: dict[K, T] = {}
        self._tuple: tuple[T, ...] = ()
        self._was: dict[K, T] = {}
        """Key -> its view in ``_tuple``, for the keys whose view was set or dropped since
        (the first change of each: only where it was in the last tuple matters)."""
        self._new: dict[K, None] = {}
        """Keys set since ``_tuple`` was built that it does not hold there (a new key, or one
        dropped and set again), in the order they were set: the new tuple's last items."""
        self._list: list[T] = []
        """The views of ``_views``, in its order."""
        self._ranks: list[int] = []
        """The rank of each view of ``_list`` (ascending)."""
        self._rank: dict[K, int] = {}
        """Key -> its view's rank."""
        self._next_rank = 0
        self._stale = False
        self._tell = tell

    def __contains__(self, key: object) -> bool:
        return key in self._views

    def set(self, key: K, view: T) -> None:
        views = self._views
        old = views.get(key)
        if old is None:
            self._new[key] = None
            self._rank[key] = rank = self._next_rank
            self._next_rank = rank + 1
            self._list.append(view)
            self._ranks.append(rank)
        else:
            if key not in self._was and key not in self._new:
                self._was[key] = old
            self._list[bisect.bisect_left(self._ranks, self._rank[key])] = view
        views[key] = view
        self._stale = True

    def drop(self, key: K) -> None:
        old = self._views.pop(key, None)
        if old is None:
            return
        i = bisect.bisect_left(self._ranks, self._rank.pop(key))
        del self._list[i], self._ranks[i]
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
        after = tuple(self._list)
        self._tuple = after
        if self._tell is not None:
            self._tell(Change(before, after, gone, replaced, len(new)))
        return after
