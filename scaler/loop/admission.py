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
from scaler.core.model import LABEL_POOL, PodSpec, PoolSpec
from scaler.core.offerings import Offerings
from scaler.core.pinning import Pin, pin_for
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

    async def offerings_now(self) -> Offerings: ...


async def choose_pin(source: PinSource, pod: PodSpec) -> Pin:
    """The pin for ``pod``; empty when pinning is off or the pod already selects a pool
    (its owner chose)."""
    settings = source.settings
    if not settings.pinning.enabled or selects_pool(pod):
        return Pin()
    offerings = await source.offerings_now()
    now = source.clock.now()
    memory = source.memory
    available = memory.available(offerings, now)
    # A pool backing off only for a Spot reclaim stays in the tier, after the others
    # (pin_for), so the pod may go back there when the backoff ends.
    readmit = np.zeros(len(offerings), dtype=bool)
    for name in memory.backoff_until_s:
        i = offerings.get(name)
        if i is not None and not available[i]:
            readmit[i] = memory.reclaim_only(name, now)
    # Max size minus desired size, as decide() counts it (launches in flight count): only
    # pools with a max size have less than unlimited headroom.
    # Sizes as last read; a pool of the offerings not among them (gone since) by the
    # offerings' own copy.
    headroom = np.full(len(offerings), np.inf)
    seen = 0
    for live in source.pools_seen:
        i = offerings.get(live.name)
        if i is not None:
            seen += 1
            headroom[i] = _headroom(live)
    if seen < len(offerings):
        names = {p.name for p in source.pools_seen}
        for i, pool in enumerate(offerings.pools):
            if pool.name not in names:
                headroom[i] = _headroom(pool)
    return pin_for(pod, offerings, settings, available=available, headroom=headroom,
                   readmit=readmit)


def _headroom(pool: PoolSpec) -> float:
    return np.inf if pool.max_size is None else float(max(pool.max_size - pool.current_size, 0))


def make_chooser(source: PinSource) -> PinChooser:
    """:func:`choose_pin` over ``source`` (the reconciler), as a one-argument chooser."""

    async def choose(pod: PodSpec) -> Pin:
        return await choose_pin(source, pod)

    return choose


def selects_pool(pod: PodSpec) -> bool:
    """The pod's node selector or required node affinity names ``scaler.io/pool``."""
    return any(key == LABEL_POOL for key, _ in pod.node_selector) or any(
        r.key == LABEL_POOL for t in pod.affinity for r in t.requirements
    )


__all__ = ["PinChooser", "PinSource", "choose_pin", "make_chooser", "selects_pool"]
