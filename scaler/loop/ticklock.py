"""The reconciler's lock: free to take when nobody holds it.

A tick and an interruption response must never both raise a pool from the same observed
size, so both take one lock. ``anyio.Lock`` asks the event loop for the current task on
every acquire and release, even with ``fast_acquire``; the simulator ticks tens of thousands
of times a run with nobody else waiting, and those two lookups were 4% of a replay. This
lock is a flag while uncontended; a waiter parks on an event and is handed the lock
directly (first come, first served), so nobody can barge in between a release and the
waiter's wake-up. The offerings cache serialises its refreshes (the webhook's, per
admitted pod when the offerings are old) with one too.
"""

from __future__ import annotations

from collections import deque
from types import TracebackType

import anyio


class TickLock:
    """A mutex for tasks of one event loop (not reentrant)."""

    def __init__(self) -> None:
        self._held = False
        self._waiters: deque[anyio.Event] = deque()

    @property
    def locked(self) -> bool:
        return self._held

    def take_now(self) -> bool:
        """Take the lock if it is free (True), without awaiting anything; else leave it to
        :meth:`take`. The reconciler's tick takes it so, once per tick: ``async with``
        awaits two coroutines (enter and exit) to do what a flag does while nobody waits."""
        if self._held:
            return False
        self._held = True
        return True

    async def take(self) -> None:
        """Wait for the lock (for a caller that found it held by :meth:`take_now`): handed
        over by its holder in arrival order. Cancelled while waiting, it is not held."""
        turn = anyio.Event()
        self._waiters.append(turn)
        try:
            await turn.wait()
        except BaseException:
            if turn.is_set():
                # Handed the lock, then cancelled before running: hand it on.
                self.release()
            else:
                self._waiters.remove(turn)
            raise

    async def __aenter__(self) -> None:
        if not self._held:  # take_now, without the call
            self._held = True
            return
        await self.take()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def release(self) -> None:
        if self._waiters:
            self._waiters.popleft().set()  # still held: it passes to the first waiter
        else:
            self._held = False


__all__ = ["TickLock"]
