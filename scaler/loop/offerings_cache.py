"""The reconciler's cache of offerings and pool tables.

Offerings (NumPy arrays over the pools) are rebuilt only when the pools' shapes, the prices or
the DaemonSets change, never for a size change. A fleet that keeps an account of where its
pools changed between two reads says so (``Fleet.changed``: the simulated one does); else,
as fleets hand back the same pool values until one changes, a comparison at C speed
(:func:`~scaler.core.offerings.changed_pools`) finds the few that did. Only those are
compared by shape and updated in the
:class:`~scaler.core.offerings.PoolTable` that decide() reads. With the 1,817 default pools
this is what keeps a tick that changes nothing from costing anything per pool in Python.

Prices are the price source's last good ones (live: refreshed by a background task, never
by a tick; the simulator's: the catalog's).
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Awaitable, Callable, Iterable, Sequence

from scaler.core.catalog import Catalog
from scaler.core.model import PodSpec, PoolSpec
from scaler.core.offerings import (
    Offerings,
    PoolProblem,
    PoolTable,
    Prices,
    build_offerings,
    changed_pools,
    pool_table,
)
from scaler.core.settings import Settings
from scaler.loop.ticklock import TickLock
from scaler.ports import Clock, PriceSource
from scaler.telemetry import PoolDisabled, Telemetry


class OfferingsCache:
    def __init__(
        self,
        catalog: Catalog,
        settings: Settings,
        clock: Clock,
        prices: PriceSource | None,
        observe: Telemetry,
        changes: Changes | None = None,
    ) -> None:
        self.catalog = catalog
        self.settings = settings
        self.clock = clock
        self.prices = prices
        self.observe = observe
        self.changes = changes
        """The fleet's own account of where its pools changed between two reads
        (``Fleet.changed``), asked before comparing them."""
        self.offerings: Offerings | None = None
        self.problems: list[PoolProblem] = []
        self.pools_seen: Sequence[PoolSpec] = ()
        """The pools (with their sizes) as last read."""
        self._pools: Sequence[PoolSpec] = ()
        self._listed: tuple[Sequence[PoolSpec], list[PoolSpec]] = ((), [])
        """The pools of the last read compared with the one before, and a list of them: the
        next read is compared with that list (:func:`changed_pools`), without a copy of the
        pools, when it follows those very pools (else they are listed afresh)."""
        self._prices: Prices | None = None
        self._daemonsets: tuple[PodSpec, ...] = ()
        self._table: PoolTable | None = None
        self._resized: set[str] = set()
        """Pools this process resized since the pools were last read (:meth:`resized`)."""
        self._place: dict[str, int] = {}
        """Pool name -> its place in the pools as read (rebuilt when it names another)."""
        self._shapes: dict[int, tuple[PoolSpec, tuple[object, ...]]] = {}
        """Pool value id -> (the value, its shape): a pool's value changes with its size and
        goes back and forth over a few (the simulator keeps one per size), so each value's
        shape is taken once. The entry holds the value: its id cannot be another's."""
        self._at = float("-inf")
        self._lock = TickLock()
        """One refresh at a time (:meth:`now`). The reconciler's kind of lock, a flag while
        nobody waits: the refresh awaits the ports at once, and the simulator's admissions
        take it thousands of times a run, where ``anyio.Lock`` asked the event loop for the
        current task at each acquire and release."""

    async def current(
        self, pools: Sequence[PoolSpec], daemonsets: tuple[PodSpec, ...] = ()
    ) -> Offerings:
        return (await self.table_for(pools, daemonsets)).offerings

    async def table_for(
        self, pools: Sequence[PoolSpec], daemonsets: tuple[PodSpec, ...] = ()
    ) -> PoolTable:
        """The pool table (offerings included) for ``pools``: offerings rebuilt only when a
        shape, the prices or the DaemonSets changed, the table updated where a size did.

        Prices are the price source's last good ones: it never calls the cloud here (the
        background refresher does), so a tick never waits on the price API."""
        self.pools_seen, self._at = tuple(pools), self.clock.now()
        prices = await self.prices.prices() if self.prices is not None else Prices()
        before = self._pools
        cached = self._table
        if (
            before is pools and prices is self._prices and daemonsets is self._daemonsets
            and cached is not None and cached.pools is pools
            and cached.offerings is self.offerings
        ):
            # Most ticks: the fleet handed back the very pools of the last table (no size
            # changed), with the same prices and DaemonSets: that table stands as it is.
            self._resized.clear()
            return cached
        changed: Sequence[int] | None = None
        if before is not pools and len(before) == len(pools):
            if self.changes is not None:
                changed = self.changes(before, pools)
            if changed is None:
                listed = list(pools)
                kept, old = self._listed
                changed = changed_pools(
                    old if kept is before else list(before), listed, self._likely(pools)
                )
                self._listed = (pools, listed)
        self._resized.clear()
        if (
            self.offerings is None
            or not (
                before is pools
                or (changed is not None and self._same_shapes(before, pools, changed))
            )
            or not _same_prices(self._prices, prices)
            or daemonsets != self._daemonsets
        ):
            offerings, problems = build_offerings(
                pools,
                self.catalog,
                settings=self.settings.placement,
                prices=prices,
                daemonsets=daemonsets,
            )
            for p in problems:
                if p not in self.problems:
                    self.observe(PoolDisabled(p.pool, p.reason))
            self.problems = problems
            self.offerings = offerings
        self._pools, self._prices, self._daemonsets = pools, prices, daemonsets
        if cached is None or cached.offerings is not self.offerings:
            table = pool_table(pools, self.offerings)
        else:
            # ``changed`` is against the pools last read here; the table may be of others.
            table = cached.updated(pools, changed if cached.pools is before else None)
        self._table = table
        return table

    def _same_shapes(
        self, before: Sequence[PoolSpec], now: Sequence[PoolSpec], changed: Sequence[int]
    ) -> bool:
        """Do the pools at the ``changed`` places keep their shapes? Only they are compared."""
        shape = self._shape
        for i in changed:  # noqa: SIM110 (one or two places a read: no generator)
            if shape(before[i]) != shape(now[i]):
                return False
        return True

    def _shape(self, pool: PoolSpec) -> tuple[object, ...]:
        kept = self._shapes.get(id(pool))
        if kept is not None and kept[0] is pool:
            return kept[1]
        if len(self._shapes) >= _SHAPES_KEPT:
            self._shapes.clear()
        shape = _shape(pool)
        self._shapes[id(pool)] = (pool, shape)
        return shape

    def resized(self, pools: Iterable[str]) -> None:
        """Pools this process just wrote a size for (scale-ups, removals, launches given
        up): the next read compares them first, and the other pools a stretch at a time
        (:func:`~scaler.core.offerings.changed_pools`; a wrong guess costs only time)."""
        self._resized.update(pools)

    def _likely(self, pools: Sequence[PoolSpec]) -> list[int]:
        """The places of the pools resized here, in ``pools`` (a name not there: none)."""
        out: list[int] = []
        place = self._place
        for name in self._resized:
            k = place.get(name)
            if k is None or k >= len(pools) or pools[k].name != name:
                # Not where the last pools held it: look the places up again.
                self._place = place = {p.name: i for i, p in enumerate(pools)}
                k = place.get(name)
                if k is None:
                    continue
            out.append(k)
        return out

    async def now(
        self, pools: Callable[[], Awaitable[Sequence[PoolSpec]]], *, max_age_s: float
    ) -> Offerings:
        """The cached offerings, looked up again (one caller at a time) when older than
        ``max_age_s``: the webhook must answer within its timeout, and a follower that
        never ticks must not serve stale pools forever."""

        def stale() -> bool:
            return self.offerings is None or self.clock.now() - self._at > max_age_s

        if stale():
            async with self._lock:
                if stale():
                    await self.current(await pools(), self._daemonsets)
        assert self.offerings is not None
        return self.offerings

    @property
    def table_seen(self) -> PoolTable | None:
        """The table of :attr:`pools_seen` when the last one built is of those very pools
        (by identity), else None."""
        table = self._table
        return table if table is not None and table.pools is self.pools_seen else None

    def table(self, pools: Sequence[PoolSpec], offerings: Offerings) -> PoolTable:
        """Kept across ticks, updated only where a pool changed."""
        cached = self._table
        if cached is None or cached.offerings is not offerings:
            table = pool_table(pools, offerings)
        else:
            table = cached.updated(pools)
        self._table = table
        return table


Changes = Callable[[Sequence[PoolSpec], Sequence[PoolSpec]], Sequence[int] | None]
"""``Fleet.changed``: where the second pools read differ from the first, or None."""

_SIZES = frozenset({"current_size", "min_size", "max_size"})
_shape = operator.attrgetter(
    *(f.name for f in dataclasses.fields(PoolSpec) if f.name not in _SIZES)
)
"""The pool without its sizes (every other field, as a tuple): what offerings are built
from."""
_SHAPES_KEPT = 8192
"""Pool values whose shapes :class:`OfferingsCache` keeps before starting over: a few per
pool (one per size a pool goes through), bounded for a fleet that hands back new values."""


def _same_prices(before: Prices | None, now: Prices) -> bool:
    return before is not None and (before is now or before.usd_per_hour == now.usd_per_hour)
