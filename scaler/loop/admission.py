"""The admission chooser: which pools a new pod may run on, from what the reconciler saw.

One decision for the live webhook (:mod:`scaler.adapters.kube.webhook` turns it into a
JSONPatch; :mod:`scaler.app` hands it this chooser) and for the simulator
(:mod:`simulations.admission` applies it to the model's pod): the core's
:func:`~scaler.core.pinning.pin_for` over the reconciler's cached offerings, with pools
backing off left out (pools out only for a Spot reclaim readmitted after the others) and
pools at their max size left out. No AWS call once the first tick has run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

import numpy as np

from scaler.core.memory import Memory
from scaler.core.model import LABEL_POOL, FloatArray, PodSpec, PoolSpec
from scaler.core.offerings import Offerings, PoolTable, changed_pools
from scaler.core.pinning import Pin, TierCache, pin_for, reads_lost_work
from scaler.core.runtime import RuntimeHistory, lost_work_h
from scaler.core.settings import Settings
from scaler.ports import Clock

PinChooser = Callable[[PodSpec], Awaitable[Pin]]
"""A pod -> its :class:`~scaler.core.pinning.Pin` (empty: leave it unpinned)."""


class PinSource(Protocol):
    """What the chooser reads from the reconciler."""

    @property
    def settings(self) -> Settings: ...

    @property
    def memory(self) -> Memory: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def pools_seen(self) -> Sequence[PoolSpec]: ...

    @property
    def table_seen(self) -> PoolTable | None: ...

    async def offerings_now(self) -> Offerings: ...


class HeadroomCache:
    """The last headroom computed, by the identity of the pools and offerings it came from:
    they change only when the reconciler reads the pools again, not per admitted pod; and
    the tiers answered (:class:`~scaler.core.pinning.TierCache`), one per pod class while
    nothing they depend on changes."""

    def __init__(self) -> None:
        self.pools: Sequence[PoolSpec] | None = None
        self.offerings: Offerings | None = None
        self.headroom: FloatArray = np.zeros(0)
        self.tiers = TierCache()
        self._names: tuple[str, ...] = ()

    def headroom_for(self, pools: Sequence[PoolSpec], offerings: Offerings) -> FloatArray:
        """:func:`headroom_of` ``(pools, offerings)``. Each tick reads the pools again, but a
        fleet hands back the same pool values until one changes (sizes move a few pools a
        tick), so with the same offerings and pool names only the pools that are other
        objects are looked at again."""
        before = self.pools
        if before is pools and self.offerings is offerings:
            return self.headroom
        if (
            before is None
            or self.offerings is not offerings
            or len(before) != len(pools)
            or len(set(self._names)) != len(self._names)
        ):
            return self._full(pools, offerings)
        changed = changed_pools(before, pools)
        if any(pools[k].name != self._names[k] for k in changed):
            return self._full(pools, offerings)
        if changed:
            headroom = self.headroom.copy()
            for k in changed:
                i = offerings.get(pools[k].name)
                if i is not None:
                    headroom[i] = _headroom(pools[k])
            self.headroom = headroom
        self.pools = pools
        return self.headroom

    def _full(self, pools: Sequence[PoolSpec], offerings: Offerings) -> FloatArray:
        self.pools, self.offerings = pools, offerings
        self.headroom = headroom_of(pools, offerings)
        self._names = tuple(p.name for p in pools)
        return self.headroom


async def choose_pin(
    source: PinSource,
    pod: PodSpec,
    *,
    cache: HeadroomCache | None = None,
    runtimes: RuntimeHistory | None = None,
) -> Pin:
    """The pin for ``pod``; empty when pinning is off or the pod already selects a pool
    (its owner chose). ``runtimes``: the cluster's history of finished runs, which prices
    the pod's Spot risk by its expected lost work as decide() does (scaler/core/runtime.py)."""
    settings = source.settings
    if not settings.pinning.enabled or selects_pool(pod):
        return Pin()
    offerings = await source.offerings_now()
    now = source.clock.now()
    memory = source.memory
    available = readmit = None  # no pool backing off: all available, none to readmit
    if memory.backoff_until_s:
        available = memory.available(offerings, now)
        # A pool backing off only for a Spot reclaim stays in the tier, after the others
        # (pin_for), so the pod may go back there when the backoff ends.
        readmit = np.zeros(len(offerings), dtype=bool)
        for name in memory.backoff_until_s:
            i = offerings.get(name)
            if i is not None and not available[i]:
                readmit[i] = memory.reclaim_only(name, now)
    pools = source.pools_seen
    table = source.table_seen
    room = None
    if table is not None and table.pools is pools and table.offerings is offerings:
        # The tick's own table of these pools: its headroom is kept up to date per change,
        # and the pools with room for a node are kept with it.
        headroom = table.headroom
        room = table.room
    elif cache is not None:
        headroom = cache.headroom_for(pools, offerings)
    else:
        headroom = headroom_of(pools, offerings)
    lost_h = None
    priced = (cache.tiers.reads_lost_work(offerings, settings) if cache is not None
              else reads_lost_work(offerings))
    if priced:
        # Estimated only where it prices something: on-demand pools never read it.
        lost = lost_work_h([pod], runtimes or RuntimeHistory(), settings.placement)
        lost_h = None if lost is None else float(lost[0])
    if cache is not None:
        return cache.tiers.pin(pod, offerings, settings, available=available,
                               headroom=headroom, readmit=readmit, lost_work_h=lost_h,
                               room=room)
    return pin_for(pod, offerings, settings, available=available, headroom=headroom,
                   readmit=readmit, lost_work_h=lost_h)


def headroom_of(pools: Sequence[PoolSpec], offerings: Offerings) -> FloatArray:
    """(P,) max size minus desired size per pool of ``offerings``, as decide() counts it
    (launches in flight count), from ``pools`` as last read; a pool of the offerings not
    among them (gone since) by the offerings' own copy; inf without a max size."""
    headroom = np.full(len(offerings), np.inf)
    seen = 0
    for live in pools:
        i = offerings.get(live.name)
        if i is not None:
            seen += 1
            if live.max_size is not None:
                headroom[i] = _headroom(live)
    if seen < len(offerings):
        names = {p.name for p in pools}
        for i, pool in enumerate(offerings.pools):
            if pool.name not in names:
                headroom[i] = _headroom(pool)
    return headroom


def _headroom(pool: PoolSpec) -> float:
    return np.inf if pool.max_size is None else float(max(pool.max_size - pool.current_size, 0))


def make_chooser(
    source: PinSource, runtimes: Callable[[], RuntimeHistory] | None = None
) -> PinChooser:
    """:func:`choose_pin` over ``source`` (the reconciler), as a one-argument chooser;
    ``runtimes`` reads the cluster's history of finished runs at each admission (live
    ``KubeCluster.runtime_history``, simulated the world's)."""

    cache = HeadroomCache()

    async def choose(pod: PodSpec) -> Pin:
        history = runtimes() if runtimes is not None else None
        return await choose_pin(source, pod, cache=cache, runtimes=history)

    return choose


def selects_pool(pod: PodSpec) -> bool:
    """The pod's node selector or required node affinity names ``scaler.io/pool``."""
    return any(key == LABEL_POOL for key, _ in pod.node_selector) or any(
        r.key == LABEL_POOL for t in pod.affinity for r in t.requirements
    )


__all__ = [
    "HeadroomCache",
    "PinChooser",
    "PinSource",
    "choose_pin",
    "headroom_of",
    "make_chooser",
    "selects_pool",
]
