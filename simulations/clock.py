"""Simulated time: the engine moves it, nothing waits on the wall clock."""

from __future__ import annotations

import heapq
import itertools

import anyio


class SimClock:
    """Implements :class:`scaler.ports.Clock` over simulated seconds.

    Only the engine advances it (:meth:`advance`). A task awaiting :meth:`sleep_until` wakes
    when the engine reaches that time; the engine itself never awaits the clock, so a
    reconciler tick that slept would be a bug, not a wait.
    """

    def __init__(self, start_s: float = 0.0) -> None:
        self._now = start_s
        self._seq = itertools.count()
        self._waiters: list[tuple[float, int, anyio.Event]] = []

    def now(self) -> float:
        return self._now

    async def sleep_until(self, t: float) -> None:
        if t <= self._now:
            await anyio.lowlevel.checkpoint()
            return
        event = anyio.Event()
        heapq.heappush(self._waiters, (t, next(self._seq), event))
        await event.wait()

    def advance(self, t: float) -> None:
        """Move to ``t`` (never backwards) and wake the sleepers that are due."""
        if t < self._now:
            raise ValueError(f"simulated time cannot go back from {self._now} to {t}")
        self._now = t
        while self._waiters and self._waiters[0][0] <= t:
            heapq.heappop(self._waiters)[2].set()

    def next_wake(self) -> float | None:
        """The earliest time a sleeper waits for, if any."""
        return self._waiters[0][0] if self._waiters else None
